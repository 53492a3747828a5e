//! Reference for `shaders/adam.wgsl` (f32, the shader's order of operations).

use crate::kernels::adam::AdamStep;

/// Updates `w` and `state` (`[m, v]`) in place, with bias correction `bias`.
pub fn adam(w: &mut [f32], state: &mut [f32], g: &[f32], s: AdamStep, bias: f32) {
    let n = w.len();
    for i in 0..n {
        let m = s.beta1 * state[i] + (1.0 - s.beta1) * g[i];
        let v = s.beta2 * state[n + i] + (1.0 - s.beta2) * (g[i] * g[i]);
        state[i] = m;
        state[n + i] = v;
        w[i] -= s.lr * (bias * m / (v.sqrt() + s.eps) + s.weight_decay * w[i]);
    }
}
