//! Group maxima to `(scales, inverse scales)`: the rule the two-pass quantizers' second launch
//! (`shaders/quantize.wgsl`, `shaders/quantize_transpose.wgsl`, through `common/maxima.wgsl`)
//! and the one-pass kernels apply.

use crate::format::{group_scale, Format};

/// Applies `format::group_scale` to every group maximum (given as f32 bits); a format whose
/// scales need the tensor's maximum finds it after the groups' (as absmax leaves it).
pub fn scale(amax: &[u32], format: Format) -> (Vec<f32>, Vec<f32>) {
    let (groups, tensor) = if format.needs_tensor_amax() {
        let (g, t) = amax.split_at(amax.len() - 1);
        (g, f32::from_bits(t[0]))
    } else {
        (amax, 0.0)
    };
    groups
        .iter()
        .map(|&a| {
            let a = f32::from_bits(a);
            group_scale(a, if format.needs_tensor_amax() { tensor } else { a }, format)
        })
        .unzip()
}
