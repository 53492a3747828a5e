//! Reference for `shaders/avgpool.wgsl` (same order: exact).

use crate::kernels::maxpool::PoolGeom;

/// Window means.
pub fn forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let mut y = Vec::new();
    for b in 0..g.batch {
        for oy in 0..g.oh() {
            for ox in 0..g.ow() {
                for c in 0..g.c {
                    let mut s = 0f32;
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            s += x[((b * g.h + oy * g.k + ky) * g.w + ox * g.k + kx) * g.c + c];
                        }
                    }
                    y.push(s / (g.k * g.k) as f32);
                }
            }
        }
    }
    y
}

/// `dy / k²` spread over each window.
pub fn backward(dy: &[f32], g: &PoolGeom) -> Vec<f32> {
    let mut dx = vec![0f32; g.in_len()];
    for b in 0..g.batch {
        for y in 0..g.oh() * g.k {
            for x in 0..g.ow() * g.k {
                for c in 0..g.c {
                    dx[((b * g.h + y) * g.w + x) * g.c + c] =
                        dy[((b * g.oh() + y / g.k) * g.ow() + x / g.k) * g.c + c] / (g.k * g.k) as f32;
                }
            }
        }
    }
    dx
}
