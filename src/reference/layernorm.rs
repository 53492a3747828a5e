//! Reference for `shaders/layernorm.wgsl`, in f64.

/// `(y, stats)` of `x` `[rows, cols]` with `affine` = γ then β; stats per row = (mean, rstd).
pub fn forward(x: &[f32], rows: usize, cols: usize, affine: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let (mut y, mut stats) = (vec![0f32; rows * cols], vec![0f32; 2 * rows]);
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / cols as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        stats[2 * r] = mean as f32;
        stats[2 * r + 1] = rstd as f32;
        for c in 0..cols {
            y[r * cols + c] = (affine[c] as f64 * (row[c] as f64 - mean) * rstd + affine[cols + c] as f64) as f32;
        }
    }
    (y, stats)
}

/// `(dx, dγ, dβ)` from the forward's `stats`.
pub fn backward(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    cols: usize,
    affine: &[f32],
    stats: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut dx, mut dg, mut db) = (vec![0f32; rows * cols], vec![0f64; cols], vec![0f64; cols]);
    for r in 0..rows {
        let (mean, rstd) = (stats[2 * r] as f64, stats[2 * r + 1] as f64);
        let xh = |c: usize| (x[r * cols + c] as f64 - mean) * rstd;
        let g = |c: usize| dy[r * cols + c] as f64 * affine[c] as f64;
        let a = (0..cols).map(g).sum::<f64>() / cols as f64;
        let b = (0..cols).map(|c| g(c) * xh(c)).sum::<f64>() / cols as f64;
        for c in 0..cols {
            dx[r * cols + c] = (rstd * (g(c) - a - xh(c) * b)) as f32;
            dg[c] += dy[r * cols + c] as f64 * xh(c);
            db[c] += dy[r * cols + c] as f64;
        }
    }
    (dx, dg.iter().map(|&v| v as f32).collect(), db.iter().map(|&v| v as f32).collect())
}
