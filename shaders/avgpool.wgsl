// avgpool: k×k average pooling with stride k on NHWC tensors (a partial window at the edge is
// dropped). forward: y = mean of the window. backward: dx = dy / k² for each member of a window,
// 0 for dropped edge elements. Reference: src/reference/avgpool.rs (same order: exact).
// Bindings: 0 params (as maxpool), 1 src, 2 dst.

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
    var s = 0.0;
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            s += src[((b * p.h + oy * p.k + ky) * p.w + ox * p.k + kx) * p.c + c];
        }
    }
    dst[i] = s / f32(p.k * p.k);
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.batch * p.h * p.w * p.c) {
        return;
    }
    let c = i % p.c;
    let x = (i / p.c) % p.w;
    let y = (i / (p.c * p.w)) % p.h;
    let b = i / (p.c * p.w * p.h);
    var g = 0.0;
    if (y / p.k < p.oh && x / p.k < p.ow) {
        g = src[((b * p.oh + y / p.k) * p.ow + x / p.k) * p.c + c] / f32(p.k * p.k);
    }
    dst[i] = g;
}
