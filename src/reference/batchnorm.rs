//! Reference for `shaders/batchnorm.wgsl`, in f64.

use crate::kernels::batchnorm::{EPS, MOMENTUM};

/// `(stats [mean, invstd], running')` of `x` `[rows, c]`.
pub fn stats(x: &[f32], rows: usize, c: usize, running: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mut st, mut run) = (vec![0f32; 2 * c], running.to_vec());
    for ch in 0..c {
        let mean = (0..rows).map(|r| x[r * c + ch] as f64).sum::<f64>() / rows as f64;
        let v = (0..rows).map(|r| (x[r * c + ch] as f64 - mean).powi(2)).sum::<f64>();
        st[ch] = mean as f32;
        st[c + ch] = (1.0 / (v / rows as f64 + EPS as f64).sqrt()) as f32;
        let m = MOMENTUM as f64;
        run[ch] = ((1.0 - m) * running[ch] as f64 + m * mean) as f32;
        run[c + ch] = ((1.0 - m) * running[c + ch] as f64 + m * v / (rows.max(2) - 1) as f64) as f32;
    }
    (st, run)
}

/// `y = γ·x̂ + β` (ReLU if asked).
pub fn forward(x: &[f32], c: usize, st: &[f32], affine: &[f32], relu: bool) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = i % c;
            let y = affine[ch] as f64 * ((v as f64 - st[ch] as f64) * st[c + ch] as f64) + affine[c + ch] as f64;
            (if relu { y.max(0.0) } else { y }) as f32
        })
        .collect()
}

/// `(sums [dγ, dβ], dx)`.
pub fn backward(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    c: usize,
    st: &[f32],
    affine: &[f32],
    relu: bool,
) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / c;
    let g = |i: usize| if relu && y[i] <= 0.0 { 0.0 } else { dy[i] as f64 };
    let xh = |i: usize| (x[i] as f64 - st[i % c] as f64) * st[c + i % c] as f64;
    let mut sums = vec![0f64; 2 * c];
    for i in 0..x.len() {
        sums[i % c] += g(i) * xh(i);
        sums[c + i % c] += g(i);
    }
    let n = rows as f64;
    let dx = (0..x.len())
        .map(|i| {
            (affine[i % c] as f64 * st[c + i % c] as f64 / n * (n * g(i) - sums[c + i % c] - xh(i) * sums[i % c]))
                as f32
        })
        .collect();
    (sums.iter().map(|&s| s as f32).collect(), dx)
}
