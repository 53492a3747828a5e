//! Reference for `shaders/gemm_levels_col2im.wgsl`: col2im of gemm_levels' `Q(dY)·W` (W stored
//! `[K, kh·kw·c]`, no epilogue), composed from those two references in f64, with magnitudes for
//! the bound (the GEMM's per product plus col2im's f32 sum over at most `kh·kw` taps).

use super::gemm_f32::{EpilogueRef, RefOut};
use super::gemm_levels::gemm_levels;
use super::im2col::col2im;
use crate::kernels::im2col::ConvGeom;
use crate::tinyscript::LevelTable;

/// `col2im(Q(dy)·w)` for convolution `g`: dY = (`codes`, `scales`, `table`) `[g.rows(), k]`, w
/// `[k, g.kdim()]`.
pub fn gemm_levels_col2im(
    codes: &[u32],
    scales: &[f32],
    table: &LevelTable,
    k: usize,
    w: &[f32],
    g: &ConvGeom,
) -> RefOut {
    let dcols = gemm_levels(codes, scales, table, g.rows(), k, w, g.kdim(), true, &EpilogueRef::default());
    RefOut { value: col2im(&dcols.value, g), magnitude: col2im(&dcols.magnitude, g) }
}
