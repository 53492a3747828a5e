//! Reference for `shaders/quantize_transpose.wgsl`: quantizes `L = xᵀ`, where `x` is stored as
//! `[cols, rows]` and `l` describes `L` (`[rows, cols]`).

use super::quantize::quantize_with;
use crate::scheme::{QuantLayout, Rounding};

/// Packed words of the transposed tensor.
pub fn quantize_transpose(x: &[f32], inv: &[f32], l: &QuantLayout, rounding: Rounding) -> Vec<u32> {
    quantize_with(l, rounding, inv, |row, col| x[(col * l.rows + row) as usize])
}
