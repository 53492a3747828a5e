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
// column n = (ky*KW + kx)*C + c: per scale chunk along K (all of K for one chunk), in order,
//   v += (f32(isum_chunk) * lane_unit * sa(o, chunk)) * sb(n, chunk), from v = 0,
// isum_chunk the exact sum of the chunk's code products (at most MAX_BLOCK = 1024 of them, each
// at most 128 x 128 in magnitude: an integer of at most 2^24, exact in f32 in any order). A tap
// that does not reach the pixel adds nothing (col2im skips it; adding v = +0.0 to s, which is
// never -0.0, would not change it either).
// Layout: a workgroup is one subgroup of 8 lanes and owns 32 consecutive pixels x 16 channels
// (tile = pixel_tile * tiles_n + channel_group); lane L owns pixels 4L .. 4L+3 of the tile, all 16
// channels, kept as one mat4x4 per pixel (column g: channels 4g .. 4g+3). Per tap and lane word of
// K, each lane loads its four pixels' dY words (gathered: each pixel's own row o) and two of the
// tap's 16 W columns; the W columns reach every lane by subgroupBroadcast (the tile's tap is the
// same for all its pixels), so the lanes' loads per 256 multiply-adds are gemm_int_lanes' 6.
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

// A lane's four pixels' 16 channels: column g of q<i> holds pixel i's channels 4g .. 4g+3.
struct Px {
    q0: mat4x4<f32>,
    q1: mat4x4<f32>,
    q2: mat4x4<f32>,
    q3: mat4x4<f32>,
}

// Channels 4g .. 4g+3 of the tile as a matrix (column i: channel 4g + i's four K values), from
// the two words w0 (channel lane) and w1 (channel 8 + lane) each lane loaded.
fn channels(w0: vec4<f32>, w1: vec4<f32>, g: u32) -> mat4x4<f32> {
    if (g == 0u) {
        return mat4x4<f32>(subgroupBroadcast(w0, 0u), subgroupBroadcast(w0, 1u), subgroupBroadcast(w0, 2u),
                           subgroupBroadcast(w0, 3u));
    }
    if (g == 1u) {
        return mat4x4<f32>(subgroupBroadcast(w0, 4u), subgroupBroadcast(w0, 5u), subgroupBroadcast(w0, 6u),
                           subgroupBroadcast(w0, 7u));
    }
    if (g == 2u) {
        return mat4x4<f32>(subgroupBroadcast(w1, 0u), subgroupBroadcast(w1, 1u), subgroupBroadcast(w1, 2u),
                           subgroupBroadcast(w1, 3u));
    }
    return mat4x4<f32>(subgroupBroadcast(w1, 4u), subgroupBroadcast(w1, 5u), subgroupBroadcast(w1, 6u),
                       subgroupBroadcast(w1, 7u));
}

// The same for one scale per channel: channels 4g .. 4g+3's.
fn channel_scales(s0: f32, s1: f32, g: u32) -> vec4<f32> {
    if (g == 0u) {
        return vec4<f32>(subgroupBroadcast(s0, 0u), subgroupBroadcast(s0, 1u), subgroupBroadcast(s0, 2u),
                         subgroupBroadcast(s0, 3u));
    }
    if (g == 1u) {
        return vec4<f32>(subgroupBroadcast(s0, 4u), subgroupBroadcast(s0, 5u), subgroupBroadcast(s0, 6u),
                         subgroupBroadcast(s0, 7u));
    }
    if (g == 2u) {
        return vec4<f32>(subgroupBroadcast(s1, 0u), subgroupBroadcast(s1, 1u), subgroupBroadcast(s1, 2u),
                         subgroupBroadcast(s1, 3u));
    }
    return vec4<f32>(subgroupBroadcast(s1, 4u), subgroupBroadcast(s1, 5u), subgroupBroadcast(s1, 6u),
                     subgroupBroadcast(s1, 7u));
}

// One pixel's 16 channels plus its dY word a times the tap's columns at that lane word:
// channel 4g + i gains dot(a, column i of b<g>).
fn mac(acc: mat4x4<f32>, a: vec4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>, b3: mat4x4<f32>)
    -> mat4x4<f32> {
    return acc + mat4x4<f32>(a * b0, a * b1, a * b2, a * b3);
}

