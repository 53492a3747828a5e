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

/// Entries `main_maxima_v4` then `main_both_v4` (or `main_scales_t_v4` and `main_tiles_v4`):
/// cols' codes and scales under `l` (cols not written) and those of L = colsᵀ under `lt`, each
/// with its own rounding: what [`im2col_quantize`] and
/// [`super::im2col_quantize_transpose::im2col_quantize_transpose`] give.
#[allow(clippy::type_complexity)]
pub fn im2col_quantize_both(
    x: &[f32],
    g: &ConvGeom,
    (l, rounding): (&QuantLayout, Rounding),
    (lt, rounding_t): (&QuantLayout, Rounding),
) -> ((Vec<u32>, Vec<f32>), (Vec<u32>, Vec<f32>)) {
    let (_, codes, scales) = im2col_quantize(x, g, l, rounding);
    ((codes, scales), super::im2col_quantize_transpose::im2col_quantize_transpose(x, g, lt, rounding_t))
}
