//! Reference for `shaders/batchnorm_commit.wgsl`, in f32 as the kernel computes each value.

use crate::kernels::batchnorm::MOMENTUM;

/// A layer's running statistics `running` (`[2C]`: mean, variance) after the update from its
/// batch statistics `st` (`[3C]`: mean, 1/std, unbiased variance):
/// `(1 − momentum)·running + momentum·batch`.
pub fn commit(st: &[f32], running: &[f32]) -> Vec<f32> {
    let c = running.len() / 2;
    let m = MOMENTUM;
    (0..2 * c).map(|i| (1.0 - m) * running[i] + m * st[if i < c { i } else { i + c }]).collect()
}
