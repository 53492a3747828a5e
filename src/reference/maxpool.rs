//! Reference for `shaders/maxpool.wgsl`.

use crate::kernels::maxpool::PoolGeom;

/// `(y, arg)`: window maxima (first in row-major window order) and their flat input indices.
pub fn forward(x: &[f32], g: &PoolGeom) -> (Vec<f32>, Vec<u32>) {
    let (mut y, mut arg) = (Vec::new(), Vec::new());
    for b in 0..g.batch {
        for oy in 0..g.oh() {
            for ox in 0..g.ow() {
                for c in 0..g.c {
                    let (mut best, mut bi, mut first) = (f32::MIN, 0usize, true);
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            let idx = ((b * g.h + oy * g.k + ky) * g.w + ox * g.k + kx) * g.c + c;
                            if first || x[idx] > best {
                                best = x[idx];
                                bi = idx;
                                first = false;
                            }
                        }
                    }
                    y.push(best);
                    arg.push(bi as u32);
                }
            }
        }
    }
    (y, arg)
}

/// The gradient through the argmax.
pub fn backward(dy: &[f32], arg: &[u32], g: &PoolGeom) -> Vec<f32> {
    let mut dx = vec![0f32; g.in_len()];
    for (o, &a) in arg.iter().enumerate() {
        dx[a as usize] = dy[o];
    }
    dx
}
