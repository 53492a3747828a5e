//! Scales from group maxima, and the exactly specified reciprocal both sides use.
//!
//! A format's scales take values in its [`ScaleFormat`]: any f32 (`s = amax/qmax`, the
//! per-row and per-tensor formats), a power of two (E8M0, the OCP MX formats), or an E4M3 value
//! times one power-of-two scale per tensor (NVFP4). The block-scaled rules round the scale *up*
//! onto their grid, so no element of a group exceeds the top code: nothing saturates and
//! stochastic rounding stays unbiased (the OCP specification's E8M0 rule rounds the exponent
//! down and clips up to ~2× instead; NVIDIA's NVFP4 recipe rounds the block scale to nearest).
//! Every scale is held as the f32 it stands for, which is exact on these grids.
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

/// What values a format's group scales take.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScaleFormat {
    /// Any positive normal f32: `s = amax · (1/qmax)`.
    F32,
    /// E8M0: a power of two, the smallest with `amax · (1/s) ≤ qmax` (OCP MX).
    E8M0,
    /// An E4M3 value times the tensor's power-of-two scale (NVFP4's two levels): see
    /// [`nvfp4_tensor_scale`] and [`group_scale`].
    E4M3TimesTensor,
}

/// True for a positive normal finite f32 (NaN fails).
fn normal(s: f32) -> bool {
    s >= MIN_NORMAL && s.is_finite()
}

/// The smallest power of two `≥ t`, for positive normal `t` (`None` past f32's range).
pub fn pow2_at_least(t: f32) -> Option<f32> {
    let b = t.to_bits();
    let p = if b & 0x007f_ffff == 0 { t } else { f32::from_bits((b & 0x7f80_0000) + 0x0080_0000) };
    normal(p).then_some(p)
}

/// The largest product of the NVFP4 scale levels: E2M1's 6 times E4M3's 448.
pub const NVFP4_RANGE: f32 = 6.0 * 448.0;
/// What the tensor scale maps the tensor's maximum below: [`NVFP4_RANGE`] less 2^-8 of it, so
/// the block holding the maximum gets a block scale that still leaves it under the top code
/// after the roundings of `1/6` and of the inverse scale.
pub const NVFP4_LIMIT: f32 = NVFP4_RANGE * (1.0 - 1.0 / 256.0);

/// NVFP4's per-tensor scale for a tensor whose largest finite magnitude is `amax`: the smallest
/// power of two `S` with `amax · (1/S) ≤` [`NVFP4_LIMIT`], so every block scale
/// `amax_b / 6 / S` fits E4M3. 0 for a zero (or subnormal-scaled) tensor.
pub fn nvfp4_tensor_scale(amax: f32) -> f32 {
    let t = amax * (1.0 / NVFP4_RANGE);
    let Some(mut s) = normal(t).then(|| pow2_at_least(t)).flatten() else { return 0.0 };
    if amax * recip_rne(s) > NVFP4_LIMIT {
        s *= 2.0;
    }
    if normal(s) {
        s
    } else {
        0.0
    }
}

/// The smallest E4M3 value `≥ v` (for `v > 0`; 448 above 448), as its code.
fn e4m3_at_least(v: f32) -> u32 {
    // Below the smallest subnormal 2^-9 (also keeps subnormal f32 away from the encoder).
    if v <= f32::from_bits(0x3b00_0000) {
        return 1;
    }
    let c = super::fp8::E4M3.encode(v, false, 0);
    if super::fp8::E4M3.decode(c) < v && c < super::fp8::E4M3.max_code {
        c + 1
    } else {
        c
    }
}

/// The scale and inverse scale of a group whose largest finite magnitude is `amax`, in a tensor
/// whose largest is `tensor_amax` (read by NVFP4 only). Returns `(0, 0)` when the scale would be
/// zero or subnormal (the group's codes are then 0).
///
/// - [`ScaleFormat::F32`]: `s = amax · (1/qmax)`.
/// - [`ScaleFormat::E8M0`]: `s` = the smallest power of two `≥ amax · (1/qmax)`, doubled if
///   `amax · (1/s)` still exceeds `qmax` (the product rounded down).
/// - [`ScaleFormat::E4M3TimesTensor`]: `S` = [`nvfp4_tensor_scale`]`(tensor_amax)`, the block
///   scale `b` = the smallest E4M3 value `≥ (amax · (1/6)) · (1/S)`, moved up one E4M3 step if
///   `amax · (1/(b·S))` still exceeds 6, and `s = b · S` (exact: a power-of-two multiple).
pub fn group_scale(amax: f32, tensor_amax: f32, format: Format) -> (f32, f32) {
    let (qmax, rcp) = (format.qmax(), format.rcp_qmax());
    let t = amax * rcp;
    if !normal(t) {
        return (0.0, 0.0);
    }
    let s = match format.scale_format() {
        ScaleFormat::F32 => t,
        ScaleFormat::E8M0 => {
            let Some(mut s) = pow2_at_least(t) else { return (0.0, 0.0) };
            if amax * recip_rne(s) > qmax {
                s *= 2.0;
            }
            s
        }
        ScaleFormat::E4M3TimesTensor => {
            let st = nvfp4_tensor_scale(tensor_amax);
            if st == 0.0 {
                return (0.0, 0.0);
            }
            let v = t * recip_rne(st);
            let e4m3 = super::fp8::E4M3;
            let mut c = e4m3_at_least(v);
            let mut s = e4m3.decode(c) * st;
            if amax * recip_rne(s) > qmax && c < e4m3.max_code {
                c += 1;
                s = e4m3.decode(c) * st;
            }
            s
        }
    };
    if !normal(s) {
        return (0.0, 0.0);
    }
    (s, recip_rne(s))
}

/// The scale and inverse scale of a group whose largest finite magnitude is `amax`, the group
/// being the whole tensor (see [`group_scale`]). Returns `(0, 0)` when the scale would be zero
/// or subnormal.
pub fn scale_for_amax(amax: f32, format: Format) -> (f32, f32) {
    group_scale(amax, amax, format)
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
