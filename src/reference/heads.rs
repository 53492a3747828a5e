//! Reference for `shaders/heads.wgsl`.

use crate::kernels::heads::HeadsGeom;

/// Part `part` of `[B, T, P, H, D]` as `[B, H, T, D]`.
pub fn split(src: &[f32], g: &HeadsGeom, part: usize) -> Vec<f32> {
    let mut dst = vec![0f32; g.head_major_len()];
    for (i, tm) in pairs(g, part) {
        dst[i] = src[tm];
    }
    dst
}

/// `src` `[B, H, T, D]` written into part `part` of `dst` `[B, T, P, H, D]`.
pub fn merge(src: &[f32], g: &HeadsGeom, part: usize, dst: &mut [f32]) {
    for (i, tm) in pairs(g, part) {
        dst[tm] = src[i];
    }
}

/// (head-major index, token-major index) of every element of part `part`.
fn pairs(g: &HeadsGeom, part: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..g.head_major_len()).map(move |i| {
        let e = i % g.d;
        let t = (i / g.d) % g.t;
        let h = (i / (g.d * g.t)) % g.heads;
        let b = i / (g.d * g.t * g.heads);
        (i, (((b * g.t + t) * g.parts + part) * g.heads + h) * g.d + e)
    })
}
