//! Reference for `shaders/gelu.wgsl`, in f64.

const A: f64 = 0.797_884_560_802_865_4;
const C: f64 = 0.044715;

/// GELU (tanh form).
pub fn forward(x: &[f32]) -> Vec<f32> {
    x.iter()
        .map(|&v| {
            let v = v as f64;
            (0.5 * v * (1.0 + (A * (v + C * v * v * v)).tanh())) as f32
        })
        .collect()
}

/// `dy · GELU'(x)`.
pub fn backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(dy)
        .map(|(&v, &g)| {
            let v = v as f64;
            let t = (A * (v + C * v * v * v)).tanh();
            (g as f64 * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * A * (1.0 + 3.0 * C * v * v))) as f32
        })
        .collect()
}
