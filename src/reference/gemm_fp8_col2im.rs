//! Reference for `shaders/gemm_fp8_col2im.wgsl`: col2im of gemm_fp8's product (no epilogue),
//! composed from those two references in f64, with magnitudes for the bound (gemm_fp8's per
//! product plus col2im's f32 sum over at most `kh·kw` taps).

use super::gemm_f32::{EpilogueRef, RefOut};
use super::gemm_fp8::gemm_fp8;
use super::im2col::col2im;
use crate::kernels::im2col::ConvGeom;
use crate::scheme::QuantLayout;

/// `col2im(deq(A)·deq(B)ᵀ)` for convolution `g`: A `[g.rows(), K]` (the output's gradient), B
/// `[g.kdim(), K]` (Wᵀ).
pub fn gemm_fp8_col2im(
    a_codes: &[u32],
    a_scales: &[f32],
    la: &QuantLayout,
    b_codes: &[u32],
    b_scales: &[f32],
    lb: &QuantLayout,
    g: &ConvGeom,
) -> RefOut {
    let dcols = gemm_fp8(a_codes, a_scales, la, b_codes, b_scales, lb, &EpilogueRef::default());
    RefOut { value: col2im(&dcols.value, g), magnitude: col2im(&dcols.magnitude, g) }
}
