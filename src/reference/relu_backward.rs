//! Reference for `shaders/relu_backward.wgsl`.

/// `dy · [y > 0]`.
pub fn relu_backward(y: &[f32], dy: &[f32]) -> Vec<f32> {
    y.iter().zip(dy).map(|(&y, &g)| if y > 0.0 { g } else { 0.0 }).collect()
}

/// `(dy + dy_b) · [y > 0]`: the two gradient contributions' sum as `add` forms it, then the mask.
pub fn relu_backward_sum(y: &[f32], dy: &[f32], dy_b: &[f32]) -> Vec<f32> {
    relu_backward(y, &super::add::add(dy, Some(dy_b), false))
}
