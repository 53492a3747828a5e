// avgpool: k×k average pooling with stride k on NHWC tensors (a partial window at the edge is
// dropped). forward: y = mean of the window. backward: dx = dy / k² for each member of a window,
// 0 for dropped edge elements.
// Entries forward and backward: a thread per value (what a GPU coalesces; forward's k² loads share
// its coordinates' divisions, so CPU adapters take it too). backward_pixels (CPU adapters, where
// SIMD integer division runs lane by lane and the backward's per-value coordinates cost more than
// the pooling, as in maxpool): a thread per pixel, its channels in a loop, the same quotients;
// with channels a multiple of 4, backward_pixels_v4 takes the channels four at a time and
// forward_pixels_v4 a thread per four channels of a pixel (the *4 views of the same bindings),
// the same arithmetic per component.
// Reference: src/reference/avgpool.rs (same order: exact).
// Bindings: 0 params (shaders/common/pool.wgsl), 1 src, 2 dst.

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// The same buffers as vec4s (the _v4 entries only).
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

// Channel c's window at output (b, oy, ox): the sum in row-major window order over k².
fn window_mean(b: u32, oy: u32, ox: u32, c: u32) -> f32 {
    var s = 0.0;
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            s += src[pool_in_index(p, b, oy * p.k + ky, ox * p.k + kx, c)];
        }
    }
    return s / f32(p.k * p.k);
}

// dx of channel c's values in window (b, oy, ox) (inside the output): the window's dy over k².
fn window_grad(b: u32, oy: u32, ox: u32, c: u32) -> f32 {
    return src[pool_out_index(p, b, oy, ox, c)] / f32(p.k * p.k);
}

// window_mean for channels c .. c + 3 (c a multiple of 4).
fn window_mean4(b: u32, oy: u32, ox: u32, c: u32) -> vec4<f32> {
    var s = vec4<f32>();
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            s += src4[pool_in_index(p, b, oy * p.k + ky, ox * p.k + kx, c) / 4u];
        }
    }
    return s / f32(p.k * p.k);
}

// window_grad for channels c .. c + 3 (c a multiple of 4).
fn window_grad4(b: u32, oy: u32, ox: u32, c: u32) -> vec4<f32> {
    return src4[pool_out_index(p, b, oy, ox, c) / 4u] / f32(p.k * p.k);
}

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
    dst[i] = window_mean(b, oy, ox, c);
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
        g = window_grad(b, y / p.k, x / p.k, c);
    }
    dst[i] = g;
}

@compute @workgroup_size(256)
fn backward_pixels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pix = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (pix >= p.batch * p.h * p.w) {
        return;
    }
    // The pixel's window (a dropped edge pixel's dx is 0).
    let win = pool_pixel_window(p, pix);
    for (var c = 0u; c < p.c; c++) {
        var g = 0.0;
        if (win.w == 1u) {
            g = window_grad(win.x, win.y, win.z, c);
        }
        dst[pix * p.c + c] = g;
    }
}

@compute @workgroup_size(256)
fn forward_pixels_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // A thread per four channels of an output pixel, as forward's per value: a ResNet's global
    // pooling has one pixel an image, too few threads for a CPU's cores, and each thread's k²
    // loads share its divisions.
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    let cq = p.c / 4u;
    if (t >= p.batch * p.oh * p.ow * cq) {
        return;
    }
    let pix = t / cq;
    let q = pool_out_coords(p, pix * p.c);
    dst4[t] = window_mean4(q.x, q.y, q.z, (t - pix * cq) * 4u);
}

@compute @workgroup_size(256)
fn backward_pixels_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pix = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (pix >= p.batch * p.h * p.w) {
        return;
    }
    let win = pool_pixel_window(p, pix);
    for (var c = 0u; c < p.c; c += 4u) {
        var g = vec4<f32>();
        if (win.w == 1u) {
            g = window_grad4(win.x, win.y, win.z, c);
        }
        dst4[(pix * p.c + c) / 4u] = g;
    }
}
