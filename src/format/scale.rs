//! Scales from group maxima, and the exactly specified reciprocal both sides use.
//!
//! WGSL's division is only accurate to 2.5 ULP, so a kernel that divided by the scale could not
//! match its CPU reference bit for bit. Instead the inverse scale is computed once per group by
//! [`recip_rne`], an integer long division that is correctly rounded on every device, and every
//! element is then multiplied by it (multiplication is correctly rounded in WGSL).

use super::Format;

/// Smallest positive normal f32.
pub const MIN_NORMAL: f32 = f32::MIN_POSITIVE;

/// Correctly rounded (nearest-even) `1/x` for positive normal `x`, computed with 32-bit integer
/// operations only. Results that would be subnormal (`x > 2^126`) flush to 0; `x` must not be
/// zero, subnormal, negative or non-finite (those give 0).
pub fn recip_rne(x: f32) -> f32 {
    let bits = x.to_bits();
    let exp = (bits >> 23) as i32;
    if bits >> 31 != 0 || exp == 0 || exp == 255 {
        return 0.0;
    }
    let e = exp - 127;
    let m = (bits & 0x007f_ffff) | 0x0080_0000;
    if m == 0x0080_0000 {
        // Power of two: exact.
        let re = -e;
        return if re < -126 { 0.0 } else { f32::from_bits(((re + 127) as u32) << 23) };
    }
    // q = floor(2^48 / m), in [2^24, 2^25): 24 mantissa bits and a round bit; rem is the sticky.
    let mut q: u32 = 1;
    let mut rem: u32 = 0x0100_0000 - m;
    for _ in 0..24 {
        rem <<= 1;
        q <<= 1;
        if rem >= m {
            rem -= m;
            q |= 1;
        }
    }
    let mut mant = q >> 1;
    let round = q & 1;
    if round == 1 && (rem != 0 || mant & 1 == 1) {
        mant += 1;
    }
    // 1/x = (q / 2^24) · 2^(-1-e); a carry out of the mantissa bumps the exponent.
    let mut re = -1 - e;
    if mant == 0x0100_0000 {
        mant = 0x0080_0000;
        re += 1;
    }
    if re < -126 {
        return 0.0;
    }
    f32::from_bits((((re + 127) as u32) << 23) | (mant & 0x007f_ffff))
}

/// The scale and inverse scale of a group whose largest finite magnitude is `amax`.
/// Returns `(0, 0)` when the scale would be zero or subnormal.
pub fn scale_for_amax(amax: f32, format: Format) -> (f32, f32) {
    let s = amax * format.rcp_qmax();
    // Written to also catch NaN (which compares false).
    if s.partial_cmp(&MIN_NORMAL) == Some(std::cmp::Ordering::Less) || !s.is_finite() || s.is_nan() {
        return (0.0, 0.0);
    }
    (s, recip_rne(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    #[test]
    fn recip_matches_ieee_division() {
        // Rust's 1.0/x is correctly rounded, so recip_rne must equal it wherever the result is
        // normal. Sweep every exponent with random mantissas, plus edge mantissas.
        let k = rng::key(7, 0);
        let mut n = 0;
        for exp in 1u32..=254 {
            for j in 0..64u32 {
                let mant = match j {
                    0 => 0,
                    1 => 1,
                    2 => 0x7f_ffff,
                    3 => 0x40_0000,
                    _ => rng::draw(k, exp * 64 + j) & 0x7f_ffff,
                };
                let x = f32::from_bits((exp << 23) | mant);
                let want = 1.0f32 / x;
                let want = if want.to_bits() & 0x7f80_0000 == 0 { 0.0 } else { want };
                assert_eq!(recip_rne(x).to_bits(), want.to_bits(), "x = {x:e} ({:#x})", x.to_bits());
                n += 1;
            }
        }
        assert_eq!(n, 254 * 64);
        assert_eq!(recip_rne(0.0), 0.0);
        assert_eq!(recip_rne(-2.0), 0.0);
        assert_eq!(recip_rne(f32::from_bits(1)), 0.0);
    }

    #[test]
    fn tiny_groups_are_zero() {
        assert_eq!(scale_for_amax(0.0, Format::Int8), (0.0, 0.0));
        assert_eq!(scale_for_amax(1e-37, Format::Int8), (0.0, 0.0));
        let (s, inv) = scale_for_amax(127.0, Format::Int8);
        assert_eq!(s, 127.0 * (1.0 / 127.0));
        assert_eq!(inv, recip_rne(s));
    }
}
