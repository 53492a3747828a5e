// gemm_f32_col2im: an f32 convolution's input gradient, dX = col2im(dY·W), in one launch on CPU
// adapters whose subgroup is one 8-wide SIMD vector (lavapipe), bit for bit what gemm_f32_lanes
// writes into dcols [B*OH*OW, KH*KW*C] (dY [M, K] times W [K, KH*KW*C] as stored, K = output
// channels) followed by im2col.wgsl's col2im of it; gemm_int_col2im's counterpart (see there why).
// Math, per value of dX (pixel (b, y, x), channel c), as col2im sums: s = 0, then for each tap
// (ky, kx) in that order that reaches the pixel (from dY row o), s += v with v what
// gemm_f32_lanes forms for dcols' row o and column n = (ky*KW + kx)*C + c: from v = 0, for k in
// order, v = v + dY[o][k] * W[k][n] (a multiply, then an add: llvmpipe fuses none, and this is
// the order and rounding of common/lanes.wgsl's quad_step).
// Layout: common/col2im_tile.wgsl's (32 pixels x 16 channels per subgroup). Per tap and K step
// of 4, each lane loads its four pixels' dY vec4s (gathered: each pixel's own row o) and two of
// the step's 16 W vec4s (item i: row k + i / 4, channels 4 (i % 4) .. of the tile; lane L loads
// items L and 8 + L), which reach every lane by subgroupBroadcast: as gemm_f32_lanes, 6 loads
// per 256 multiply-adds. Needs C and K multiples of 4 (every vec4 within one row; the launcher
// checks). Rows of pixels past the image and of taps outside it read zeros (load_dy past M);
// channels past C read zeros and are not stored.
// Bindings: 0 GemmParams, 1 dy (read), 2 w (read), 3 dx (read-write), 4 ConvParams.
// Reference: src/reference/gemm_f32_col2im.rs.

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> cv: ConvParams;

// dY row o's values k .. k+3 (zeros for o past M).
fn load_dy(o: u32, k: u32) -> vec4<f32> {
    if (o >= p.m) {
        return vec4<f32>(0.0);
    }
    return dy[(o * p.k + k) / 4u];
}

// Item i of the K step at k of the tap whose columns start at `tap`, channels from c0: W's row
// k + i / 4, channels c0 + 4 (i % 4) .. + 3 (zeros past C).
fn load_w(tap: u32, c0: u32, k: u32, i: u32) -> vec4<f32> {
    let ch = c0 + 4u * (i % 4u);
    if (ch >= cv.c) {
        return vec4<f32>(0.0);
    }
    return w[((k + i / 4u) * p.n + tap + ch) / 4u];
}

// The tap's values of the lane's four pixels (common/col2im_tile.wgsl's fold_taps).
fn tap_values(o: vec4<u32>, tap: u32, c0: u32, lane: u32) -> Px {
    var v: Px;
    for (var k = 0u; k < p.k; k += 4u) {
        let v0 = load_w(tap, c0, k, lane);
        let v1 = load_w(tap, c0, k, 8u + lane);
        let w0 = broadcast_quarter(v0, v1, 0u);
        let w1 = broadcast_quarter(v0, v1, 1u);
        let w2 = broadcast_quarter(v0, v1, 2u);
        let w3 = broadcast_quarter(v0, v1, 3u);
        v.q0 = mac_by_k(v.q0, load_dy(o.x, k), w0, w1, w2, w3);
        v.q1 = mac_by_k(v.q1, load_dy(o.y, k), w0, w1, w2, w3);
        v.q2 = mac_by_k(v.q2, load_dy(o.z, k), w0, w1, w2, w3);
        v.q3 = mac_by_k(v.q3, load_dy(o.w, k), w0, w1, w2, w3);
    }
    return v;
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let tile = wg.x + wg.y * nwg.x;
    if (tile < p.total_tiles) {
        fold_taps(tile, lane);
    }
}
