// im2col / col2im for 2-D convolution on channels-last (NHWC) tensors, so a convolution is the
// GEMM cols[B*OH*OW, KH*KW*C] · W[OC, KH*KW*C]ᵀ = y[B*OH*OW, OC], already NHWC.
// im2col: cols[(b, oh, ow)][(kh, kw, c)] = x[b][oh*stride + kh - pad][ow*stride + kw - pad][c]
//         (0 outside the image).
// col2im: the adjoint, as a gather: dx[b][h][w][c] = sum over (kh, kw) (in that order) of
//         dcols[(b, oh, ow)][(kh, kw, c)] with oh*stride = h + pad - kh (likewise ow).
// Entries im2col and col2im: a thread per output value (what a GPU coalesces). Entries
// im2col_rows and col2im_pixels (CPU adapters, where SIMD integer division runs lane by lane and
// the per-value index arithmetic cost more than the copy): a thread per row of cols (per pixel of
// dx), its divisions once, then its values in order with no per-value test (im2col_rows: per tap
// row zeros, one run copied from x, zeros; col2im_pixels: each channel's sum in a register over
// the taps that reach the pixel, found per axis once); the same values and sums. With channels a
// multiple of 4, im2col_rows_v4 moves vec4s (the *4 views of the same bindings). The row unfold
// and ConvParams are common/conv.wgsl's (shared with im2col_quantize).
// Reference: src/reference/im2col.rs (same order: exact).
// Bindings: 0 params, 1 src (read), 2 dst (read-write).

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// The same buffers as vec4s (im2col_rows_v4 only).
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

// The output coordinate whose tap k reads input coordinate v (oh·stride = v + pad − k), or −1
// where there is none (before the start, between strides, past `out` outputs).
fn tap_out(v: u32, k: u32, out: u32) -> i32 {
    let t = i32(v + p.pad) - i32(k);
    if (t < 0 || u32(t) % p.stride != 0u || u32(t) / p.stride >= out) {
        return -1;
    }
    return i32(u32(t) / p.stride);
}

@compute @workgroup_size(256)
fn im2col(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.total) {
        return;
    }
    let kdim = p.kh * p.kw * p.c;
    let row = i / kdim;
    let col = i % kdim;
    let c = col % p.c;
    let kx = (col / p.c) % p.kw;
    let ky = col / (p.c * p.kw);
    let ox = row % p.ow;
    let oy = (row / p.ow) % p.oh;
    let b = row / (p.ow * p.oh);
    let y = i32(oy * p.stride + ky) - i32(p.pad);
    let x = i32(ox * p.stride + kx) - i32(p.pad);
    var v = 0.0;
    if (y >= 0 && x >= 0 && u32(y) < p.h && u32(x) < p.w) {
        v = src[((b * p.h + u32(y)) * p.w + u32(x)) * p.c + c];
    }
    dst[i] = v;
}

@compute @workgroup_size(256)
fn col2im(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.total) {
        return;
    }
    let c = i % p.c;
    let x = (i / p.c) % p.w;
    let y = (i / (p.c * p.w)) % p.h;
    let b = i / (p.c * p.w * p.h);
    let kdim = p.kh * p.kw * p.c;
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = tap_out(y, ky, p.oh);
        if (oy < 0) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = tap_out(x, kx, p.ow);
            if (ox < 0) {
                continue;
            }
            let row = (b * p.oh + u32(oy)) * p.ow + u32(ox);
            s += src[row * kdim + (ky * p.kw + kx) * p.c + c];
        }
    }
    dst[i] = s;
}

// The shared unfold's source and store (common/conv.wgsl).
fn unfold_src(i: u32) -> f32 {
    return src[i];
}

fn put_col(o: u32, v: f32) {
    dst[o] = v;
}

fn unfold_src4(i: u32) -> vec4<f32> {
    return src4[i];
}

fn put_col4(o: u32, v: vec4<f32>) {
    dst4[o] = v;
}

@compute @workgroup_size(256)
fn im2col_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (row < p.batch * p.oh * p.ow) {
        unfold_row(p, row);
    }
}

// im2col_rows by vec4s (channels a multiple of 4).
@compute @workgroup_size(256)
fn im2col_rows_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (row < p.batch * p.oh * p.ow) {
        unfold_row4(p, row);
    }
}

// The taps along one axis that reach input coordinate v (kernel extent k, `out` outputs): the
// first (smallest) tap index, how many there are (every stride-th from the first), and the output
// coordinate the first one belongs to (each later one's is one less). Tap t reaches v from output
// o = (v + pad − t) / stride where that is whole, ≥ 0 and < out: t ≡ v + pad (mod stride),
// v + pad − (out − 1)·stride ≤ t ≤ v + pad, and t < k.
struct Taps {
    first: u32,
    count: u32,
    out0: u32,
}

fn axis_taps(v: u32, k: u32, out: u32) -> Taps {
    let vp = v + p.pad;
    let reach = (out - 1u) * p.stride;
    var first = vp % p.stride;
    if (vp > reach) {
        first = vp - reach;
    }
    let last = min(k - 1u, vp);
    var count = 0u;
    if (first <= last) {
        count = (last - first) / p.stride + 1u;
    }
    return Taps(first, count, (vp - first) / p.stride);
}

@compute @workgroup_size(256)
fn col2im_pixels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pix = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (pix >= p.batch * p.h * p.w) {
        return;
    }
    let x = pix % p.w;
    let y = (pix / p.w) % p.h;
    let b = pix / (p.w * p.h);
    let kdim = p.kh * p.kw * p.c;
    let ty = axis_taps(y, p.kh, p.oh);
    let tx = axis_taps(x, p.kw, p.ow);
    // The first tap's value of channel 0, and the steps to the next tap along x (kx + stride,
    // ox − 1) and along y (ky + stride, oy − 1), as signed offsets in dcols.
    let first = ((b * p.oh + ty.out0) * p.ow + tx.out0) * kdim + (ty.first * p.kw + tx.first) * p.c;
    let step_x = i32(p.stride * p.c) - i32(kdim);
    let step_y = i32(p.stride * p.kw * p.c) - i32(p.ow * kdim);
    let out0 = pix * p.c;
    // Each value's sum starts at 0 and takes the taps in (kh, kw) order, as col2im's s does,
    // held in a register rather than in dx.
    for (var c = 0u; c < p.c; c++) {
        var s = 0.0;
        var row = i32(first + c);
        for (var i = 0u; i < ty.count; i++) {
            var at = row;
            for (var j = 0u; j < tx.count; j++) {
                s += src[u32(at)];
                at += step_x;
            }
            row += step_y;
        }
        dst[out0 + c] = s;
    }
}
