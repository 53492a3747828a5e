// im2col / col2im for 2-D convolution on channels-last (NHWC) tensors, so a convolution is the
// GEMM cols[B*OH*OW, KH*KW*C] · W[OC, KH*KW*C]ᵀ = y[B*OH*OW, OC], already NHWC.
// im2col: cols[(b, oh, ow)][(kh, kw, c)] = x[b][oh*stride + kh - pad][ow*stride + kw - pad][c]
//         (0 outside the image).
// col2im: the adjoint, as a gather: dx[b][h][w][c] = sum over (kh, kw) (in that order) of
//         dcols[(b, oh, ow)][(kh, kw, c)] with oh*stride = h + pad - kh (likewise ow).
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
        let ty = i32(y + p.pad) - i32(ky);
        if (ty < 0 || u32(ty) % p.stride != 0u || u32(ty) / p.stride >= p.oh) {
            continue;
        }
        let oy = u32(ty) / p.stride;
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(x + p.pad) - i32(kx);
            if (tx < 0 || u32(tx) % p.stride != 0u || u32(tx) / p.stride >= p.ow) {
                continue;
            }
            let ox = u32(tx) / p.stride;
            let row = (b * p.oh + oy) * p.ow + ox;
            s += src[row * kdim + (ky * p.kw + kx) * p.c + c];
        }
    }
    dst[i] = s;
}
