//! Reference for `shaders/quantize.wgsl`: scales from the group maxima ([`from_maxima`]), and the
//! packing of codes given each group's inverse scale ([`quantize`]).

use super::scale::scale;
use crate::rng;
use crate::scheme::{QuantLayout, Rounding};

/// What the kernel writes: from the group maxima `amax` (absmax's output for `l`), the scales
/// (`scale`'s) and packed words of `samples` stacked samples, sample `j` drawing from stream
/// `stream + j` (one sample: the plain quantizer; several only with stochastic rounding). `pack`
/// packs one sample given the inverse scales and its rounding: [`quantize`] over `x`, or the
/// transposing packing.
pub fn from_maxima_with(
    amax: &[u32],
    l: &QuantLayout,
    rounding: Rounding,
    samples: u32,
    pack: impl Fn(&[f32], Rounding) -> Vec<u32>,
) -> (Vec<u32>, Vec<f32>) {
    let (scales, inv) = scale(amax, l.format);
    let (mut codes, mut stacked) = (Vec::new(), Vec::new());
    for j in 0..samples {
        let r = match rounding {
            Rounding::Stochastic { seed, stream } => Rounding::Stochastic { seed, stream: stream.wrapping_add(j) },
            nearest => nearest,
        };
        codes.extend(pack(&inv, r));
        stacked.extend_from_slice(&scales);
    }
    (codes, stacked)
}

/// [`from_maxima_with`] for the `[rows, cols]` tensor `x`.
pub fn from_maxima(x: &[f32], amax: &[u32], l: &QuantLayout, rounding: Rounding, samples: u32) -> (Vec<u32>, Vec<f32>) {
    from_maxima_with(amax, l, rounding, samples, |inv, r| quantize(x, inv, l, r))
}

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
