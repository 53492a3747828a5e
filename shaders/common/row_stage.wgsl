// The workgroup-per-row layout (a GPU's) of layernorm, softmax and softmax_xent: ROW_WG threads a
// row. Each round they stage CHUNK of the row's values side by side in workgroup memory, and
// thread 0 adds them in the row's order (staged_sum, or the kernel's own loop), the order of the
// kernels' thread-per-row entries, so both layouts give the same bits. row_stats carries what
// thread 0 finds to the others (read after a barrier).

const ROW_WG: u32 = 64u;
const CHUNK: u32 = 256u;
var<workgroup> stage_a: array<f32, CHUNK>;
var<workgroup> stage_b: array<f32, CHUNK>;
var<workgroup> row_stats: vec2<f32>;

// s, then stage_a[0 .. len] added one at a time, in order.
fn staged_sum(s: f32, len: u32) -> f32 {
    var r = s;
    for (var i = 0u; i < len; i++) {
        r += stage_a[i];
    }
    return r;
}

// One round of a staged sum, once every thread has staged its values of the round in stage_a:
// thread 0 adds stage_a[0 .. len] to s in order (staged_sum) between two barriers, so that the
// next round may stage again. Returns thread 0's new sum (the others get s back). Every thread
// calls it, in uniform control flow.
fn staged_round(lid: u32, s: f32, len: u32) -> f32 {
    workgroupBarrier();
    var r = s;
    if (lid == 0u) {
        r = staged_sum(s, len);
    }
    workgroupBarrier();
    return r;
}
