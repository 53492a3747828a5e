//! Reference for `shaders/gemm_fp8.wgsl`: dequantize both operands exactly as the `dequantize`
//! reference does, then the f64 product of `gemm_f32`.

use super::dequantize::dequantize;
use super::gemm_f32::{gemm_f32, EpilogueRef, RefOut};
use crate::scheme::QuantLayout;

/// `epilogue(deq(A)·deq(B)ᵀ)` with A `[M, K]` and B `[N, K]` packed along K.
pub fn gemm_fp8(
    a_codes: &[u32],
    a_scales: &[f32],
    la: &QuantLayout,
    b_codes: &[u32],
    b_scales: &[f32],
    lb: &QuantLayout,
    e: &EpilogueRef,
) -> RefOut {
    let a = dequantize(a_codes, a_scales, la);
    let b = dequantize(b_codes, b_scales, lb);
    gemm_f32(&a, &b, la.rows as usize, lb.rows as usize, la.cols as usize, false, false, e)
}
