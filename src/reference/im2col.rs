//! Reference for `shaders/im2col.wgsl` (same order of summation: exact).

use crate::kernels::im2col::ConvGeom;

/// The unfold.
pub fn im2col(x: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (oh, ow, kd) = (g.oh(), g.ow(), g.kdim());
    let mut out = vec![0f32; g.rows() * kd];
    for b in 0..g.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let row = (b * oh + oy) * ow + ox;
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let y = (oy * g.stride + ky) as isize - g.pad as isize;
                        let xx = (ox * g.stride + kx) as isize - g.pad as isize;
                        if y < 0 || xx < 0 || y as usize >= g.h || xx as usize >= g.w {
                            continue;
                        }
                        for c in 0..g.c {
                            out[row * kd + (ky * g.kw + kx) * g.c + c] =
                                x[((b * g.h + y as usize) * g.w + xx as usize) * g.c + c];
                        }
                    }
                }
            }
        }
    }
    out
}

/// The adjoint fold, summing in `(kh, kw)` order per input element as the shader does (in f32;
/// other element types, such as f64 for error bounds, sum in the same order).
pub fn col2im<T: Copy + Default + std::ops::AddAssign>(dcols: &[T], g: &ConvGeom) -> Vec<T> {
    let (oh, ow, kd) = (g.oh(), g.ow(), g.kdim());
    let mut out = vec![T::default(); g.input_len()];
    for b in 0..g.batch {
        for y in 0..g.h {
            for x in 0..g.w {
                for c in 0..g.c {
                    let mut s = T::default();
                    for ky in 0..g.kh {
                        let ty = (y + g.pad) as isize - ky as isize;
                        if ty < 0 || !(ty as usize).is_multiple_of(g.stride) || ty as usize / g.stride >= oh {
                            continue;
                        }
                        for kx in 0..g.kw {
                            let tx = (x + g.pad) as isize - kx as isize;
                            if tx < 0 || !(tx as usize).is_multiple_of(g.stride) || tx as usize / g.stride >= ow {
                                continue;
                            }
                            let row = (b * oh + ty as usize / g.stride) * ow + tx as usize / g.stride;
                            s += dcols[row * kd + (ky * g.kw + kx) * g.c + c];
                        }
                    }
                    out[((b * g.h + y) * g.w + x) * g.c + c] = s;
                }
            }
        }
    }
    out
}
