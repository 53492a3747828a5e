// gemm_int_col2im: a quantized convolution's input gradient, dX = col2im(dY·Wᵀ), in one launch on
// CPU adapters whose subgroup is one 8-wide SIMD vector (lavapipe), bit for bit what
// gemm_int_lanes writes into dcols [B*OH*OW, KH*KW*C] followed by im2col.wgsl's col2im of it.
// Why a kernel of its own: there dcols is kh*kw times the size of dX, and its stores and col2im's
// reads of it cost about what the products do (the MNIST CNN's conv2: 10M values for a 200K-value
// dX). Here each output pixel of dX gathers, tap by tap, the dY row that tap reaches it from, so
// dcols is never formed.
// Operands as gemm_int's: A = dY codes [M = B*OH*OW, K = output channels], B = W's transpose
// codes [N = KH*KW*C, K] (row (ky*KW + kx)*C + c), p (GemmParams) as gemm_int's checks built it.
// Math, per value of dX (pixel (b, y, x), channel c), as col2im sums: s = 0, then for each tap
// (ky, kx) in that order that reaches the pixel (oy*stride = y + pad - ky, likewise ox, inside
// the output) s += v with v the dcols value gemm_int_lanes forms for row o = (b, oy, ox) and
// column n = (ky*KW + kx)*C + c: per SMP sample of dY (one, or S stacked) and scale chunk along K
// (all of K for one chunk), in that order,
//   v += (f32(isum_chunk) * lane_unit * sa(o, chunk)) * sb(n, chunk), from v = 0,
// then v *= 1/S where S > 1 (gemm_int_lanes' main_samples),
// isum_chunk the exact sum of the chunk's code products (at most MAX_BLOCK = 1024 of them, each
// at most 128 x 128 in magnitude: an integer of at most 2^24, exact in f32 in any order). A tap
// that does not reach the pixel adds nothing (col2im skips it; adding v = +0.0 to s, which is
// never -0.0, would not change it either).
// Layout: common/col2im_tile.wgsl's (32 pixels x 16 channels per subgroup, the tap's W columns
// by broadcast); per tap and lane word of K, each lane loads its four pixels' dY words (gathered)
// and two of the tap's columns (channels lane and 8 + lane), so the lanes' loads per 256
// multiply-adds are gemm_int_lanes' 6.
// Rows of pixels past the image, of taps outside it, and channels past C read lane words of 0
// (lane_f32_a / lane_f32_b past M / N) and are not stored.
// Bindings: 0 GemmParams, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 dx (read-write),
// 6 ConvParams. Reference: src/reference/gemm_int_col2im.rs.

override FMT_A: u32 = 0u;
override FMT_B: u32 = 0u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> b_codes: array<u32>;
@group(0) @binding(4) var<storage, read> b_scales: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> cv: ConvParams;

// The scale of channels 4g .. 4g+3 (one per channel: s0 of channel lane, s1 of 8 + lane).
fn channel_scales(s0: f32, s1: f32, g: u32) -> vec4<f32> {
    let m = broadcast_quarter(vec4<f32>(s0), vec4<f32>(s1), g);
    return vec4<f32>(m[0].x, m[1].x, m[2].x, m[3].x);
}

// One pixel's 16 channels plus its dY word a times the tap's columns at that lane word:
// channel 4g + i gains dot(a, column i of b<g>).
fn mac(acc: mat4x4<f32>, a: vec4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>, b3: mat4x4<f32>)
    -> mat4x4<f32> {
    return acc + mat4x4<f32>(a * b0, a * b1, a * b2, a * b3);
}

// The exact sums over lane words k0 .. k1 (at most 256: 1024 products) of the lane's four pixels
// (dY rows o of sample s) with the tap's columns (W's rows col0 + lane and col0 + 8 + lane of
// this lane, or p.n where past C).
fn exact_sums(o: vec4<u32>, col0: u32, col1: u32, k0: u32, k1: u32, s: u32) -> Px {
    var r: Px;
    for (var kw = k0; kw < k1; kw++) {
        let w0 = lane_f32_b(col0, kw);
        let w1 = lane_f32_b(col1, kw);
        let b0 = broadcast_quarter(w0, w1, 0u);
        let b1 = broadcast_quarter(w0, w1, 1u);
        let b2 = broadcast_quarter(w0, w1, 2u);
        let b3 = broadcast_quarter(w0, w1, 3u);
        r.q0 = mac(r.q0, lane_f32_a(o.x, kw, s), b0, b1, b2, b3);
        r.q1 = mac(r.q1, lane_f32_a(o.y, kw, s), b0, b1, b2, b3);
        r.q2 = mac(r.q2, lane_f32_a(o.z, kw, s), b0, b1, b2, b3);
        r.q3 = mac(r.q3, lane_f32_a(o.w, kw, s), b0, b1, b2, b3);
    }
    return r;
}

