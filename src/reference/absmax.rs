//! Reference for `shaders/absmax.wgsl`: per-group maximum of finite, normal `|x|`, as f32 bits.

use crate::scheme::QuantLayout;

/// Ordered bits of `|x|`; non-finite and subnormal values count as 0 (mirrors `amax_bits`).
#[allow(clippy::manual_range_contains)] // written as the shader writes it
pub fn amax_bits(x: f32) -> u32 {
    let b = x.to_bits() & 0x7fff_ffff;
    if b >= 0x7f80_0000 || b < 0x0080_0000 {
        0
    } else {
        b
    }
}

/// Group maxima of the logical `[rows, cols]` tensor (and the tensor's maximum after them when
/// the format needs it); `transposed` reads it from `x` stored as `[cols, rows]`.
pub fn absmax(x: &[f32], l: &QuantLayout, transposed: bool) -> Vec<u32> {
    let mut out = vec![0u32; l.amax_len()];
    for row in 0..l.rows {
        for col in 0..l.cols {
            let v = if transposed { x[(col * l.rows + row) as usize] } else { x[(row * l.cols + col) as usize] };
            let g = l.group(row, col) as usize;
            out[g] = out[g].max(amax_bits(v));
        }
    }
    if l.format.needs_tensor_amax() {
        out[l.n_groups as usize] = out.iter().copied().max().unwrap_or(0);
    }
    out
}
