//! FP4 E2M1, the element format of OCP MXFP4 and of NVFP4.
//!
//! A code is `s ee m` (sign bit 3), exponent bias 1, no infinities or NaN: the eight magnitudes
//! are `0, 0.5, 1, 1.5, 2, 3, 4, 6` (code 1 is the one subnormal, `0.5`). Twice a value is an
//! integer (`0, 1, 2, 3, 4, 6, 8, 12`), which is how the integer GEMM multiplies them exactly
//! ([`lane`]). Encoding rounds to nearest-even or stochastically between neighbouring values and
//! saturates at ±6; NaN encodes to 0 and ±inf to ±6 (as E4M3); both zeros to code 0. It is the
//! FP8 rule of [`super::fp8`] with 2 exponent and 1 mantissa bits, the sign moved to bit 3.

use super::fp8::Fp8Spec;

/// E2M1 as a minifloat (sign at bit 7 in [`Fp8Spec`]'s view; see [`encode`] and [`decode`]).
pub const E2M1: Fp8Spec = Fp8Spec { ebits: 2, mbits: 1, bias: 1, max_code: 0x7, has_inf: false };

/// Largest magnitude.
pub const MAX: f32 = 6.0;

/// Encodes a finite, non-subnormal scaled value (round to nearest-even or stochastically with
/// draw `r24`, saturating at ±6).
#[inline]
pub fn encode(y: f32, stochastic: bool, r24: u32) -> u32 {
    let c = E2M1.encode(y, stochastic, r24);
    ((c >> 4) & 0x8) | (c & 0x7)
}

/// The code of a non-finite input (its bits): NaN → 0, ±inf → ±6.
#[inline]
pub fn encode_nonfinite(bits: u32) -> u32 {
    if bits & 0x007f_ffff != 0 {
        0
    } else {
        ((bits >> 28) & 0x8) | E2M1.max_code
    }
}

/// The value of any of the 16 codes.
#[inline]
pub fn decode(code: u32) -> f32 {
    E2M1.decode(((code & 0x8) << 4) | (code & 0x7))
}

/// Twice the code's value, as the integer an integer GEMM lane holds: `0, ±1, ±2, ±3, ±4, ±6, ±8,
/// ±12`.
#[inline]
pub fn lane(code: u32) -> i32 {
    let m = code & 7;
    let (e, f) = (m >> 1, m & 1);
    let v = if e == 0 { f } else { (2 + f) << (e - 1) } as i32;
    if code & 8 != 0 {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_by_hand() {
        let want = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
        for c in 0..16u32 {
            let v = if c & 8 != 0 { -want[(c & 7) as usize] } else { want[(c & 7) as usize] };
            assert_eq!(decode(c), v, "code {c:#x}");
            assert_eq!(lane(c) as f32, 2.0 * v, "lane of {c:#x}");
            // Every value encodes to its own code (but -0, which is +0).
            if c != 8 {
                assert_eq!(encode(v, false, 0), c, "{v}");
            }
        }
        // Ties to even between neighbours: 0.25 → 0, 0.75 → 1, 1.25 → 1, 1.75 → 2, 2.5 → 2,
        // 3.5 → 4, 5 → 4; saturation past 6.
        for (y, c) in [(0.25, 0), (0.75, 2), (1.25, 2), (1.75, 4), (2.5, 4), (3.5, 6), (5.0, 6), (100.0, 7)] {
            assert_eq!(encode(y, false, 0), c, "{y}");
            assert_eq!(encode(-y, false, 0), if c == 0 { 0 } else { c | 8 }, "-{y}");
        }
        assert_eq!(encode(0.3, false, 0), 1);
        assert_eq!(encode(5.1, false, 0), 7);
        assert_eq!(encode_nonfinite(f32::NAN.to_bits()), 0);
        assert_eq!(encode_nonfinite(f32::INFINITY.to_bits()), 7);
        assert_eq!(encode_nonfinite(f32::NEG_INFINITY.to_bits()), 0xf);
        // Stochastic: 5 lies halfway between 4 and 6; up iff the draw is below half of 2^24.
        assert_eq!(encode(5.0, true, (1 << 23) - 1), 7);
        assert_eq!(encode(5.0, true, 1 << 23), 6);
        // Below the subnormal: 0.1 rounds up to 0.5 with probability 0.2.
        assert_eq!(encode(0.1, true, (0.2 * 16777216.0) as u32 - 1), 1);
        assert_eq!(encode(0.1, true, (0.2 * 16777216.0) as u32 + 1), 0);
    }
}
