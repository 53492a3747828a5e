// softmax_xent: softmax cross-entropy, forward and backward in one pass, one thread per row.
// For logits z[b] (C classes) and label t: p = softmax(z) (max-subtracted), loss[b] = -log p[t],
// correct[b] = (first argmax of z == t), dz[b] = (p - onehot(t)) * grad_scale (1/batch for a mean
// loss). loss and correct hold `ring` blocks of `rows` values; a step writes block
// step.slot % ring (so a plan's losses accumulate on the GPU over several steps).
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
        var g = exp(z[base + c] - m) * inv;
        if (c == t) {
            g -= 1.0;
        }
        dz[base + c] = g * p.grad_scale;
    }
}
