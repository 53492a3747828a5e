//! Reference for `shaders/quantize_transpose.wgsl`: quantizes `L = xᵀ`, where `x` is stored as
//! `[cols, rows]` and `l` describes `L` (`[rows, cols]`).

use super::quantize::quantize_with;
use crate::scheme::{QuantLayout, Rounding};

/// Packed words of the transposed tensor with the given inverse scales (the packing alone).
pub fn quantize_transpose(x: &[f32], inv: &[f32], l: &QuantLayout, rounding: Rounding) -> Vec<u32> {
    quantize_with(l, rounding, inv, |row, col| x[(col * l.rows + row) as usize])
}

/// What the kernel writes: [`super::quantize::from_maxima_with`] packing the transpose.
pub fn from_maxima(x: &[f32], amax: &[u32], l: &QuantLayout, rounding: Rounding, samples: u32) -> (Vec<u32>, Vec<f32>) {
    super::quantize::from_maxima_with(amax, l, rounding, samples, |inv, r| quantize_transpose(x, inv, l, r))
}
