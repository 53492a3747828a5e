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
