// gemm_fp8_col2im: an FP8 convolution's input gradient, dX = col2im(deq(dY)·deq(Wᵀ)ᵀ), in one
// launch on CPU adapters whose subgroup is one 8-wide SIMD vector (lavapipe), bit for bit what
// gemm_fp8_lanes writes into dcols [B*OH*OW, KH*KW*C] followed by im2col.wgsl's col2im of it;
// gemm_int_col2im's counterpart (see there why). Operands as gemm_fp8's (FMT_A, FMT_B: 2 = E4M3,
// 3 = E5M2, 8 = MXFP8): A = dY codes [M = B*OH*OW, K = output channels], B = W's transpose codes
// [N = KH*KW*C, K], both packed along K, each lane word decoded and scaled as gemm_fp8_lanes
// loads it (word_values of common/fp8.wgsl).
// Math, per value of dX (pixel (b, y, x), channel c), as col2im sums: s = 0, then for each tap
// (ky, kx) in that order that reaches the pixel (from dY row o), s += v with v what
// gemm_fp8_lanes forms for dcols' row o and column n = (ky*KW + kx)*C + c: from v = 0, for k in
// order, v = v + a(o, k) * b(n, k) (a multiply, then an add, as common/lanes.wgsl's quad_step).
// Layout: common/col2im_tile.wgsl's (32 pixels x 16 channels per subgroup); per tap and lane word
// of K, each lane decodes its four pixels' dY words (gathered) and two of the tap's columns
// (channels lane and 8 + lane), which reach every lane by subgroupBroadcast. Rows of pixels past
// the image and of taps outside it, and channels past C, read zeros; those channels are not
// stored.
// Bindings: 0 GemmParams, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 dx (read-write),
// 6 ConvParams. Reference: src/reference/gemm_fp8_col2im.rs.

override FMT_A: u32 = 2u;
override FMT_B: u32 = 2u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> b_codes: array<u32>;
@group(0) @binding(4) var<storage, read> b_scales: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> cv: ConvParams;

// A's and B's block_shift (common/gemm.wgsl), set once by main.
var<private> a_shift: u32;
var<private> b_shift: u32;

// dY row o's values at elements 4 kw .. 4 kw + 3 (zeros past M).
fn load_a(o: u32, kw: u32) -> vec4<f32> {
    if (o >= p.m) {
        return vec4<f32>(0.0);
    }
    return word_values(a_codes[o * p.a_words + kw], FMT_A, a_scales[o * p.a_row_mul + ((4u * kw) >> a_shift)]);
}

// Column col of Wᵀ (its row) at elements 4 kw .. 4 kw + 3 (zeros past N).
fn load_b(col: u32, kw: u32) -> vec4<f32> {
    if (col >= p.n) {
        return vec4<f32>(0.0);
    }
    return word_values(b_codes[col * p.b_words + kw], FMT_B, b_scales[col * p.b_row_mul + ((4u * kw) >> b_shift)]);
}

// The tap's values of the lane's four pixels (common/col2im_tile.wgsl's fold_taps).
fn tap_values(o: vec4<u32>, tap: u32, c0: u32, lane: u32) -> Px {
    let ch0 = c0 + lane;
    let ch1 = c0 + 8u + lane;
    let col0 = select(p.n, tap + ch0, ch0 < cv.c);
    let col1 = select(p.n, tap + ch1, ch1 < cv.c);
    var v: Px;
    for (var kw = 0u; kw < (p.k + 3u) / 4u; kw++) {
        let w0 = load_b(col0, kw);
        let w1 = load_b(col1, kw);
        // broadcast_quarter gives channels 4g .. 4g+3 with their four values (column i: channel
        // 4g + i); mac_by_k takes the channels at each k (column g: channels 4g .. 4g+3).
        let u0 = transpose(broadcast_quarter(w0, w1, 0u));
        let u1 = transpose(broadcast_quarter(w0, w1, 1u));
        let u2 = transpose(broadcast_quarter(w0, w1, 2u));
        let u3 = transpose(broadcast_quarter(w0, w1, 3u));
        let k0 = mat4x4<f32>(u0[0], u1[0], u2[0], u3[0]);
        let k1 = mat4x4<f32>(u0[1], u1[1], u2[1], u3[1]);
        let k2 = mat4x4<f32>(u0[2], u1[2], u2[2], u3[2]);
        let k3 = mat4x4<f32>(u0[3], u1[3], u2[3], u3[3]);
        v.q0 = mac_by_k(v.q0, load_a(o.x, kw), k0, k1, k2, k3);
        v.q1 = mac_by_k(v.q1, load_a(o.y, kw), k0, k1, k2, k3);
        v.q2 = mac_by_k(v.q2, load_a(o.z, kw), k0, k1, k2, k3);
        v.q3 = mac_by_k(v.q3, load_a(o.w, kw), k0, k1, k2, k3);
    }
    return v;
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let tile = wg.x + wg.y * nwg.x;
    a_shift = block_shift(p.a_block_div);
    b_shift = block_shift(p.b_block_div);
    if (tile < p.total_tiles) {
        fold_taps(tile, lane);
    }
}
