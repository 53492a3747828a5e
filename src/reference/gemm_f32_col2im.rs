//! Reference for `shaders/gemm_f32_col2im.wgsl`: col2im of gemm_f32's `dY·W` (W stored `[K,
//! kh·kw·c]`, no epilogue), composed from those two references in f64, with magnitudes for the
//! bound (gemm_f32's per product plus col2im's f32 sum over at most `kh·kw` taps).

use super::gemm_f32::{gemm_f32, EpilogueRef, RefOut};
use super::im2col::col2im;
use crate::kernels::im2col::ConvGeom;

/// `col2im(dy·w)` for convolution `g` with `k` output channels: dy `[g.rows(), k]`, w `[k,
/// g.kdim()]`.
pub fn gemm_f32_col2im(dy: &[f32], w: &[f32], g: &ConvGeom, k: usize) -> RefOut {
    let dcols = gemm_f32(dy, w, g.rows(), g.kdim(), k, false, true, &EpilogueRef::default());
    RefOut { value: col2im(&dcols.value, g), magnitude: col2im(&dcols.magnitude, g) }
}
