// gemm_fp8_lanes: gemm_fp8 for CPU adapters whose subgroup is one 8-wide SIMD vector (lavapipe):
// C = epilogue(deq(A)·deq(B)ᵀ) with A [M, K] and B [N, K] packed along K in FP8 (FMT_A, FMT_B as
// gemm_fp8's: 2 = E4M3, 3 = E5M2, 8 = MXFP8). Why a kernel of its own: gemm_fp8 runs gemm_f32's
// workgroup-memory tiles, which llvmpipe loads lane by lane. Here each lane word (four codes of
// one row, which share a scale: blocks hold whole words) is decoded and scaled as gemm_fp8 loads
// them (scaled_value of the decoded code and its group's scale: the values `dequantize` gives)
// into a vec4, and the 16 x 32 tiles, broadcasts, k-by-k multiply-adds and stores of
// gemm_f32_lanes (common/lanes.wgsl) run on them: the same products added in the same order as
// gemm_fp8's tiles add them (where neither splits K), so on llvmpipe, which fuses no multiply-add,
// the same bits.
// With p.batches > 1 the products follow each other as in gemm_fp8. Split along K as gemm_f32_lanes
// splits (one product, no epilogue): split s adds lane words [s·k_split / 4, (s + 1)·k_split / 4)
// and stores its partial sums at c[s·M·N..] in C's layout, which the launcher's col_sum adds in
// split order.
// Rows and columns past M and N read zeros and are not stored.
// Bindings: 0 params, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 bias, 6 c (read-write),
// 7 amax (atomic), as gemm_fp8's. Reference: src/reference/gemm_fp8.rs (f64 accumulation of the
// dequantized operands, compared within a stated bound).

override FMT_A: u32 = 2u;
override FMT_B: u32 = 2u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> b_codes: array<u32>;
@group(0) @binding(4) var<storage, read> b_scales: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;

// A's and B's block_shift (common/gemm.wgsl), set once by main.
var<private> a_shift: u32;
var<private> b_shift: u32;

// Row m0 + 8 * half + lane's values at elements 4 kw .. 4 kw + 3 (zeros past M; a word's codes
// past K are zero codes, whose value is 0).
fn load_a(m0: u32, kw: u32, lane: u32, half: u32) -> vec4<f32> {
    let row = m0 + 8u * half + lane;
    if (row >= p.m) {
        return vec4<f32>(0.0);
    }
    let r = a_row0 + row;
    return word_values(a_codes[r * p.a_words + kw], FMT_A, a_scales[r * p.a_row_mul + ((4u * kw) >> a_shift)]);
}

fn b_word(col: u32, kw: u32) -> vec4<f32> {
    if (col >= p.n) {
        return vec4<f32>(0.0);
    }
    let r = b_row0 + col;
    return word_values(b_codes[r * p.b_words + kw], FMT_B, b_scales[r * p.b_row_mul + ((4u * kw) >> b_shift)]);
}

// This lane's four columns (n0 + 8 cc + lane) at lane word kw: column kk of the result holds
// the four columns' values at element 4 kw + kk.
fn load_b(n0: u32, kw: u32, lane: u32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(b_word(n0 + lane, kw), b_word(n0 + 8u + lane, kw), b_word(n0 + 16u + lane, kw),
                                 b_word(n0 + 24u + lane, kw)));
}

// This lane's column cc of the tile (the stores of common/lanes.wgsl).
fn column(n0: u32, lane: u32, cc: u32) -> u32 {
    return n0 + 8u * cc + lane;
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    if (!st.valid) {
        return;
    }
    a_shift = block_shift(p.a_block_div);
    b_shift = block_shift(p.b_block_div);
    let m0 = (st.tile / p.tiles_n) * 16u;
    let n0 = (st.tile % p.tiles_n) * 32u;
    if (p.splits > 1u) {
        c_off = st.base;
    }
    var acc: Acc;
    // (k_split is a multiple of 64: every split but the last ends on a whole word.)
    for (var kw = st.k_lo / 4u; kw < (st.k_hi + 3u) / 4u; kw++) {
        let lo = load_a(m0, kw, lane, 0u);
        let hi = load_a(m0, kw, lane, 1u);
        acc = mac_quads(acc, load_b(n0, kw, lane), rows_nt(lo, 0u), rows_nt(lo, 1u), rows_nt(hi, 0u), rows_nt(hi, 1u));
    }
    lanes_finish(acc, m0, n0, lane);
}
