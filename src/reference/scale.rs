//! Reference for `shaders/scale.wgsl`: group maxima to `(scales, inverse scales)`.

use crate::format::{scale_for_amax, Format};

/// Applies `format::scale_for_amax` to every group maximum (given as f32 bits).
pub fn scale(amax: &[u32], format: Format) -> (Vec<f32>, Vec<f32>) {
    amax.iter().map(|&a| scale_for_amax(f32::from_bits(a), format)).unzip()
}
