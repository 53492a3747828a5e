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
// per 256 multiply-adds (common/col2im_w.wgsl, shared with gemm_levels_col2im, over this file's
// load_dy). Needs C and K multiples of 4 (every vec4 within one row; the launcher
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

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let tile = wg.x + wg.y * nwg.x;
    if (tile < p.total_tiles) {
        fold_taps(tile, lane);
    }
}
