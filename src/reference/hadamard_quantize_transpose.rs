//! Reference for `shaders/hadamard_quantize_transpose.wgsl`: the chain the kernel fuses. x
//! (`[l.cols, l.rows]`, read as 0 where a mask is not above 0) is rotated by the signed Hadamard
//! in blocks of 16 down its columns (`hadamard`), the result's transpose is quantized per block
//! (`quantize_transpose_fused`, whose NVFP4 tensor maximum is the rotated tensor's), and the row
//! sums of the unrotated, masked xᵀ are `col_sum`'s first level (its partial sums per chunk).

use super::{col_sum::partial_sums, hadamard, quantize_transpose_fused, relu_backward::relu_backward};
use crate::scheme::{QuantLayout, Rounding};

/// `(codes, scales, partial sums)` of L = ((x masked)·D·H₁₆)ᵀ, `D` the diagonal of sign key `signs`.
pub fn hadamard_quantize_transpose(
    x: &[f32],
    mask: Option<&[f32]>,
    l: &QuantLayout,
    signs: u32,
    rounding: Rounding,
) -> (Vec<u32>, Vec<f32>, Vec<f32>) {
    let (rows, cols) = (l.cols as usize, l.rows as usize);
    let read = match mask {
        Some(m) => relu_backward(m, x),
        None => x.to_vec(),
    };
    let r = hadamard::hadamard_signed(&read, rows, cols, 16, hadamard::Axis::Rows, signs);
    let (codes, scales) = quantize_transpose_fused::quantize_transpose_fused(&r, l, rounding);
    (codes, scales, partial_sums(&read, rows, cols))
}
