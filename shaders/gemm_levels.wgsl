// gemm_levels: C = A·op(B)ᵀ with A in TinyScript codes (src/tinyscript.rs: b-bit codes,
// ⌊32/b⌋ per word, rows on word boundaries, one scale per row, magnitudes in a fixed-point level
// table) decoded to f32 as tiles are loaded (common/levels.wgsl's level_value, which
// gemm_levels_lanes decodes with too), and B either f32 ([N, K], or [K, N] when trans_b)
// or, with B_CODES, TinyScript codes too (stored [N, K], or [K, N] when trans_b, scaled per
// stored row); f32 accumulation. The products of a TinyScript-quantized network: the forward
// Q(X)·Wᵀ and input gradient Q(dY)·W (B in f32), the weight gradient Q(dYᵀ)·Q(X) (B coded).
// aux0 = A's bits | B's bits << 8 | A unsigned << 16 | B unsigned << 17; aux1 = A's level
// count | B's level count << 16; `levels` holds A's table, then B's.
// Tiling, split-K and epilogue as gemm_f32: shaders/common/gemm_tiled.wgsl over this file's
// load_a / load_b (trans_a must be 0).
// Reference: src/reference/gemm_levels.rs (decode, then f64; compared within a stated bound).
// Bindings: 0 params, 1 a codes, 2 a scales, 3 levels, 4 b (f32 bits or codes), 5 bias, 6 c,
// 7 amax, 8 b scales.
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED): the tiled loops' indices
// are bounded in gemm_tiled.wgsl; load_a / load_b read only rows < M, columns < N, k < k_end,
// within the buffers the launcher checked (a level index is clamped to its table's count,
// at least 1).

override B_CODES: bool = false;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> levels: array<u32>;
@group(0) @binding(4) var<storage, read> b: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read> b_scales: array<f32>;

fn load_a(row: u32, k: u32) -> f32 {
    if (row >= p.m || k >= k_end) {
        return 0.0;
    }
    let bits = p.aux0 & 0xffu;
    let word = a_codes[row * p.a_words + k / (32u / bits)];
    return level_value(word, k, bits, (p.aux0 & 0x10000u) == 0u, 0u, p.aux1 & 0xffffu, a_scales[row]);
}

fn load_b(col: u32, k: u32) -> f32 {
    if (col >= p.n || k >= k_end) {
        return 0.0;
    }
    // (stored row, stored column) of op(B)[col][k].
    var r = col;
    var s = k;
    var width = p.k;
    if (p.trans_b == 1u) {
        r = k;
        s = col;
        width = p.n;
    }
    if (!B_CODES) {
        return bitcast<f32>(b[r * width + s]);
    }
    let bits = (p.aux0 >> 8u) & 0xffu;
    let word = b[r * p.b_words + s / (32u / bits)];
    return level_value(word, s, bits, (p.aux0 & 0x20000u) == 0u, p.aux1 & 0xffffu, p.aux1 >> 16u, b_scales[r]);
}
