// The value of a TinyScript code (src/tinyscript.rs), shared by gemm_levels and gemm_levels_lanes:
// both decode with these operations, so their operands are the same f32 values. Uses the
// including kernel's `levels` binding (A's table, then B's, as fixed-point u32).

// The code of element `col` of a coded row, from its word: (its level index, clamped to the
// table's `count` levels; 1 where the code's sign bit is set, else 0). An unsigned table's codes
// have no sign bit.
fn level_code(codes_word: u32, col: u32, bits: u32, signed: bool, count: u32) -> vec2<u32> {
    let per_word = 32u / bits;
    let code = (codes_word >> ((col % per_word) * bits)) & ((1u << bits) - 1u);
    let sign_bit = select(0u, 1u << (bits - 1u), signed);
    return vec2<u32>(min(code & ~sign_bit, count - 1u), u32((code & sign_bit) != 0u));
}

// ±level · scale from the f32 of a fixed-point level (src/tinyscript.rs): the one rounding both
// kernels make.
fn signed_level(level: f32, c: vec2<u32>, scale: f32) -> f32 {
    let v = level * (1.0 / 16777216.0) * scale;
    return select(v, -v, c.y == 1u);
}

// Element `col` of a coded row from its word, its level read from `levels` at first + index.
fn level_value(codes_word: u32, col: u32, bits: u32, signed: bool, first: u32, count: u32, scale: f32) -> f32 {
    let c = level_code(codes_word, col, bits, signed, count);
    return signed_level(f32(levels[first + c.x]), c, scale);
}

// The words holding elements k and k + 3 (the last element before k_end, if that comes first)
// of a coded row, as indices from its first word: at most two words hold four consecutive codes
// from a multiple of 4 (codes of 2 to 8 bits: four or more a word).
fn step_words(k: u32, k_end: u32, bits: u32) -> vec2<u32> {
    return vec2<u32>(k / (32u / bits), min(k + 3u, k_end - 1u) / (32u / bits));
}
