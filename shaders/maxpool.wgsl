// maxpool: k×k max pooling with stride k on NHWC tensors (windows do not overlap; a tail that
// does not fill a window is dropped, as in PyTorch).
// forward: y[b][oy][ox][c] = max over the window (first maximum in row-major window order), and
//          arg = the flat input index of that maximum.
// backward: the adjoint as a gather: dx[i] = dy[o] if arg[o] == i for the window o holding i,
//           else 0.
// Entries forward and backward: a thread per value (what a GPU coalesces). forward_pixels and
// backward_pixels (CPU adapters, where SIMD integer division runs lane by lane and the
// per-value coordinates cost more than the pooling): a thread per pixel, its channels in a loop,
// the same values and indices; with channels a multiple of 4, forward_pixels_v4 and
// backward_pixels_v4 take the channels four at a time (the *4 views of the same bindings), the
// same comparisons and selections per component.
// Reference: src/reference/maxpool.rs (exact). Bindings: 0 params, 1 x or dy (read),
// 2 y or dx (read-write), 3 arg (read-write u32).

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
// The same buffers as vec4s (the _v4 entries only).
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> arg4: array<vec4<u32>>;

// Channel c's window at output (b, oy, ox): its first maximum in row-major window order, as
// (f32 bits, flat input index).
fn window_max(b: u32, oy: u32, ox: u32, c: u32) -> vec2<u32> {
    var best = -3.4028235e38;
    var best_i = 0u;
    var first = true;
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            let idx = pool_in_index(p, b, oy * p.k + ky, ox * p.k + kx, c);
            let v = src[idx];
            if (first || v > best) {
                best = v;
                best_i = idx;
                first = false;
            }
        }
    }
    return vec2<u32>(bitcast<u32>(best), best_i);
}

// dx of input value i (channel c) inside window (oy, ox): dy of the window if i was its maximum,
// else 0 (also for a tail outside every window).
fn grad_at(i: u32, b: u32, oy: u32, ox: u32, c: u32) -> f32 {
    if (oy >= p.oh || ox >= p.ow) {
        return 0.0;
    }
    let o = pool_out_index(p, b, oy, ox, c);
    if (arg[o] == i) {
        return src[o];
    }
    return 0.0;
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
    let m = window_max(b, oy, ox, c);
    dst[i] = bitcast<f32>(m.x);
    arg[i] = m.y;
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let n_in = p.batch * p.h * p.w * p.c;
    if (i >= n_in) {
        return;
    }
    let q = pool_in_coords(p, i);
    let b = q.x;
    let y = q.y;
    let x = q.z;
    let c = q.w;
    dst[i] = grad_at(i, b, y / p.k, x / p.k, c);
}

@compute @workgroup_size(256)
fn forward_pixels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pix = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (pix >= p.batch * p.oh * p.ow) {
        return;
    }
    // (b, oy, ox) of the pixel's first value.
    let q = pool_out_coords(p, pix * p.c);
    for (var c = 0u; c < p.c; c++) {
        let m = window_max(q.x, q.y, q.z, c);
        dst[pix * p.c + c] = bitcast<f32>(m.x);
        arg[pix * p.c + c] = m.y;
    }
}

@compute @workgroup_size(256)
fn backward_pixels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pix = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (pix >= p.batch * p.h * p.w) {
        return;
    }
    // (b, y, x) of the pixel's first value.
    let q = pool_in_coords(p, pix * p.c);
    for (var c = 0u; c < p.c; c++) {
        dst[pix * p.c + c] = grad_at(pix * p.c + c, q.x, q.y / p.k, q.z / p.k, c);
    }
}

// window_max for channels c .. c + 3 (c a multiple of 4): per component the first maximum in
// row-major window order (the first value taken, then each one above the best so far).
struct Max4 {
    v: vec4<f32>,
    i: vec4<u32>,
}

fn window_max4(b: u32, oy: u32, ox: u32, c: u32) -> Max4 {
    var m = Max4(vec4<f32>(), vec4<u32>());
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            let idx = pool_in_index(p, b, oy * p.k + ky, ox * p.k + kx, c);
            let v = src4[idx / 4u];
            let take = vec4<bool>(ky == 0u && kx == 0u) | (v > m.v);
            m.v = select(m.v, v, take);
            m.i = select(m.i, vec4<u32>(idx) + vec4<u32>(0u, 1u, 2u, 3u), take);
        }
    }
    return m;
}

@compute @workgroup_size(256)
fn forward_pixels_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pix = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (pix >= p.batch * p.oh * p.ow) {
        return;
    }
    let q = pool_out_coords(p, pix * p.c);
    for (var c = 0u; c < p.c; c += 4u) {
        let m = window_max4(q.x, q.y, q.z, c);
        let o = (pix * p.c + c) / 4u;
        dst4[o] = m.v;
        arg4[o] = m.i;
    }
}

@compute @workgroup_size(256)
fn backward_pixels_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pix = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (pix >= p.batch * p.h * p.w) {
        return;
    }
    // A tail outside every window gets 0, as grad_at gives it.
    let win = pool_pixel_window(p, pix);
    for (var c = 0u; c < p.c; c += 4u) {
        let i = pix * p.c + c;
        var g = vec4<f32>();
        if (win.w == 1u) {
            let o = pool_out_index(p, win.x, win.y, win.z, c) / 4u;
            g = select(vec4<f32>(), src4[o], arg4[o] == vec4<u32>(i) + vec4<u32>(0u, 1u, 2u, 3u));
        }
        dst4[i / 4u] = g;
    }
}
