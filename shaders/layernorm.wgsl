// layernorm: layer normalization of each row of a [rows, cols] tensor (a token's features), one
// thread per row:
// forward:  mean = Σx / C, var = Σ(x − mean)² / C, rstd = 1/sqrt(var + eps),
//           y = γ·(x − mean)·rstd + β; stats[2r..2r+2] = (mean, rstd) for the backward.
// backward: with g = dy·γ and x̂ = (x − mean)·rstd,
//           dx = rstd·(g − Σg/C − x̂·Σ(g·x̂)/C), and prod [rows, 2C] = (dy·x̂, dy): its column
//           sums (col_sum) are the gradient of affine, dγ then dβ.
// Entries forward_v4 and backward_v4 (cols a multiple of 4): the same arithmetic in the same order
// (every sum still adds one value at a time), each row read and written through the *4 views of
// the same bindings (a thread's loads are gathers across SIMD lanes on a CPU adapter, lane by
// lane on llvmpipe, so a vec4 costs about what one f32 does). One entry never reaches both views
// of a binding.
// Entries forward_rows and backward_rows (a GPU's layout, any cols; common/row_stage.wgsl): a
// workgroup per row, where a thread per row leaves most of a GPU idle (the GPT's 1,024 rows: 4
// workgroups) and loads a row apart. Thread 0 adds the staged values with the thread-per-row
// entries' expressions, in their order, so both layouts give the same bits; the stores, and the
// work of each value outside the sums, spread over the threads.
// sqrt is not exact in WGSL: the reference is compared within a stated bound.
// Reference: src/reference/layernorm.rs. Bindings: 0 params {rows, cols, eps}, 1 x, 2 affine
// [γ(C), β(C)], 3 stats, 4 y, 5 dy, 6 dx, 7 prod.

struct LnParams {
    rows: u32,
    cols: u32,
    eps: f32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: LnParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> prod: array<f32>;
// The same buffers as vec4s (the _v4 entries only; stats stays scalar).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> affine4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> prod4: array<vec4<f32>>;

// y at column c of the row at base (forward and forward_rows: one expression, the same bits).
fn store_y(base: u32, c: u32, mean: f32, rstd: f32) {
    y[base + c] = affine[c] * ((x[base + c] - mean) * rstd) + affine[p.cols + c];
}

// dx and prod at column c of the row at base, from a = Σg/C and b = Σg·x̂/C (backward and
// backward_rows: one expression, the same bits).
fn store_grads(base: u32, c: u32, mean: f32, rstd: f32, a: f32, b: f32) {
    let xh = (x[base + c] - mean) * rstd;
    let d = dy[base + c];
    let g = d * affine[c];
    dx[base + c] = rstd * (g - a - xh * b);
    prod[2u * base + c] = d * xh;
    prod[2u * base + p.cols + c] = d;
}

// v's components added to s one at a time, in order (the scalar loops' order).
fn add4(s: f32, v: vec4<f32>) -> f32 {
    return s + v.x + v.y + v.z + v.w;
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
    var s = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        s += x[base + c];
    }
    let mean = s / n;
    var v = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let d = x[base + c] - mean;
        v += d * d;
    }
    let rstd = 1.0 / sqrt(v / n + p.eps);
    stats[2u * r] = mean;
    stats[2u * r + 1u] = rstd;
    for (var c = 0u; c < p.cols; c++) {
        store_y(base, c, mean, rstd);
    }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
    let mean = stats[2u * r];
    let rstd = stats[2u * r + 1u];
    var sg = 0.0;
    var sgx = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let xh = (x[base + c] - mean) * rstd;
        let g = dy[base + c] * affine[c];
        sg += g;
        sgx += g * xh;
    }
    let a = sg / n;
    let b = sgx / n;
    for (var c = 0u; c < p.cols; c++) {
        store_grads(base, c, mean, rstd, a, b);
    }
}

