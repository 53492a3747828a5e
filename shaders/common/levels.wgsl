// The value of a TinyScript code (src/tinyscript.rs), shared by gemm_levels and gemm_levels_lanes:
// both decode with these operations, so their operands are the same f32 values. Uses the
// including kernel's `levels` binding (A's table, then B's, as fixed-point u32).

// Element `col` of a coded row from its word: ±level · scale (src/tinyscript.rs; an unsigned
// table's codes have no sign bit).
fn level_value(codes_word: u32, col: u32, bits: u32, signed: bool, first: u32, count: u32, scale: f32) -> f32 {
    let per_word = 32u / bits;
    let code = (codes_word >> ((col % per_word) * bits)) & ((1u << bits) - 1u);
    let sign_bit = select(0u, 1u << (bits - 1u), signed);
    let v = f32(levels[first + min(code & ~sign_bit, count - 1u)]) * (1.0 / 16777216.0) * scale;
    return select(v, -v, (code & sign_bit) != 0u);
}
