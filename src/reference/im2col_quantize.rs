//! Reference for `im2col_quantize`: the composition it fuses, [`super::im2col::im2col`] then
//! [`super::quantize_fused::quantize_fused`] of the unfolded rows.

use crate::kernels::im2col::ConvGeom;
use crate::scheme::{QuantLayout, Rounding};

/// `(cols, codes, scales)`: the unfolded `[rows, kh·kw·c]` matrix of `x` and its quantization
/// under `l` (per-row scales).
pub fn im2col_quantize(x: &[f32], g: &ConvGeom, l: &QuantLayout, rounding: Rounding) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let cols = super::im2col::im2col(x, g);
    let (codes, scales) = super::quantize_fused::quantize_fused(&cols, l, rounding);
    (cols, codes, scales)
}
