// The register-table decode of the lanes TinyScript kernels (gemm_levels_lanes,
// gemm_levels_col2im): each code decoded to the value common/levels.wgsl's level_value gives
// (the same operations), a K step's four codes of a row from at most two word loads (levels.wgsl's
// step_words). Uses the including kernel's `levels` binding.

// Up to 8 levels of each operand's table in registers (as f32 of the fixed-point level, the
// conversion level_value makes), filled by the including kernel with fill_table: a level is then
// picked by comparisons, not loaded lane by lane; longer tables are read from `levels` as
// level_value reads them.
var<private> table_a: mat2x4<f32>;
var<private> table_b: mat2x4<f32>;

fn fill_table(first: u32, count: u32) -> mat2x4<f32> {
    var t: mat2x4<f32>;
    for (var i = 0u; i < 8u; i++) {
        t[i / 4u][i % 4u] = f32(levels[first + min(i, count - 1u)]);
    }
    return t;
}

// level_value's result for a code of the operand whose register table is t (level_value itself
// where the table is longer than 8).
fn decode(t: mat2x4<f32>, word: u32, col: u32, bits: u32, signed: bool, first: u32, count: u32, scale: f32) -> f32 {
    if (count > 8u) {
        return level_value(word, col, bits, signed, first, count, scale);
    }
    let c = level_code(word, col, bits, signed, count);
    let i = c.x;
    var l = t[0][0];
    l = select(l, t[0][1], i >= 1u);
    l = select(l, t[0][2], i >= 2u);
    l = select(l, t[0][3], i >= 3u);
    l = select(l, t[1][0], i >= 4u);
    l = select(l, t[1][1], i >= 5u);
    l = select(l, t[1][2], i >= 6u);
    l = select(l, t[1][3], i >= 7u);
    return signed_level(l, c, scale);
}

// A coded row stored along K at elements k .. k + 3 from the words `lo` and `hi` at step_words's
// indices w (zeros from k_end); `scale` is the row's.
fn row_codes(lo: u32, hi: u32, w: vec2<u32>, k: u32, k_end: u32, t: mat2x4<f32>, bits: u32, signed: bool,
             first: u32, count: u32, scale: f32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let kk = k + j;
        if (kk < k_end) {
            v[j] = decode(t, select(lo, hi, kk / (32u / bits) != w.x), kk, bits, signed, first, count, scale);
        }
    }
    return v;
}
