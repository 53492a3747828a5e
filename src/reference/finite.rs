//! Reference for `shaders/finite.wgsl`.

/// The status after checking `xs` at step `step`, from `status` `[flag, first step]`: the flag
/// set and the first step lowered to `step` if any value is NaN or ±inf.
pub fn finite(xs: &[&[f32]], step: u32, status: [u32; 2]) -> [u32; 2] {
    if xs.iter().any(|x| x.iter().any(|v| !v.is_finite())) {
        [status[0] | 1, status[1].min(step)]
    } else {
        status
    }
}
