// mse: squared-error loss against real-valued targets, forward and backward in one pass, one
// thread per row: loss[b] = Σ_j (y[b][j] − t[b][j])², dy[b][j] = (y − t)·grad_scale2 where the
// launcher passes grad_scale2 = 2·grad_scale (2/batch for the batch mean of loss[b]). The
// difference and the product are separate operations, so dy is exact; loss sums squares
// (contractible into FMAs). loss holds `ring` blocks of `rows` values; a step writes block
// step.slot % ring. Reference: src/reference/mse.rs (dy bit-exact, loss within a bound).
// Bindings: 0 params, 1 y, 2 t, 3 loss, 4 dy, 5 step (StepState).

struct MseParams {
    rows: u32,
    cols: u32,
    grad_scale2: f32,
    ring: u32,
}

@group(0) @binding(0) var<uniform> p: MseParams;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<uniform> st: StepState;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (b >= p.rows) {
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let i = b * p.cols + j;
        let d = y[i] - t[i];
        s = s + d * d;
        dy[i] = d * p.grad_scale2;
    }
    loss[(st.slot % p.ring) * p.rows + b] = s;
}
