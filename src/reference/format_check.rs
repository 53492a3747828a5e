//! Reference for `shaders/format_check.wgsl`: the host spec applied element by element.

use crate::format::{recip_rne, Format};
use crate::rng;

/// Unscaled encode of every element (`Format::quantize` with inverse scale 1).
pub fn encode(x: &[f32], format: Format, stochastic: bool, key: u32) -> Vec<u32> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| format.quantize(v, 1.0, stochastic, if stochastic { rng::draw24(key, i as u32) } else { 0 }))
        .collect()
}

/// Decode of every code.
pub fn decode(codes: &[u32], format: Format) -> Vec<f32> {
    codes.iter().map(|&c| format.decode(c)).collect()
}

/// `recip_rne` of every element.
pub fn recip(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| recip_rne(v)).collect()
}

/// The first `n` draws of `key`.
pub fn rng(key: u32, n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| rng::draw(key, i)).collect()
}
