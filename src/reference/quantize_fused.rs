//! Reference for `shaders/quantize_fused.wgsl`: the one-pass quantizer computes exactly what the
//! two-pass chain absmax → quantize computes, so its reference is that chain.

use super::{absmax::absmax, quantize::quantize, scale::scale};
use crate::scheme::{QuantLayout, Rounding};

/// `(codes, scales)` of `x`.
pub fn quantize_fused(x: &[f32], l: &QuantLayout, rounding: Rounding) -> (Vec<u32>, Vec<f32>) {
    let (scales, inv) = scale(&absmax(x, l, false), l.format);
    (quantize(x, &inv, l, rounding), scales)
}
