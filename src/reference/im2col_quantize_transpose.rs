//! Reference for `im2col_quantize_transpose`: the composition it fuses, [`super::im2col::im2col`]
//! then [`super::quantize_transpose_fused::quantize_transpose_fused`] of the unfolded matrix.

use crate::kernels::im2col::ConvGeom;
use crate::scheme::{QuantLayout, Rounding};

/// `(codes, scales)`: the quantization of `im2col(x)ᵀ` under `l` (`[kh·kw·c, batch·oh·ow]`).
pub fn im2col_quantize_transpose(x: &[f32], g: &ConvGeom, l: &QuantLayout, rounding: Rounding) -> (Vec<u32>, Vec<f32>) {
    super::quantize_transpose_fused::quantize_transpose_fused(&super::im2col::im2col(x, g), l, rounding)
}