// One pixel's chunk sums scaled and added to v: (sum * lane_unit * sa) * sb per channel, as
// gemm_int_lanes folds them.
fn fold_px(v: mat4x4<f32>, sums: mat4x4<f32>, sa: f32, sb: mat4x4<f32>) -> mat4x4<f32> {
    var r = v;
    for (var g = 0u; g < 4u; g++) {
        r[g] += (sums[g] * lane_unit() * sa) * sb[g];
    }
    return r;
}

// One scale chunk of dY's sample s, K's elements kc .. kc + chunk, folded into v as
// gemm_int_lanes folds it: the chunk's exact sums of the lane's four pixels (dY rows o, om those
// clamped inside dY) with channels ch of the tap (W's rows col, p.n past C), scaled by the pixels'
// sa and the channels' sb.
fn fold_chunk(v: Px, o: vec4<u32>, om: vec4<u32>, col: vec2<u32>, ch: vec2<u32>, tap: u32, s: u32, kc: u32, chunk: u32)
    -> Px {
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    let sums = exact_sums(o, col.x, col.y, kc / 4u, min((kc + chunk + 3u) / 4u, (p.k + 3u) / 4u), s);
    let s0 = scale_b(min(tap + min(ch.x, cv.c - 1u), p.n - 1u), kc);
    let s1 = scale_b(min(tap + min(ch.y, cv.c - 1u), p.n - 1u), kc);
    let sb = mat4x4<f32>(channel_scales(s0, s1, 0u), channel_scales(s0, s1, 1u), channel_scales(s0, s1, 2u),
                         channel_scales(s0, s1, 3u));
    return Px(fold_px(v.q0, sums.q0, scale_a(s, om.x, kc, a_groups), sb),
              fold_px(v.q1, sums.q1, scale_a(s, om.y, kc, a_groups), sb),
              fold_px(v.q2, sums.q2, scale_a(s, om.z, kc, a_groups), sb),
              fold_px(v.q3, sums.q3, scale_a(s, om.w, kc, a_groups), sb));
}

// Whether dY holds one sample and one scale chunk spans all of K (per-row scales, or one block
// over K): then tap_values folds one chunk, with no loop over samples and chunks around it. On
// llvmpipe those loops, each taken once, took a third of the launch (resnet20's 16-channel
// stage: 4.2 -> 2.8-3.0 ms at batch 16); a pipeline constant, since a branch on a uniform value
// costs there as well. The same folds, so the same bits.
override ONE_FOLD: bool = false;

// The tap's values of the lane's four pixels (common/col2im_tile.wgsl's fold_taps): per sample of
// dY (SMP) and scale chunk, in that order, the exact sums scaled and folded, then with several
// samples times 1/S: the values gemm_int_lanes stores in dcols (`main`, or `main_samples`).
fn tap_values(o: vec4<u32>, tap: u32, c0: u32, lane: u32) -> Px {
    // This lane's two channels (W rows past the tap's C read as p.n: zero words).
    let ch = vec2<u32>(c0 + lane, c0 + 8u + lane);
    let col = select(vec2<u32>(p.n), vec2<u32>(tap) + ch, ch < vec2<u32>(cv.c));
    let om = min(o, vec4<u32>(p.m - 1u));
    if (ONE_FOLD) {
        return fold_chunk(Px(), o, om, col, ch, tap, 0u, 0u, p.k);
    }
    let chunk = min(p.chunk, p.k);
    var v: Px;
    for (var s = 0u; s < p.samples; s++) {
        for (var kc = 0u; kc < p.k; kc += chunk) {
            v = fold_chunk(v, o, om, col, ch, tap, s, kc, chunk);
        }
    }
    if (p.samples > 1u) {
        let inv = 1.0 / f32(p.samples);
        v.q0 = v.q0 * inv;
        v.q1 = v.q1 * inv;
        v.q2 = v.q2 * inv;
        v.q3 = v.q3 * inv;
    }
    return v;
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let tile = wg.x + wg.y * nwg.x;
    if (tile >= p.total_tiles) {
        return;
    }
    k_end = p.k;
    a_row0 = 0u;
    b_row0 = 0u;
    fold_taps(tile, lane);
}
