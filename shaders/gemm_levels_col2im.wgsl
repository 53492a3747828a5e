// gemm_levels_col2im: a TinyScript convolution's input gradient, dX = col2im(Q(dY)·W), in one
// launch on CPU adapters whose subgroup is one 8-wide SIMD vector (lavapipe), bit for bit what
// gemm_levels_lanes writes into dcols [B*OH*OW, KH*KW*C] followed by im2col.wgsl's col2im of it;
// gemm_f32_col2im's counterpart (see gemm_int_col2im why: no dcols written and read back). A =
// dY in TinyScript codes [M = B*OH*OW, K = output channels] (A_BITS bits, one scale per row, the
// table in `levels`), each K step's four codes decoded as gemm_levels_lanes decodes them
// (common/levels_lanes.wgsl); W f32 [K, KH*KW*C] as a convolution stores it.
// Math, per value of dX (pixel (b, y, x), channel c), as col2im sums: s = 0, then for each tap
// (ky, kx) in that order that reaches the pixel (from dY row o), s += v with v what
// gemm_levels_lanes forms for dcols' row o and column n = (ky*KW + kx)*C + c: from v = 0, for k
// in order, v = v + a(o, k) * W[k][n] (a multiply, then an add, as common/lanes.wgsl's quad_step).
// Layout: common/col2im_tile.wgsl's (32 pixels x 16 channels per subgroup); per tap and K step
// of 4, each lane decodes its four pixels' dY codes (gathered: each pixel's own row o) and loads
// two of the step's 16 W vec4s, which reach every lane by subgroupBroadcast: gemm_f32_col2im's
// loop (common/col2im_w.wgsl) over this file's load_dy.
// Needs C and K multiples of 4 (the launcher checks). Rows of pixels past the image and of taps
// outside it read zeros; channels past C read zeros and are not stored.
// aux0 = A's bits | A unsigned << 16, aux1 = A's level count (gemm_levels' fields).
// Bindings: 0 GemmParams, 1 a codes, 2 a scales, 3 levels, 4 w (read), 5 dx (read-write),
// 6 ConvParams. Reference: src/reference/gemm_levels_col2im.rs.

override A_BITS: u32 = 4u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> levels: array<u32>;
@group(0) @binding(4) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> cv: ConvParams;

// dY row o's values k .. k+3 (zeros for o past M).
fn load_dy(o: u32, k: u32) -> vec4<f32> {
    if (o >= p.m) {
        return vec4<f32>(0.0);
    }
    let at = o * p.a_words;
    let wd = step_words(k, p.k, A_BITS);
    return row_codes(a_codes[at + wd.x], a_codes[at + wd.y], wd, k, p.k, table_a, A_BITS, (p.aux0 & 0x10000u) == 0u,
                     0u, p.aux1 & 0xffffu, a_scales[o]);
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let tile = wg.x + wg.y * nwg.x;
    if (tile < p.total_tiles) {
        table_a = fill_table(0u, p.aux1 & 0xffffu);
        fold_taps(tile, lane);
    }
}
