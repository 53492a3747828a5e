//! Reference for `shaders/quantize_transpose.wgsl`: quantizes `L = xᵀ`, where `x` is stored as
//! `[cols, rows]` and `l` describes `L` (`[rows, cols]`).

use super::quantize::quantize_with;
use super::scale::scale;
use crate::scheme::{QuantLayout, Rounding};

/// Packed words of the transposed tensor with the given inverse scales (the packing alone).
pub fn quantize_transpose(x: &[f32], inv: &[f32], l: &QuantLayout, rounding: Rounding) -> Vec<u32> {
    quantize_with(l, rounding, inv, |row, col| x[(col * l.rows + row) as usize])
}

/// What the kernel writes: from the group maxima `amax` (absmax's output for `l`), the scales
/// (`scale`'s) and packed words of `samples` stacked samples, sample `j` drawing from stream
/// `stream + j` (one sample: the plain quantizer; several only with stochastic rounding).
pub fn from_maxima(x: &[f32], amax: &[u32], l: &QuantLayout, rounding: Rounding, samples: u32) -> (Vec<u32>, Vec<f32>) {
    let (scales, inv) = scale(amax, l.format);
    let (mut codes, mut stacked) = (Vec::new(), Vec::new());
    for j in 0..samples {
        let r = match rounding {
            Rounding::Stochastic { seed, stream } => Rounding::Stochastic { seed, stream: stream.wrapping_add(j) },
            nearest => nearest,
        };
        codes.extend(quantize_transpose(x, &inv, l, r));
        stacked.extend_from_slice(&scales);
    }
    (codes, stacked)
}
