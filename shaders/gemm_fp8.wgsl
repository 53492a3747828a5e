// gemm_fp8: FP8 GEMM, C = epilogue(A·Bᵀ) with A [M, K] and B [N, K] packed along K in FP8
// (FMT_A, FMT_B: 2 = E4M3, 3 = E5M2, 8 = MXFP8, whose values are E4M3; E4M3 × E4M3 forward,
// E5M2 gradient × E4M3 backward, MXFP8 × MXFP8 with a scale per 32 along K).
// Codes are decoded and multiplied by their group scale on the way into workgroup memory (a
// non-finite code keeping its value, as `dequantize` does), a word of four codes at a time, then
// accumulated in f32: the product of exactly the values `dequantize` gives.
// Tiles as gemm_f32 (128, 64 or 32 square; chosen by the launcher's tune): the loops are
// shaders/common/gemm_tiled.wgsl over this file's load_a4 / load_b4 (a word at a time).
// Reference: src/reference/gemm_fp8.rs (f64 accumulation of the dequantized operands, compared
// within a stated bound). Bindings as gemm_int: 0 params, 1 a codes, 2 a scales, 3 b codes,
// 4 b scales, 5 bias, 6 c (read-write), 7 amax (atomic).
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED): the tiled loops' indices
// are bounded in gemm_tiled.wgsl; load_a4 / load_b4 (and load_a / load_b through them) read word
// k / 4 of a row only for rows < M, columns < N, k < k_end, within the buffers the launcher
// checked.

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

// The tiled loops' word loads (gemm_tiled.wgsl's WORD_LOADS): the four elements from k (k % 4 =
// 0) of a row, each decoded and multiplied by its scale (word_values of common/fp8.wgsl: one
// scale for the word, as scale blocks of at least 8 hold whole words), 0 at k_end and past it;
// one word and one scale load for the four.
const WORD_LOADS: bool = true;

fn load_a4(row: u32, k: u32) -> vec4<f32> {
    if (row >= p.m || k >= k_end) {
        return vec4<f32>(0.0);
    }
    let w = a_codes[(a_row0 + row) * p.a_words + k / 4u];
    let v = word_values(w, FMT_A, a_scales[(a_row0 + row) * p.a_row_mul + (k >> block_shift(p.a_block_div))]);
    return select(vec4<f32>(0.0), v, word_inside(k));
}

fn load_b4(col: u32, k: u32) -> vec4<f32> {
    if (col >= p.n || k >= k_end) {
        return vec4<f32>(0.0);
    }
    let w = b_codes[(b_row0 + col) * p.b_words + k / 4u];
    let v = word_values(w, FMT_B, b_scales[(b_row0 + col) * p.b_row_mul + (k >> block_shift(p.b_block_div))]);
    return select(vec4<f32>(0.0), v, word_inside(k));
}

// One dequantized element for the tiled loops' element path, which this kernel takes only for a
// transposed operand (never, here): element k % 4 of its word's load.
fn load_a(row: u32, k: u32) -> f32 {
    return load_a4(row, k & ~3u)[k % 4u];
}

fn load_b(col: u32, k: u32) -> f32 {
    return load_b4(col, k & ~3u)[k % 4u];
}
