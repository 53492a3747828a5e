// maxpool: k×k max pooling with stride k on NHWC tensors (windows do not overlap; a tail that
// does not fill a window is dropped, as in PyTorch).
// forward: y[b][oy][ox][c] = max over the window (first maximum in row-major window order), and
//          arg = the flat input index of that maximum.
// backward: the adjoint as a gather: dx[i] = dy[o] if arg[o] == i for the window o holding i,
//           else 0.
// Reference: src/reference/maxpool.rs (exact). Bindings: 0 params, 1 x or dy (read),
// 2 y or dx (read-write), 3 arg (read-write u32).

struct PoolParams {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    oh: u32,
    ow: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.total) {
        return;
    }
    let c = i % p.c;
    let ox = (i / p.c) % p.ow;
    let oy = (i / (p.c * p.ow)) % p.oh;
    let b = i / (p.c * p.ow * p.oh);
    var best = -3.4028235e38;
    var best_i = 0u;
    var first = true;
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            let idx = ((b * p.h + oy * p.k + ky) * p.w + ox * p.k + kx) * p.c + c;
            let v = src[idx];
            if (first || v > best) {
                best = v;
                best_i = idx;
                first = false;
            }
        }
    }
    dst[i] = best;
    arg[i] = best_i;
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let n_in = p.batch * p.h * p.w * p.c;
    if (i >= n_in) {
        return;
    }
    let c = i % p.c;
    let x = (i / p.c) % p.w;
    let y = (i / (p.c * p.w)) % p.h;
    let b = i / (p.c * p.w * p.h);
    var g = 0.0;
    let oy = y / p.k;
    let ox = x / p.k;
    if (oy < p.oh && ox < p.ow) {
        let o = ((b * p.oh + oy) * p.ow + ox) * p.c + c;
        if (arg[o] == i) {
            g = src[o];
        }
    }
    dst[i] = g;
}
