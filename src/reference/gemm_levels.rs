//! Reference for `shaders/gemm_levels.wgsl`: decode A (and a coded B) by the TinyScript spec,
//! then the f32 GEMM reference in f64.

use super::gemm_f32::{gemm_f32, EpilogueRef, RefOut};
use super::tinyscript::dequantize;
use crate::tinyscript::LevelTable;

/// `A` = (`codes`, `scales`, `table`) `[m, k]`, `op(b)` `[n, k]` (stored `[k, n]` if `trans_b`).
#[allow(clippy::too_many_arguments)]
pub fn gemm_levels(
    codes: &[u32],
    scales: &[f32],
    table: &LevelTable,
    m: usize,
    k: usize,
    b: &[f32],
    n: usize,
    trans_b: bool,
    e: &EpilogueRef,
) -> RefOut {
    let a = dequantize(codes, scales, m, k, table);
    gemm_f32(&a, b, m, n, k, false, trans_b, e)
}

/// As [`gemm_levels`] with B TinyScript-coded too: (`b_codes`, `b_scales`, `b_table`) stored
/// `[n, k]`, or `[k, n]` when `trans_b` (one scale per stored row).
#[allow(clippy::too_many_arguments)]
pub fn gemm_levels_coded(
    codes: &[u32],
    scales: &[f32],
    table: &LevelTable,
    m: usize,
    k: usize,
    b_codes: &[u32],
    b_scales: &[f32],
    b_table: &LevelTable,
    n: usize,
    trans_b: bool,
    e: &EpilogueRef,
) -> RefOut {
    let (rows, cols) = if trans_b { (k, n) } else { (n, k) };
    let b = dequantize(b_codes, b_scales, rows, cols, b_table);
    gemm_levels(codes, scales, table, m, k, &b, n, trans_b, e)
}
