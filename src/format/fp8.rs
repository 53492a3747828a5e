//! OCP 8-bit floating point: E4M3 (`Fp8Spec` [`E4M3`]) and E5M2 ([`E5M2`]).
//!
//! Layout of a code, high bit first: `s eeee mmm` (E4M3) or `s eeeee mm` (E5M2).
//! - E4M3 (bias 7): no infinities; `0x7F`/`0xFF` are NaN; max finite `0x7E` = 448; subnormals
//!   `m·2^-9`; smallest normal 2^-6.
//! - E5M2 (bias 15): IEEE-like; exponent 31 with `m = 0` is ±inf, `m ≠ 0` NaN; max finite `0x7B`
//!   = 57344; subnormals `m·2^-16`; smallest normal 2^-14.
//!
//! Encoding rounds to nearest-even or stochastically, handles the subnormal range, and saturates
//! finite values past the largest finite code to it (never to inf/NaN). ±inf encode to ±inf in
//! E5M2 and saturate to ±448 in E4M3. NaN encodes to `0x7F` in both. Both zeros encode as `+0` (code 0), so the sign of a zero
//! (which GPUs that flush subnormals do not preserve consistently) never changes a code.

use super::{round_shift, split};

/// The parameters of one FP8 variant.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fp8Spec {
    /// Exponent bits.
    pub ebits: u32,
    /// Mantissa bits.
    pub mbits: u32,
    /// Exponent bias.
    pub bias: i32,
    /// Largest finite magnitude code (sign bit clear).
    pub max_code: u32,
    /// Whether the format has infinities (E5M2) or saturates them (E4M3).
    pub has_inf: bool,
}

/// OCP E4M3 ("FN": finite only).
pub const E4M3: Fp8Spec = Fp8Spec { ebits: 4, mbits: 3, bias: 7, max_code: 0x7E, has_inf: false };
/// OCP E5M2.
pub const E5M2: Fp8Spec = Fp8Spec { ebits: 5, mbits: 2, bias: 15, max_code: 0x7B, has_inf: true };

/// The canonical NaN code of both formats.
pub const NAN_CODE: u32 = 0x7F;

impl Fp8Spec {
    /// Largest finite value.
    pub fn max_finite(&self) -> f32 {
        self.decode(self.max_code)
    }

    /// Encodes a finite, non-subnormal f32 (see the module docs for rounding and saturation).
    pub fn encode(&self, y: f32, stochastic: bool, r24: u32) -> u32 {
        let bits = y.to_bits();
        let sign = (bits >> 24) & 0x80;
        let abs = bits & 0x7fff_ffff;
        if abs == 0 {
            return 0;
        }
        let (e, mant) = split(abs);
        let mag = if e >= 1 - self.bias {
            if e + self.bias > (1 << self.ebits) - 1 {
                self.max_code
            } else {
                let q = round_shift(mant, 23 - self.mbits, stochastic, r24);
                (((e + self.bias - 1) as u32) << self.mbits) + q
            }
        } else {
            let shift = (23 - self.mbits as i32 + (1 - self.bias - e)) as u32;
            round_shift(mant, shift, stochastic, r24)
        };
        if mag == 0 {
            return 0;
        }
        sign | mag.min(self.max_code)
    }

    /// The code of a non-finite input, given its bits.
    pub fn encode_nonfinite(&self, bits: u32) -> u32 {
        if bits & 0x007f_ffff != 0 {
            return NAN_CODE;
        }
        let sign = (bits >> 24) & 0x80;
        if self.has_inf {
            sign | (((1u32 << self.ebits) - 1) << self.mbits)
        } else {
            sign | self.max_code
        }
    }

    /// Decodes any of the 256 codes.
    pub fn decode(&self, code: u32) -> f32 {
        let sign = (code & 0x80) << 24;
        let mag = code & 0x7f;
        let exp = mag >> self.mbits;
        let m = mag & ((1 << self.mbits) - 1);
        let emax = (1u32 << self.ebits) - 1;
        if self.has_inf && exp == emax {
            return if m == 0 { f32::from_bits(sign | 0x7f80_0000) } else { f32::NAN };
        }
        if !self.has_inf && mag == 0x7f {
            return f32::NAN;
        }
        let abs = if exp == 0 {
            // m · 2^(1 - bias - mbits): exact, since every FP8 subnormal is an f32 normal.
            (m as f32) * f32::from_bits(((127 + 1 - self.bias - self.mbits as i32) as u32) << 23)
        } else {
            f32::from_bits((((exp as i32 - self.bias + 127) as u32) << 23) | (m << (23 - self.mbits)))
        };
        f32::from_bits(abs.to_bits() | sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmarks() {
        assert_eq!(E4M3.max_finite(), 448.0);
        assert_eq!(E5M2.max_finite(), 57344.0);
        assert_eq!(E4M3.decode(0x01), 2f32.powi(-9));
        assert_eq!(E5M2.decode(0x01), 2f32.powi(-16));
        assert_eq!(E4M3.decode(0x08), 2f32.powi(-6));
        assert_eq!(E5M2.decode(0x7C), f32::INFINITY);
        assert_eq!(E5M2.decode(0xFC), f32::NEG_INFINITY);
        assert!(E4M3.decode(0x7F).is_nan() && E4M3.decode(0xFF).is_nan());
        assert_eq!(E4M3.encode(1000.0, false, 0), 0x7E);
        assert_eq!(E4M3.encode(-1000.0, true, 0), 0xFE);
        assert_eq!(E5M2.encode(1e9, false, 0), 0x7B);
        assert_eq!(E4M3.encode_nonfinite(f32::INFINITY.to_bits()), 0x7E);
        assert_eq!(E5M2.encode_nonfinite(f32::NEG_INFINITY.to_bits()), 0xFC);
        assert_eq!(E5M2.encode_nonfinite(f32::NAN.to_bits()), NAN_CODE);
        assert_eq!(E4M3.encode(-0.0, false, 0), 0x00);
    }
}
