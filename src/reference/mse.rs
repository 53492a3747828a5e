//! Reference for `shaders/mse.wgsl`: `dy` exactly as the shader computes it, the loss in f64.

/// `(loss per row, dy)` for `y`, `t` of `rows × cols`.
pub fn mse(y: &[f32], t: &[f32], cols: usize, grad_scale: f32) -> (Vec<f64>, Vec<f32>) {
    let s2 = 2.0 * grad_scale;
    let dy = y.iter().zip(t).map(|(a, b)| (a - b) * s2).collect();
    let loss = y
        .chunks(cols)
        .zip(t.chunks(cols))
        .map(|(a, b)| a.iter().zip(b).map(|(p, q)| (*p as f64 - *q as f64).powi(2)).sum())
        .collect();
    (loss, dy)
}
