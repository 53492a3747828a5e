//! Reference for `shaders/quantize.wgsl`: packs codes given each group's inverse scale.

use crate::rng;
use crate::scheme::{QuantLayout, Rounding};

/// Quantizes the `[rows, cols]` tensor `x` into `rows * words_per_row` packed words.
pub fn quantize(x: &[f32], inv: &[f32], l: &QuantLayout, rounding: Rounding) -> Vec<u32> {
    quantize_with(l, rounding, inv, |row, col| x[(row * l.cols + col) as usize])
}

/// The packing loop, reading element `(row, col)` of the logical tensor through `load`.
pub fn quantize_with(l: &QuantLayout, rounding: Rounding, inv: &[f32], load: impl Fn(u32, u32) -> f32) -> Vec<u32> {
    let (key, stochastic) = rounding.key();
    let per_word = l.per_word();
    let b = l.format.bits();
    let mut out = vec![0u32; l.words()];
    for row in 0..l.rows {
        for word in 0..l.words_per_row {
            let col0 = word * per_word;
            let s_inv = inv[l.group(row, col0) as usize];
            let mut packed = 0u32;
            for i in 0..per_word {
                let col = col0 + i;
                if col < l.cols {
                    let r = if stochastic { rng::draw24(key, row * l.cols + col) } else { 0 };
                    packed |= l.format.quantize(load(row, col), s_inv, stochastic, r) << (i * b);
                }
            }
            out[(row * l.words_per_row + word) as usize] = packed;
        }
    }
    out
}
