// batchnorm: batch normalization over the rows of a channels-last [rows, channels] tensor
// (rows = batch·height·width), with learnable scale γ and shift β and an optional ReLU after it.
// stats:      mean[c] = Σ_r x / R, var[c] = Σ_r (x − mean)² / R, invstd[c] = 1/sqrt(var + eps);
//             running = (1 − momentum)·running + momentum·(mean, var·R/(R−1)).
// eval_stats: mean, invstd from the running statistics (inference).
// forward:    y = γ·(x − mean)·invstd + β, then ReLU if asked.
// reduce:     per channel, with g = dy masked by y > 0 under ReLU and x̂ = (x − mean)·invstd:
//             sums = [Σ g·x̂ (= dγ), Σ g (= dβ)].
// backward:   dx = γ·invstd/R · (R·g − Σg − x̂·Σg·x̂).
// One thread per channel for the reductions (rows in order), one per element otherwise.
// Reference: src/reference/batchnorm.rs (within a stated tolerance: sqrt is not exact in WGSL).
// Bindings: 0 params, 1 x, 2 stats [mean(C), invstd(C)], 3 affine [γ(C), β(C)],
// 4 running [mean(C), var(C)], 5 y, 6 dy, 7 dx, 8 sums [Σg·x̂(C), Σg(C)].

struct NormParams {
    rows: u32,
    channels: u32,
    eps: f32,
    momentum: f32,
    relu: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> affine: array<f32>;
@group(0) @binding(4) var<storage, read_write> running: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> sums: array<f32>;

fn flat(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn stats_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = flat(wg, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s += x[r * p.channels + c];
    }
    let mean = s / f32(p.rows);
    var v = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let d = x[r * p.channels + c] - mean;
        v += d * d;
    }
    let var_b = v / f32(p.rows);
    stats[c] = mean;
    stats[p.channels + c] = 1.0 / sqrt(var_b + p.eps);
    let unbiased = v / f32(max(p.rows, 2u) - 1u);
    running[c] = (1.0 - p.momentum) * running[c] + p.momentum * mean;
    running[p.channels + c] = (1.0 - p.momentum) * running[p.channels + c] + p.momentum * unbiased;
}

@compute @workgroup_size(256)
fn eval_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = flat(wg, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    stats[c] = running[c];
    stats[p.channels + c] = 1.0 / sqrt(running[p.channels + c] + p.eps);
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if (i >= p.rows * p.channels) {
        return;
    }
    let c = i % p.channels;
    var v = affine[c] * ((x[i] - stats[c]) * stats[p.channels + c]) + affine[p.channels + c];
    if (p.relu == 1u) {
        v = max(v, 0.0);
    }
    y[i] = v;
}

@compute @workgroup_size(256)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = flat(wg, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    var sg = 0.0;
    var sgx = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let i = r * p.channels + c;
        var g = dy[i];
        if (p.relu == 1u && !(y[i] > 0.0)) {
            g = 0.0;
        }
        sg += g;
        sgx += g * ((x[i] - stats[c]) * stats[p.channels + c]);
    }
    sums[c] = sgx;
    sums[p.channels + c] = sg;
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if (i >= p.rows * p.channels) {
        return;
    }
    let c = i % p.channels;
    var g = dy[i];
    if (p.relu == 1u && !(y[i] > 0.0)) {
        g = 0.0;
    }
    let xh = (x[i] - stats[c]) * stats[p.channels + c];
    let n = f32(p.rows);
    dx[i] = affine[c] * stats[p.channels + c] / n * (n * g - sums[p.channels + c] - xh * sums[c]);
}
