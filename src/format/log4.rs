//! LUQ's 4-bit logarithmic format (Chmiel et al., "Logarithmic Unbiased Quantization").
//!
//! A code is `s ccc`: sign bit 3, level `c` in bits 0..3. `c = 0` is zero; `c ∈ 1..=7` is
//! `±2^(c-1)·α`, so the levels are `α, 2α, …, 64α`. The scale `α = amax·2^-6` puts the top level
//! exactly on the group's largest magnitude: nothing is clipped. Code 8 (negative zero) is never
//! produced and decodes to 0.
//!
//! In the scaled domain `y = |x|/α`:
//! - `y ≥ 1`, `2^e ≤ y < 2^(e+1)`: rounds between the two powers of two, up with probability
//!   `(y - 2^e)/2^e` (stochastic, unbiased) or when that fraction exceeds ½ or ties (nearest);
//! - `y < 1` (below the smallest level): stochastic underflow, `α` with probability `y`, else 0
//!   (unbiased); nearest gives `α` iff `y > ½`.
//!
//! NaN encodes to 0, ±inf to `±64α`.

use super::{round_shift, split};

/// Code of a level with a sign.
#[inline]
pub fn encode_level(neg: bool, c: u32) -> u32 {
    if c == 0 {
        0
    } else {
        ((neg as u32) << 3) | c
    }
}

/// Encodes a finite, non-subnormal scaled value.
#[inline]
pub fn encode(y: f32, stochastic: bool, r24: u32) -> u32 {
    let bits = y.to_bits();
    let abs = bits & 0x7fff_ffff;
    if abs == 0 {
        return 0;
    }
    let (e, mant) = split(abs);
    let c = if e >= 7 {
        7
    } else if e >= 0 {
        // round_shift(mant, 23) is 1 (stay at 2^e) or 2 (move up to 2^(e+1)).
        (e as u32 + round_shift(mant, 23, stochastic, r24)).min(7)
    } else {
        round_shift(mant, (23 - e) as u32, stochastic, r24)
    };
    encode_level(bits >> 31 == 1, c)
}

/// Value of a code in units of `α`.
#[inline]
pub fn decode(code: u32) -> f32 {
    let c = code & 7;
    if c == 0 {
        return 0.0;
    }
    let mag = f32::from_bits((127 + c - 1) << 23);
    if code & 8 != 0 {
        -mag
    } else {
        mag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(decode(encode(1.0, false, 0)), 1.0);
        assert_eq!(decode(encode(64.0, false, 0)), 64.0);
        assert_eq!(decode(encode(-3.0, false, 0)), -4.0); // tie between 2 and 4 goes up
        assert_eq!(decode(encode(2.9, false, 0)), 2.0);
        assert_eq!(decode(encode(0.5, false, 0)), 0.0);
        assert_eq!(decode(encode(0.51, false, 0)), 1.0);
        assert_eq!(decode(encode(200.0, true, 0)), 64.0);
        assert_eq!(decode(8), 0.0);
    }
}
