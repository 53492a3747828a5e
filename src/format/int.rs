//! Symmetric integer formats: INT8 (`q ∈ [-127, 127]`, 4 per word), INT4 (`q ∈ [-7, 7]`, 8 per
//! word), INT3 (`q ∈ [-3, 3]`, in INT4's 4-bit lanes) and INT2 (`q ∈ [-1, 1]`, 16 per word),
//! stored as two's complement in `b` bits. The code `-2^(b-1)` (-128, -8, -2) is never produced,
//! so the grid is symmetric; it still decodes to its two's complement value.

use super::{round_shift, split};

/// Two's complement `b`-bit code of `q`.
#[inline]
pub fn to_code(q: i32, b: u32) -> u32 {
    (q as u32) & ((1u32 << b) - 1)
}

/// Sign-extends a `b`-bit code.
#[inline]
pub fn decode(code: u32, b: u32) -> i32 {
    ((code << (32 - b)) as i32) >> (32 - b)
}

/// Rounds a finite, non-subnormal scaled value to the integer grid, saturating at `±qmax`.
#[inline]
pub fn encode(y: f32, qmax: u32, b: u32, stochastic: bool, r24: u32) -> u32 {
    let bits = y.to_bits();
    let abs = bits & 0x7fff_ffff;
    if abs == 0 {
        return 0;
    }
    let (e, mant) = split(abs);
    let mag = if e >= 23 { qmax } else { round_shift(mant, (23 - e) as u32, stochastic, r24).min(qmax) };
    let q = if bits >> 31 == 1 { -(mag as i32) } else { mag as i32 };
    to_code(q, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_even_and_saturation() {
        assert_eq!(decode(encode(2.5, 127, 8, false, 0), 8), 2);
        assert_eq!(decode(encode(3.5, 127, 8, false, 0), 8), 4);
        assert_eq!(decode(encode(-3.5, 127, 8, false, 0), 8), -4);
        assert_eq!(decode(encode(0.49, 127, 8, false, 0), 8), 0);
        assert_eq!(decode(encode(300.0, 127, 8, false, 0), 8), 127);
        assert_eq!(decode(encode(-1e30, 7, 4, false, 0), 4), -7);
        assert_eq!(decode(encode(6.6, 7, 4, false, 0), 4), 7);
        assert_eq!(decode(to_code(-8, 4), 4), -8);
    }
}
