//! Reference for `shaders/sgd.wgsl`.

use crate::kernels::sgd::SgdStep;

/// Updates `w` and `v` in place.
pub fn sgd(w: &mut [f32], v: &mut [f32], g: &[f32], s: SgdStep) {
    for i in 0..w.len() {
        v[i] = s.momentum * v[i] + (g[i] + s.weight_decay * w[i]);
        w[i] -= s.lr * v[i];
    }
}
