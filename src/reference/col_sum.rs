//! Reference for `shaders/col_sum.wgsl`, in the shader's summation order, so exact.

use crate::kernels::{reduce_chunks, REDUCE_LANES};

/// Column sums of `[rows, cols]`: per chunk of rows, 8 lanes each summing every 8th row, the lanes
/// added in order; then the chunks added in order.
pub fn col_sum(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let (chunk_rows, chunks) = reduce_chunks(rows);
    (0..cols)
        .map(|j| {
            let partial = |c: usize| {
                let (start, end) = (c * chunk_rows, ((c + 1) * chunk_rows).min(rows));
                let lane = |l: usize| (start + l..end).step_by(REDUCE_LANES).fold(0f32, |s, r| s + x[r * cols + j]);
                (1..REDUCE_LANES).fold(lane(0), |t, l| t + lane(l))
            };
            (1..chunks).fold(partial(0), |t, c| t + partial(c))
        })
        .collect()
}