// The exact sums over lane words k0 .. k1 (at most 256: 1024 products) of the lane's four pixels
// (dY rows o) with the tap's columns (W's rows col0 + lane and col0 + 8 + lane of this lane, or
// p.n where past C).
fn exact_sums(o: vec4<u32>, col0: u32, col1: u32, k0: u32, k1: u32) -> Px {
    var s: Px;
    for (var kw = k0; kw < k1; kw++) {
        let w0 = lane_f32_b(col0, kw);
        let w1 = lane_f32_b(col1, kw);
        let b0 = channels(w0, w1, 0u);
        let b1 = channels(w0, w1, 1u);
        let b2 = channels(w0, w1, 2u);
        let b3 = channels(w0, w1, 3u);
        s.q0 = mac(s.q0, lane_f32_a(o.x, kw, 0u), b0, b1, b2, b3);
        s.q1 = mac(s.q1, lane_f32_a(o.y, kw, 0u), b0, b1, b2, b3);
        s.q2 = mac(s.q2, lane_f32_a(o.z, kw, 0u), b0, b1, b2, b3);
        s.q3 = mac(s.q3, lane_f32_a(o.w, kw, 0u), b0, b1, b2, b3);
    }
    return s;
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

// Adds the tap's values of the pixels it reaches (ok) into the running sums.
fn add_px(d: mat4x4<f32>, v: mat4x4<f32>, ok: bool) -> mat4x4<f32> {
    if (ok) {
        return d + v;
    }
    return d;
}

// Stores one pixel's channels c0 .. c0+15 (those below C).
fn store_px(d: mat4x4<f32>, pix: u32, c0: u32) {
    if (pix >= cv.batch * cv.h * cv.w) {
        return;
    }
    for (var g = 0u; g < 4u; g++) {
        for (var i = 0u; i < 4u; i++) {
            let ch = c0 + 4u * g + i;
            if (ch < cv.c) {
                dx[pix * cv.c + ch] = d[g][i];
            }
        }
    }
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
    let pix0 = (tile / p.tiles_n) * 32u + 4u * lane;
    let c0 = (tile % p.tiles_n) * 16u;
    let pixels = cv.batch * cv.h * cv.w;
    // The lane's four pixels' batch row base (b * OH), y + pad and x + pad; pixels past the image
    // take y + pad = -1 - 2^20 so no tap reaches them.
    let pix = vec4<u32>(pix0, pix0 + 1u, pix0 + 2u, pix0 + 3u);
    let inside = pix < vec4<u32>(pixels);
    let xs = vec4<i32>(pix % cv.w) + i32(cv.pad);
    let ys = select(vec4<i32>(-1048577), vec4<i32>((pix / cv.w) % cv.h) + i32(cv.pad), inside);
    let bo = (pix / (cv.w * cv.h)) * cv.oh;
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    let chunk = min(p.chunk, p.k);
    // This lane's two channels (W rows past the tap's C read as p.n: zero words).
    let ch0 = c0 + lane;
    let ch1 = c0 + 8u + lane;
    var d: Px;
    for (var ky = 0u; ky < cv.kh; ky++) {
        for (var kx = 0u; kx < cv.kw; kx++) {
            var ty = ys - vec4<i32>(i32(ky));
            var tx = xs - vec4<i32>(i32(kx));
            var ok = (ty >= vec4<i32>(0)) & (tx >= vec4<i32>(0));
            if (cv.stride != 1u) {
                let s = vec4<i32>(i32(cv.stride));
                ok = ok & (ty % s == vec4<i32>(0)) & (tx % s == vec4<i32>(0));
                ty = ty / s;
                tx = tx / s;
            }
            ok = ok & (ty < vec4<i32>(i32(cv.oh))) & (tx < vec4<i32>(i32(cv.ow)));
            let o = select(vec4<u32>(p.m), (bo + vec4<u32>(ty)) * cv.ow + vec4<u32>(tx), ok);
            let tap = (ky * cv.kw + kx) * cv.c;
            let col0 = select(p.n, tap + ch0, ch0 < cv.c);
            let col1 = select(p.n, tap + ch1, ch1 < cv.c);
            let kwords = (p.k + 3u) / 4u;
            var v: Px;
            for (var kc = 0u; kc < p.k; kc += chunk) {
                let sums = exact_sums(o, col0, col1, kc / 4u, min((kc + chunk + 3u) / 4u, kwords));
                let s0 = scale_b(min(tap + min(ch0, cv.c - 1u), p.n - 1u), kc);
                let s1 = scale_b(min(tap + min(ch1, cv.c - 1u), p.n - 1u), kc);
                let sb = mat4x4<f32>(channel_scales(s0, s1, 0u), channel_scales(s0, s1, 1u), channel_scales(s0, s1, 2u),
                                     channel_scales(s0, s1, 3u));
                let om = min(o, vec4<u32>(p.m - 1u));
                v.q0 = fold_px(v.q0, sums.q0, scale_a(0u, om.x, kc, a_groups), sb);
                v.q1 = fold_px(v.q1, sums.q1, scale_a(0u, om.y, kc, a_groups), sb);
                v.q2 = fold_px(v.q2, sums.q2, scale_a(0u, om.z, kc, a_groups), sb);
                v.q3 = fold_px(v.q3, sums.q3, scale_a(0u, om.w, kc, a_groups), sb);
            }
            d.q0 = add_px(d.q0, v.q0, ok.x);
            d.q1 = add_px(d.q1, v.q1, ok.y);
            d.q2 = add_px(d.q2, v.q2, ok.z);
            d.q3 = add_px(d.q3, v.q3, ok.w);
        }
    }
    store_px(d.q0, pix.x, c0);
    store_px(d.q1, pix.y, c0);
    store_px(d.q2, pix.z, c0);
    store_px(d.q3, pix.w, c0);
}
