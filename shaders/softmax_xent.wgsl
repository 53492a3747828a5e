// softmax_xent: softmax cross-entropy, forward and backward in one pass, one thread per row.
// For logits z[b] (C classes) and label t: p = softmax(z) (max-subtracted), loss[b] = -log p[t],
// correct[b] = (first argmax of z == t), dz[b] = (p - onehot(t)) * grad_scale (1/batch for a mean
// loss). loss and correct hold `ring` blocks of `rows` values; a step writes block
// step.slot % ring (so a plan's losses accumulate on the GPU over several steps).
// Entry main_rows (a GPU's layout, common/row_stage.wgsl): a workgroup per row, where a thread per
// row leaves most of a GPU idle (a batch of 128 images: one workgroup) and loads a row apart.
// Each thread takes the first largest logit of its classes (from class 0's), and thread 0 the
// first largest of those: the class and value of the one-thread scan. The exps are staged and
// thread 0 adds them in class order, so both layouts give the same bits; the exps and dz spread
// over the threads.
// Reference: src/reference/softmax_xent.rs (exp/log differ by ulps between devices: a stated
// tolerance). Bindings: 0 params, 1 logits, 2 labels (u32), 3 loss, 4 correct (u32), 5 dz,
// 6 step (StepState).

struct XentParams {
    rows: u32,
    classes: u32,
    grad_scale: f32,
    ring: u32,
}

@group(0) @binding(0) var<uniform> p: XentParams;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> correct: array<u32>;
@group(0) @binding(5) var<storage, read_write> dz: array<f32>;
@group(0) @binding(6) var<uniform> st: StepState;

// dz at class c of the row at base, whose label is t (main and main_rows: one expression, the same
// bits).
fn store_dz(base: u32, c: u32, t: u32, m: f32, inv: f32) {
    var g = exp(z[base + c] - m) * inv;
    if (c == t) {
        g -= 1.0;
    }
    dz[base + c] = g * p.grad_scale;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (b >= p.rows) {
        return;
    }
    let base = b * p.classes;
    var m = z[base];
    var arg = 0u;
    for (var c = 1u; c < p.classes; c++) {
        if (z[base + c] > m) {
            m = z[base + c];
            arg = c;
        }
    }
    var s = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        s += exp(z[base + c] - m);
    }
    let t = labels[b];
    let out = (st.slot % p.ring) * p.rows + b;
    loss[out] = log(s) - (z[base + t] - m);
    correct[out] = select(0u, 1u, arg == t);
    let inv = 1.0 / s;
    for (var c = 0u; c < p.classes; c++) {
        store_dz(base, c, t, m, inv);
    }
}

// main_rows: common/row_stage.wgsl's layout, and each thread's largest logit's class.
var<workgroup> stage_arg: array<u32, ROW_WG>;

@compute @workgroup_size(64)
fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wg.x + wg.y * nwg.x;
    if (b >= p.rows) {
        return;
    }
    let base = b * p.classes;
    // This thread's first largest of class 0 and its classes lid, lid + ROW_WG, ...
    var mt = z[base];
    var at = 0u;
    for (var c = lid; c < p.classes; c += ROW_WG) {
        if (z[base + c] > mt) {
            mt = z[base + c];
            at = c;
        }
    }
    stage_a[lid] = mt;
    stage_arg[lid] = at;
    workgroupBarrier();
    if (lid == 0u) {
        // The largest value, at its lowest class: the scan's first argmax.
        var m = stage_a[0];
        var arg = stage_arg[0];
        for (var i = 1u; i < ROW_WG; i++) {
            let v = stage_a[i];
            if (v > m || (v == m && stage_arg[i] < arg)) {
                m = v;
                arg = stage_arg[i];
            }
        }
        row_stats.x = m;
        stage_arg[0] = arg;
    }
    workgroupBarrier();
    let m = row_stats.x;
    let arg = stage_arg[0];
    var s = 0.0;
    for (var c0 = 0u; c0 < p.classes; c0 += CHUNK) {
        let len = min(CHUNK, p.classes - c0);
        // (Thread 0 read the maxima in stage_a before the barrier above, and the sum's rounds
        // before their second barrier.)
        for (var i = lid; i < len; i += ROW_WG) {
            stage_a[i] = exp(z[base + c0 + i] - m);
        }
        s = staged_round(lid, s, len);
    }
    let t = labels[b];
    if (lid == 0u) {
        let out = (st.slot % p.ring) * p.rows + b;
        loss[out] = log(s) - (z[base + t] - m);
        correct[out] = select(0u, 1u, arg == t);
        row_stats.y = 1.0 / s;
    }
    workgroupBarrier();
    let inv = row_stats.y;
    for (var c = lid; c < p.classes; c += ROW_WG) {
        store_dz(base, c, t, m, inv);
    }
}
