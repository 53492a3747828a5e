// im2col / col2im for 2-D convolution on channels-last (NHWC) tensors, so a convolution is the
// GEMM cols[B*OH*OW, KH*KW*C] · W[OC, KH*KW*C]ᵀ = y[B*OH*OW, OC], already NHWC.
// im2col: cols[(b, oh, ow)][(kh, kw, c)] = x[b][oh*stride + kh - pad][ow*stride + kw - pad][c]
//         (0 outside the image).
// col2im: the adjoint, as a gather: dx[b][h][w][c] = sum over (kh, kw) (in that order) of
//         dcols[(b, oh, ow)][(kh, kw, c)] with oh*stride = h + pad - kh (likewise ow).
// Entries im2col and col2im: a thread per output value (what a GPU coalesces). Entries
// im2col_rows and col2im_pixels (CPU adapters, where SIMD integer division runs lane by lane and
// the per-value index arithmetic cost more than the copy): a thread per row of cols (per pixel of
// dx), its divisions once, then its values in order; the same values and sums.
// Reference: src/reference/im2col.rs (same order: exact).
// Bindings: 0 params, 1 src (read), 2 dst (read-write).

struct ConvParams {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    oh: u32,
    ow: u32,
    total: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

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

@compute @workgroup_size(256)
fn im2col_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (row >= p.batch * p.oh * p.ow) {
        return;
    }
    let ox = row % p.ow;
    let oy = (row / p.ow) % p.oh;
    let b = row / (p.ow * p.oh);
    var o = row * p.kh * p.kw * p.c;
    for (var ky = 0u; ky < p.kh; ky++) {
        let y = i32(oy * p.stride + ky) - i32(p.pad);
        for (var kx = 0u; kx < p.kw; kx++) {
            let x = i32(ox * p.stride + kx) - i32(p.pad);
            let inside = y >= 0 && x >= 0 && u32(y) < p.h && u32(x) < p.w;
            let base = select(0u, ((b * p.h + u32(y)) * p.w + u32(x)) * p.c, inside);
            for (var c = 0u; c < p.c; c++) {
                var v = 0.0;
                if (inside) {
                    v = src[base + c];
                }
                dst[o] = v;
                o++;
            }
        }
    }
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
    let out0 = pix * p.c;
    // Each value's sum starts at 0 and takes the taps in (kh, kw) order, as col2im's s does.
    for (var c = 0u; c < p.c; c++) {
        dst[out0 + c] = 0.0;
    }
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
            let base = ((b * p.oh + u32(oy)) * p.ow + u32(ox)) * kdim + (ky * p.kw + kx) * p.c;
            for (var c = 0u; c < p.c; c++) {
                dst[out0 + c] += src[base + c];
            }
        }
    }
}
