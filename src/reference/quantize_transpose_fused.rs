//! Reference for `shaders/quantize_transpose_fused.wgsl`: the one-pass transposing quantizer
//! computes exactly what absmax (transposed) → quantize_transpose computes, so its
//! reference is that chain. `x` is stored `[cols, rows]`; `l` describes `L = xᵀ`.

use super::{absmax::absmax, quantize_transpose::quantize_transpose, scale::scale};
use crate::scheme::{QuantLayout, Rounding};

/// `(codes, scales)` of `xᵀ`.
pub fn quantize_transpose_fused(x: &[f32], l: &QuantLayout, rounding: Rounding) -> (Vec<u32>, Vec<f32>) {
    let (scales, inv) = scale(&absmax(x, l, true), l.format);
    (quantize_transpose(x, &inv, l, rounding), scales)
}

/// `(codes, scales, sums)`: [`quantize_transpose_fused`] and each row's sum of `xᵀ` in
/// `col_sum`'s order (the kernel's `sums` output).
pub fn quantize_transpose_fused_sums(x: &[f32], l: &QuantLayout, rounding: Rounding) -> (Vec<u32>, Vec<f32>, Vec<f32>) {
    let (codes, scales) = quantize_transpose_fused(x, l, rounding);
    (codes, scales, super::col_sum::col_sum(x, l.cols as usize, l.rows as usize))
}
