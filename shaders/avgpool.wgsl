// avgpool: k×k average pooling with stride k on NHWC tensors (a partial window at the edge is
// dropped). forward: y = mean of the window. backward: dx = dy / k² for each member of a window,
// 0 for dropped edge elements. Reference: src/reference/avgpool.rs (same order: exact).
// Bindings: 0 params (shaders/common/pool.wgsl), 1 src, 2 dst.

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.total) {
        return;
    }
    let q = pool_out_coords(p, i);
    let b = q.x;
    let oy = q.y;
    let ox = q.z;
    let c = q.w;
    var s = 0.0;
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            s += src[pool_in_index(p, b, oy * p.k + ky, ox * p.k + kx, c)];
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
    let q = pool_in_coords(p, i);
    let b = q.x;
    let y = q.y;
    let x = q.z;
    let c = q.w;
    var g = 0.0;
    if (y / p.k < p.oh && x / p.k < p.ow) {
        g = src[pool_out_index(p, b, y / p.k, x / p.k, c)] / f32(p.k * p.k);
    }
    dst[i] = g;
}
