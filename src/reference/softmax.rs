//! Reference for `shaders/softmax.wgsl`, in f64.

/// Row `r` of `[rows, cols]` is query `r % queries`; its unmasked keys are `0..end`.
fn end(r: usize, cols: usize, queries: usize, causal: bool) -> usize {
    if causal {
        (r % queries + 1).min(cols)
    } else {
        cols
    }
}

/// `softmax(scale·x)` per row, keys past the query masked to 0 when `causal`.
pub fn forward(x: &[f32], rows: usize, cols: usize, queries: usize, causal: bool, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        let e = end(r, cols, queries, causal);
        let row = &x[r * cols..r * cols + e];
        let m = row.iter().map(|&v| scale as f64 * v as f64).fold(f64::MIN, f64::max);
        let s: f64 = row.iter().map(|&v| (scale as f64 * v as f64 - m).exp()).sum();
        for (k, &v) in row.iter().enumerate() {
            out[r * cols + k] = ((scale as f64 * v as f64 - m).exp() / s) as f32;
        }
    }
    out
}

/// The scores' gradient `scale · p ⊙ (dp − Σ p·dp)` per row.
pub fn backward(p: &[f32], dp: &[f32], rows: usize, cols: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        let row = r * cols..(r + 1) * cols;
        let dot: f64 = p[row.clone()].iter().zip(&dp[row.clone()]).map(|(&a, &b)| a as f64 * b as f64).sum();
        for k in row {
            out[k] = (scale as f64 * p[k] as f64 * (dp[k] as f64 - dot)) as f32;
        }
    }
    out
}
