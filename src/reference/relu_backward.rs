//! Reference for `shaders/relu_backward.wgsl`.

/// `dy · [y > 0]`.
pub fn relu_backward(y: &[f32], dy: &[f32]) -> Vec<f32> {
    y.iter().zip(dy).map(|(&y, &g)| if y > 0.0 { g } else { 0.0 }).collect()
}
