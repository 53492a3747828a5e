//! Reference for `shaders/tinyscript.wgsl`: codes and scales by the spec in
//! [`crate::tinyscript`] (exact), moments in f64 (the shader's f32 sums are compared within a
//! bound).

use crate::rng;
use crate::scheme::Rounding;
use crate::tinyscript::{scale_for_amax, LevelTable};

/// `(codes, scales)` of `x` `[rows, cols]` quantized per row onto `table`.
pub fn quantize(x: &[f32], rows: usize, cols: usize, table: &LevelTable, rounding: Rounding) -> (Vec<u32>, Vec<f32>) {
    let (key, stochastic) = rounding.key();
    let per_word = table.per_word() as usize;
    let words = cols.div_ceil(per_word);
    let (mut codes, mut scales) = (vec![0u32; rows * words], vec![0f32; rows]);
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let amax =
            row.iter().map(|v| v.abs()).filter(|v| v.is_finite() && v.to_bits() >= 0x0080_0000).fold(0f32, f32::max);
        let (scale, inv) = scale_for_amax(amax);
        scales[r] = scale;
        for (c, &v) in row.iter().enumerate() {
            let idx = (r * cols + c) as u32;
            let r24 = if stochastic { rng::draw24(key, idx) } else { 0 };
            codes[r * words + c / per_word] |=
                table.encode(v, inv, stochastic, r24) << ((c % per_word) as u32 * table.bits);
        }
    }
    (codes, scales)
}

/// As [`quantize`] for the transpose of `xt` (stored `[cols, rows]`).
pub fn quantize_transposed(
    xt: &[f32],
    rows: usize,
    cols: usize,
    table: &LevelTable,
    rounding: Rounding,
) -> (Vec<u32>, Vec<f32>) {
    let x: Vec<f32> = (0..rows * cols).map(|i| xt[(i % cols) * rows + i / cols]).collect();
    quantize(&x, rows, cols, table, rounding)
}

/// The values of `codes` (`[rows, cols]`, packed) at `scales`.
pub fn dequantize(codes: &[u32], scales: &[f32], rows: usize, cols: usize, table: &LevelTable) -> Vec<f32> {
    let per_word = table.per_word() as usize;
    let words = cols.div_ceil(per_word);
    let mask = (1u32 << table.bits) - 1;
    (0..rows * cols)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            let code = (codes[r * words + c / per_word] >> ((c % per_word) as u32 * table.bits)) & mask;
            table.decode(code, scales[r])
        })
        .collect()
}

/// `(Σ|x|, Σx², absmax)` in f64 over finite normal values.
pub fn moments(x: &[f32]) -> (f64, f64, f64) {
    x.iter().filter(|v| v.is_finite() && v.abs().to_bits() >= 0x0080_0000).fold((0.0, 0.0, 0.0), |(a, q, m), &v| {
        let v = v.abs() as f64;
        (a + v, q + v * v, m.max(v))
    })
}
