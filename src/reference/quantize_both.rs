//! Reference for `shaders/quantize_both.wgsl`: x's side is what `quantize_fused` writes and L =
//! xᵀ's what `quantize_transpose_fused` writes with its sums, both of x read through ReLU's mask
//! where one is given (`relu_backward`'s output), each SMP sample `j` quantized with its side's
//! stream + j and stacked after sample j − 1.

use super::relu_backward::relu_backward;
use super::{quantize_fused::quantize_fused, quantize_transpose_fused::quantize_transpose_fused_sums};
use crate::scheme::{QuantLayout, Rounding};

/// One side's stacked `(codes, scales)`.
pub type Stacked = (Vec<u32>, Vec<f32>);

/// `(x's codes and scales, L's codes and scales, L's row sums)` for `samples` samples, x
/// `[l.rows, l.cols]` and `lt` L's layout, `mask` as `relu_backward`'s `y`.
pub fn quantize_both(
    x: &[f32],
    mask: Option<&[f32]>,
    (l, rounding): (&QuantLayout, Rounding),
    (lt, rounding_t): (&QuantLayout, Rounding),
    samples: u32,
) -> (Stacked, Stacked, Vec<f32>) {
    let xm = match mask {
        Some(y) => relu_backward(y, x),
        None => x.to_vec(),
    };
    let (mut a, mut b, mut sums) = ((vec![], vec![]), (vec![], vec![]), vec![]);
    for j in 0..samples {
        let (c, s) = quantize_fused(&xm, l, sample(rounding, j));
        a.0.extend(c);
        a.1.extend(s);
        let (c, s, sm) = quantize_transpose_fused_sums(&xm, lt, sample(rounding_t, j));
        b.0.extend(c);
        b.1.extend(s);
        sums = sm;
    }
    (a, b, sums)
}

/// Sample j's rounding: the stream moved on by j (nearest unchanged).
fn sample(r: Rounding, j: u32) -> Rounding {
    match r {
        Rounding::Stochastic { seed, stream } => Rounding::Stochastic { seed, stream: stream.wrapping_add(j) },
        Rounding::Nearest => r,
    }
}

/// `(x's codes and scales, L's codes and scales)` of entry `main_given` for `samples` samples: x's
/// side as [`quantize_both`]'s (per row or per block), L's what `quantize_transpose` packs from the group
/// maxima `amax` (given: written by x's producer), each side with its own rounding.
pub fn from_maxima(
    x: &[f32],
    amax: &[u32],
    (l, rounding): (&QuantLayout, Rounding),
    (lt, rounding_t): (&QuantLayout, Rounding),
    samples: u32,
) -> (Stacked, Stacked) {
    let mut a = (vec![], vec![]);
    for j in 0..samples {
        let (c, s) = quantize_fused(x, l, sample(rounding, j));
        a.0.extend(c);
        a.1.extend(s);
    }
    (a, super::quantize_transpose::from_maxima(x, amax, lt, rounding_t, samples))
}