@compute @workgroup_size(256)
fn forward_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let c4 = p.cols / 4u;
    let base = r * c4;
    let n = f32(p.cols);
    var s = 0.0;
    for (var c = 0u; c < c4; c++) {
        s = add4(s, x4[base + c]);
    }
    let mean = s / n;
    var v = 0.0;
    for (var c = 0u; c < c4; c++) {
        let d = x4[base + c] - mean;
        v = add4(v, d * d);
    }
    let rstd = 1.0 / sqrt(v / n + p.eps);
    stats[2u * r] = mean;
    stats[2u * r + 1u] = rstd;
    for (var c = 0u; c < c4; c++) {
        y4[base + c] = affine4[c] * ((x4[base + c] - mean) * rstd) + affine4[c4 + c];
    }
}

@compute @workgroup_size(256)
fn backward_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let c4 = p.cols / 4u;
    let base = r * c4;
    let n = f32(p.cols);
    let mean = stats[2u * r];
    let rstd = stats[2u * r + 1u];
    var sg = 0.0;
    var sgx = 0.0;
    for (var c = 0u; c < c4; c++) {
        let xh = (x4[base + c] - mean) * rstd;
        let g = dy4[base + c] * affine4[c];
        sg += g.x;
        sgx += g.x * xh.x;
        sg += g.y;
        sgx += g.y * xh.y;
        sg += g.z;
        sgx += g.z * xh.z;
        sg += g.w;
        sgx += g.w * xh.w;
    }
    let a = sg / n;
    let b = sgx / n;
    for (var c = 0u; c < c4; c++) {
        let xh = (x4[base + c] - mean) * rstd;
        let d = dy4[base + c];
        let g = d * affine4[c];
        dx4[base + c] = rstd * (g - a - xh * b);
        prod4[2u * base + c] = d * xh;
        prod4[2u * base + c4 + c] = d;
    }
}

// forward_rows and backward_rows: common/row_stage.wgsl's layout.
@compute @workgroup_size(64)
fn forward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.x + wg.y * nwg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
    var s = 0.0;
    for (var c0 = 0u; c0 < p.cols; c0 += CHUNK) {
        let len = min(CHUNK, p.cols - c0);
        for (var i = lid; i < len; i += ROW_WG) {
            stage_a[i] = x[base + c0 + i];
        }
        s = staged_round(lid, s, len);
    }
    if (lid == 0u) {
        row_stats.x = s / n;
    }
    workgroupBarrier();
    let mean = row_stats.x;
    var v = 0.0;
    for (var c0 = 0u; c0 < p.cols; c0 += CHUNK) {
        let len = min(CHUNK, p.cols - c0);
        for (var i = lid; i < len; i += ROW_WG) {
            stage_a[i] = x[base + c0 + i] - mean;
        }
        workgroupBarrier();
        if (lid == 0u) {
            for (var i = 0u; i < len; i++) {
                let d = stage_a[i];
                v += d * d;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let rstd = 1.0 / sqrt(v / n + p.eps);
        row_stats.y = rstd;
        stats[2u * r] = mean;
        stats[2u * r + 1u] = rstd;
    }
    workgroupBarrier();
    let rstd = row_stats.y;
    for (var c = lid; c < p.cols; c += ROW_WG) {
        store_y(base, c, mean, rstd);
    }
}

@compute @workgroup_size(64)
fn backward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.x + wg.y * nwg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
    let mean = stats[2u * r];
    let rstd = stats[2u * r + 1u];
    var sg = 0.0;
    var sgx = 0.0;
    for (var c0 = 0u; c0 < p.cols; c0 += CHUNK) {
        let len = min(CHUNK, p.cols - c0);
        for (var i = lid; i < len; i += ROW_WG) {
            let c = c0 + i;
            stage_a[i] = (x[base + c] - mean) * rstd;
            stage_b[i] = dy[base + c] * affine[c];
        }
        workgroupBarrier();
        if (lid == 0u) {
            for (var i = 0u; i < len; i++) {
                let g = stage_b[i];
                sg += g;
                sgx += g * stage_a[i];
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        row_stats = vec2<f32>(sg / n, sgx / n);
    }
    workgroupBarrier();
    let ab = row_stats;
    for (var c = lid; c < p.cols; c += ROW_WG) {
        store_grads(base, c, mean, rstd, ab.x, ab.y);
    }
}
