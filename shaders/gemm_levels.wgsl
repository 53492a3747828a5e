// gemm_levels: C = A·op(B)ᵀ with A in TinyScript codes (src/tinyscript.rs: `aux0`-bit codes,
// ⌊32/bits⌋ per word, rows on word boundaries, one scale per row, levels in a fixed-point table
// of `aux1` entries) decoded to f32 as tiles are loaded, B in f32 ([N, K], or [K, N] when
// trans_b), f32 accumulation: the gradient products of a TinyScript-quantized neural gradient.
// Tiling, split-K and epilogue as gemm_f32: shaders/common/gemm_tiled.wgsl over this file's
// load_a / load_b (trans_a must be 0).
// Reference: src/reference/gemm_levels.rs (decode, then f64; compared within a stated bound).
// Bindings: 0 params, 1 a codes, 2 a scales, 3 levels, 4 b, 5 bias, 6 c, 7 amax.

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> levels: array<u32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;

fn load_a(row: u32, k: u32) -> f32 {
    if (row >= p.m || k >= k_end) {
        return 0.0;
    }
    let bits = p.aux0;
    let per_word = 32u / bits;
    let word = a_codes[row * p.a_words + k / per_word];
    let code = (word >> ((k % per_word) * bits)) & ((1u << bits) - 1u);
    let sign_bit = 1u << (bits - 1u);
    let v = f32(levels[min(code & (sign_bit - 1u), p.aux1 - 1u)]) * (1.0 / 16777216.0) * a_scales[row];
    return select(v, -v, (code & sign_bit) != 0u);
}

fn load_b(col: u32, k: u32) -> f32 {
    if (col >= p.n || k >= k_end) {
        return 0.0;
    }
    if (p.trans_b == 1u) {
        return b[k * p.n + col];
    }
    return b[col * p.k + k];
}
