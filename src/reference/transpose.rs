//! Reference for `shaders/transpose.wgsl`.

/// `src` `[batches, rows, cols]` as `[batches, cols, rows]`.
pub fn transpose(src: &[f32], batches: usize, rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0f32; batches * rows * cols];
    for b in 0..batches {
        let base = b * rows * cols;
        for r in 0..rows {
            for c in 0..cols {
                dst[base + c * rows + r] = src[base + r * cols + c];
            }
        }
    }
    dst
}
