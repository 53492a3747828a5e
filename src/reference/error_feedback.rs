//! Reference for `shaders/error_feedback.wgsl`.

/// `v - d` elementwise: what an error-feedback exchange carries to the next step.
pub fn error_feedback(v: &[f32], d: &[f32]) -> Vec<f32> {
    v.iter().zip(d).map(|(v, d)| v - d).collect()
}
