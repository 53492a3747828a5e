// softmax: attention's row softmax and its backward, one thread per row of a [rows, cols] tensor
// of scores (rows = batches · queries, cols = keys). Row r is query q = r % queries; with
// `causal`, keys k > q are masked (probability 0).
// forward:  p[k] = exp(scale·s[k] − m) / Σ exp(scale·s[j] − m), m the row's largest scale·s over
//           the unmasked keys (numerically stable); masked p[k] = 0.
// backward: ds[k] = scale · p[k] · (dp[k] − Σ_j p[j]·dp[j]) (the gradient of the scores).
// exp is accurate to a few ulps in WGSL: the reference is compared within a stated bound.
// Reference: src/reference/softmax.rs. Bindings: 0 params {rows, cols, queries, causal, scale},
// 1 x (scores; the backward's p), 2 dp (backward), 3 out (p, or ds).

struct SoftmaxParams {
    rows: u32,
    cols: u32,
    queries: u32,
    causal: u32,
    scale: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: SoftmaxParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dp: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// Keys of row r that are not masked: [0, end).
fn row_end(r: u32) -> u32 {
    if (p.causal == 1u) {
        return min(r % p.queries + 1u, p.cols);
    }
    return p.cols;
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let end = row_end(r);
    var m = p.scale * x[base];
    for (var k = 1u; k < end; k++) {
        m = max(m, p.scale * x[base + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < end; k++) {
        s += exp(p.scale * x[base + k] - m);
    }
    let inv = 1.0 / s;
    for (var k = 0u; k < p.cols; k++) {
        var v = 0.0;
        if (k < end) {
            v = exp(p.scale * x[base + k] - m) * inv;
        }
        out[base + k] = v;
    }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var dot = 0.0;
    for (var k = 0u; k < p.cols; k++) {
        dot += x[base + k] * dp[base + k];
    }
    for (var k = 0u; k < p.cols; k++) {
        out[base + k] = p.scale * (x[base + k] * (dp[base + k] - dot));
    }
}
