//! Reference for `shaders/gemm_int_col2im.wgsl`: col2im of gemm_int's product (no epilogue),
//! composed from those two references. Values and magnitudes are folded in f64, so the bound of
//! a value is gemm_int's per product plus col2im's f32 sum over at most `kh·kw` taps.

use super::gemm_f32::{EpilogueRef, RefOut};
use super::gemm_int::gemm_int;
use super::im2col::col2im;
use crate::kernels::im2col::ConvGeom;
use crate::scheme::QuantLayout;

/// `col2im(A·Bᵀ)` for convolution `g`: A `[g.rows(), K]` (the output's gradient), B `[g.kdim(),
/// K]` (Wᵀ), one sample.
pub fn gemm_int_col2im(
    a_codes: &[u32],
    a_scales: &[f32],
    la: &QuantLayout,
    b_codes: &[u32],
    b_scales: &[f32],
    lb: &QuantLayout,
    g: &ConvGeom,
) -> RefOut {
    let dcols = gemm_int(a_codes, a_scales, la, 1, b_codes, b_scales, lb, &EpilogueRef::default());
    RefOut { value: col2im(&dcols.value, g), magnitude: col2im(&dcols.magnitude, g) }
}
