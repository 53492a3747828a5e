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
// load_a4 / load_b4 (four elements of a stored row at a time: A always, B where it is stored
// [N, K]) and load_b (B stored [K, N]); trans_a must be 0 (load_a reads through load_a4).
// Reference: src/reference/gemm_levels.rs (decode, then f64; compared within a stated bound).
// Bindings: 0 params, 1 a codes, 2 a scales, 3 levels, 4 b (f32 bits or codes), 5 bias, 6 c,
// 7 amax, 8 b scales.
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED): the tiled loops' indices
// are bounded in gemm_tiled.wgsl; the loads read only rows < M, columns < N, k < k_end (a word
// load's last element clamped to k_end - 1), within the buffers the launcher checked (a level
// index is clamped to its table's count, at least 1).

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

// The tiled loops' word loads (gemm_tiled.wgsl's WORD_LOADS): the four elements from k (k % 4 =
// 0) of a stored row, which lie in one word, or straddle two where a word's code count is not a
// multiple of four (3, 5 and 6 bits: ten, six and five codes a word; common/levels.wgsl's
// step_words); one load of the row's scale and of each word for the four, where four element
// loads took four of each. Each element is decoded as load_a / load_b decode it (level_value),
// so the tiles' sums are unchanged.
const WORD_LOADS: bool = true;

// Elements k .. k + 3 of a coded row from the words lo and hi at step_words's indices w, 0 at
// k_end and past it.
fn row_values(lo: u32, hi: u32, w: vec2<u32>, k: u32, bits: u32, signed: bool, first: u32, count: u32, scale: f32) -> vec4<f32> {
    var v: vec4<f32>;
    for (var j = 0u; j < 4u; j++) {
        v[j] = level_value(select(lo, hi, (k + j) / (32u / bits) != w.x), k + j, bits, signed, first, count, scale);
    }
    return select(vec4<f32>(0.0), v, word_inside(k));
}

fn load_a4(row: u32, k: u32) -> vec4<f32> {
    if (row >= p.m || k >= k_end) {
        return vec4<f32>(0.0);
    }
    let bits = p.aux0 & 0xffu;
    let at = row * p.a_words;
    let w = step_words(k, k_end, bits);
    return row_values(a_codes[at + w.x], a_codes[at + w.y], w, k, bits, (p.aux0 & 0x10000u) == 0u, 0u, p.aux1 & 0xffffu,
                      a_scales[row]);
}

// B stored [N, K] (the loops take words only from such an operand): f32 values, or codes.
fn load_b4(col: u32, k: u32) -> vec4<f32> {
    if (col >= p.n || k >= k_end) {
        return vec4<f32>(0.0);
    }
    if (!B_CODES) {
        let at = col * p.k;
        let last = min(k + 3u, k_end - 1u);
        let v = vec4<f32>(bitcast<f32>(b[at + k]), bitcast<f32>(b[at + min(k + 1u, last)]),
                          bitcast<f32>(b[at + min(k + 2u, last)]), bitcast<f32>(b[at + last]));
        return select(vec4<f32>(0.0), v, word_inside(k));
    }
    let bits = (p.aux0 >> 8u) & 0xffu;
    let at = col * p.b_words;
    let w = step_words(k, k_end, bits);
    return row_values(b[at + w.x], b[at + w.y], w, k, bits, (p.aux0 & 0x20000u) == 0u, p.aux1 & 0xffffu, p.aux1 >> 16u,
                      b_scales[col]);
}

// One element of A for the tiled loops' element path, which they take only for a transposed A
// (never, here): element k % 4 of its four's load.
fn load_a(row: u32, k: u32) -> f32 {
    return load_a4(row, k & ~3u)[k % 4u];
}
