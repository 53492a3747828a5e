//! Reference for `shaders/col_sum.wgsl`, in the shader's summation order, so exact.

use crate::kernels::{reduce_chunks, REDUCE_LANES};

/// Column sums of `[rows, cols]`: per chunk of rows, 8 lanes each summing every 8th row, the lanes
/// added in order ([`partial_sums`]); then the chunks added in order.
pub fn col_sum(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let chunks = reduce_chunks(rows).1;
    let partial = partial_sums(x, rows, cols);
    (0..cols).map(|j| (1..chunks).fold(partial[j], |t, c| t + partial[c * cols + j])).collect()
}

/// The first level, `[chunks, cols]`: chunk c's column sums, its 8 lanes each summing every 8th
/// row of the chunk, the lanes added in order.
pub fn partial_sums(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let (chunk_rows, chunks) = reduce_chunks(rows);
    let mut out = vec![0f32; chunks * cols];
    for c in 0..chunks {
        let (start, end) = (c * chunk_rows, ((c + 1) * chunk_rows).min(rows));
        for j in 0..cols {
            let lane = |l: usize| (start + l..end).step_by(REDUCE_LANES).fold(0f32, |s, r| s + x[r * cols + j]);
            out[c * cols + j] = (1..REDUCE_LANES).fold(lane(0), |t, l| t + lane(l));
        }
    }
    out
}
