//! Reference for `shaders/col_sum.wgsl` (same summation order, so exact).

/// Column sums of `[rows, cols]`.
pub fn col_sum(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).map(|j| (0..rows).fold(0f32, |s, i| s + x[i * cols + j])).collect()
}
