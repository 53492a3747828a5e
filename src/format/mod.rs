//! Quantization formats as data: bit layouts, constants, and the scalar encode/decode that is the
//! specification. Each file here has a WGSL mirror in `shaders/common/` with the same functions.
//!
//! | format | code bits | codes per u32 | values | scale `s` from the group's `amax` |
//! |---|---|---|---|---|
//! | [`Format::Int8`] | 8, two's complement | 4 | `q·s`, `q ∈ [-127, 127]` | `amax · (1/127)` |
//! | [`Format::Int4`] | 4, two's complement | 8 | `q·s`, `q ∈ [-7, 7]` | `amax · (1/7)` |
//! | [`Format::Fp8E4M3`] | 8, OCP E4M3 (finite only, max 448) | 4 | `fp8(c)·s` | `amax · (1/448)` |
//! | [`Format::Fp8E5M2`] | 8, OCP E5M2 (inf/NaN) | 4 | `fp8(c)·s` | `amax · (1/57344)` |
//! | [`Format::Log4`] | 4: sign + 3-bit level (LUQ) | 8 | `0` or `±2^(c-1)·α` | `α = amax · 2^-6` |
//! | [`Format::Int3`] | 4, two's complement (3-bit values) | 8 | `q·s`, `q ∈ [-3, 3]` | `amax · (1/4)` (clips) |
//! | [`Format::Int2`] | 2, two's complement | 16 | `q·s`, `q ∈ [-1, 1]` | `amax · (1/2)` (clips) |
//! | [`Format::Fp4E2M1`] | 4, FP4 E2M1 (max 6) | 8 | `fp4(c)·s` | `amax · (1/6)` |
//! | [`Format::Mxfp8`] | 8, E4M3 | 4 | `fp8(c)·s`, one `s` per 32 | power of two ≥ `amax/448` (E8M0) |
//! | [`Format::Mxfp4`] | 4, E2M1 | 8 | `fp4(c)·s`, one `s` per 32 | power of two ≥ `amax/6` (E8M0) |
//! | [`Format::Nvfp4`] | 4, E2M1 | 8 | `fp4(c)·s`, one `s` per 16 | E4M3 ≥ `amax/6/S`, times `S` per tensor |
//!
//! ## Block-scaled formats
//! MXFP8 and MXFP4 (OCP Microscaling v1.0) and NVFP4 carry a scale per block of 32 (16) values
//! along the packed dimension — their layout requires exactly that granularity — in a narrow
//! scale format ([`scale::ScaleFormat`]): E8M0 (a power of two) or, for NVFP4, an E4M3 value
//! times one power-of-two scale per tensor. Their scales are rounded *up* onto that grid so no
//! element saturates (see [`scale`]); lowbit holds each group's scale as the f32 it stands for
//! (exact on these grids), so every kernel that reads scales reads them alike. E2M1 values times
//! two are the integers `0, 1, 2, 3, 4, 6, 8, 12`: the integer GEMM multiplies FP4 operands
//! exactly on `dot4I8Packed` lanes and scales the sums by ¼.
//!
//! Packing: code `i` of a word sits at bits `[i·b, i·b + b)` (low bits first), which for int8 is
//! the lane order of WGSL's `dot4I8Packed`. Rows are padded to whole words with code 0.
//! Int3's seven values are stored in int4's 4-bit lanes (3-bit codes do not tile a 32-bit word
//! in the groups of four lanes the integer GEMM widens): it narrows the grid, not the memory;
//! int2 is packed 16 to a word.
//!
//! Int3 and int2 **clip**: their scale puts the top code at 0.75·amax and 0.5·amax, and larger
//! magnitudes saturate there. With so few levels an absmax scale would send most of a row to zero
//! (a ternary grid at ±amax rounds everything below amax/2 to 0); clipping near the
//! MSE-optimal point for bell-shaped data keeps them useful as forward precisions. Stochastic
//! rounding with them is unbiased only below the top level ([`Format::top`]).
//!
//! ## The quantization rule, shared by every format
//! For an element `x` of a group with scale `s` and inverse `inv = recip_rne(s)`:
//! 1. non-finite `x`: NaN gives the format's NaN code (FP8) or 0 (int, log4); ±inf gives the
//!    format's ±inf (E5M2) or its largest magnitude (saturation) — in a group with `s = 0`
//!    (below), a saturated magnitude is 0, so the code is 0;
//! 2. subnormal `x`, and a subnormal product `y = x·inv`, are flushed to zero (GPUs may flush
//!    subnormals on their own; lowbit does it explicitly so every backend agrees bit for bit);
//! 3. `y = x·inv` (one correctly rounded f32 multiply), then rounded to the format's grid by
//!    integer arithmetic on the bits of `y` ([`round_shift`]): to nearest, ties to even, or
//!    stochastically with a 24-bit draw from [`crate::rng`]; magnitudes past the largest code
//!    saturate.
//!
//! Groups whose `amax` (the largest finite magnitude) is zero or whose scale would be subnormal
//! (`amax` below ~2^-119) get `s = 0` and all-zero codes, but for the FP8 formats' own NaN and
//! (E5M2) ±inf codes, which stay.
//!
//! Dequantization is `ftz(decode(code) · s)` for a code that stands for a finite value, and the
//! value itself for a non-finite code (FP8 NaN, E5M2 ±inf), whatever the scale: a NaN or an
//! infinity survives a quantize–dequantize round trip in the formats that can hold one, and
//! becomes 0 or the group's largest magnitude in the others. So `[+inf, 0, 0, 0]` per row is
//! codes `[0, 0, 0, 0]` (→ zeros) in int8, int4, int3, int2, log4 and E4M3, and `[+inf, 0, 0, 0]`
//! (→ `+inf, 0, 0, 0`) in E5M2.

pub mod fp4;
pub mod fp8;
pub mod int;
pub mod log4;
pub mod scale;

pub use scale::{group_scale, nvfp4_tensor_scale, recip_rne, scale_for_amax, ScaleFormat};

/// A packed low-bit number format.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Symmetric 8-bit integers, 4 per word.
    Int8,
    /// Symmetric 4-bit integers, 8 per word.
    Int4,
    /// OCP FP8 E4M3 (finite only, max 448), 4 per word.
    Fp8E4M3,
    /// OCP FP8 E5M2 (with inf/NaN, max 57344), 4 per word.
    Fp8E5M2,
    /// LUQ's 4-bit logarithmic format: sign + 3-bit level, 8 per word.
    Log4,
    /// Symmetric 3-bit integers (`q ∈ [-3, 3]`), stored in 4-bit lanes, 8 per word.
    Int3,
    /// Symmetric 2-bit integers (ternary, `q ∈ [-1, 1]`), 16 per word.
    Int2,
    /// FP4 E2M1 (max 6), 8 per word, with f32 scales like the formats above.
    Fp4E2M1,
    /// OCP MXFP8: E4M3 values, 4 per word, one power-of-two (E8M0) scale per 32.
    Mxfp8,
    /// OCP MXFP4: E2M1 values, 8 per word, one power-of-two (E8M0) scale per 32.
    Mxfp4,
    /// NVFP4: E2M1 values, 8 per word, one E4M3 scale per 16 times a power-of-two tensor scale.
    Nvfp4,
}

impl Format {
    /// Every format, in the order of their ids.
    pub const ALL: [Format; 11] = [
        Format::Int8,
        Format::Int4,
        Format::Fp8E4M3,
        Format::Fp8E5M2,
        Format::Log4,
        Format::Int3,
        Format::Int2,
        Format::Fp4E2M1,
        Format::Mxfp8,
        Format::Mxfp4,
        Format::Nvfp4,
    ];

    /// The block-scaled formats (module docs).
    pub const BLOCK_SCALED: [Format; 3] = [Format::Mxfp8, Format::Mxfp4, Format::Nvfp4];

    /// The id the shaders receive as their `FORMAT` override constant.
    pub fn id(self) -> u32 {
        match self {
            Format::Int8 => 0,
            Format::Int4 => 1,
            Format::Fp8E4M3 => 2,
            Format::Fp8E5M2 => 3,
            Format::Log4 => 4,
            Format::Int3 => 5,
            Format::Int2 => 6,
            Format::Fp4E2M1 => 7,
            Format::Mxfp8 => 8,
            Format::Mxfp4 => 9,
            Format::Nvfp4 => 10,
        }
    }

    /// A short stable name, as used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Int8 => "int8",
            Format::Int4 => "int4",
            Format::Fp8E4M3 => "fp8-e4m3",
            Format::Fp8E5M2 => "fp8-e5m2",
            Format::Log4 => "log4",
            Format::Int3 => "int3",
            Format::Int2 => "int2",
            Format::Fp4E2M1 => "fp4-e2m1",
            Format::Mxfp8 => "mxfp8",
            Format::Mxfp4 => "mxfp4",
            Format::Nvfp4 => "nvfp4",
        }
    }

    /// How this format's values are encoded (a block-scaled format's element format: E4M3 for
    /// MXFP8, E2M1 for MXFP4 and NVFP4; the format itself otherwise).
    pub fn element(self) -> Format {
        match self {
            Format::Mxfp8 => Format::Fp8E4M3,
            Format::Mxfp4 | Format::Nvfp4 => Format::Fp4E2M1,
            f => f,
        }
    }

    /// The scale block a block-scaled format's layout requires (32, or 16 for NVFP4).
    pub fn block(self) -> Option<u32> {
        match self {
            Format::Mxfp8 | Format::Mxfp4 => Some(32),
            Format::Nvfp4 => Some(16),
            _ => None,
        }
    }

    /// What values its group scales take.
    pub fn scale_format(self) -> ScaleFormat {
        match self {
            Format::Mxfp8 | Format::Mxfp4 => ScaleFormat::E8M0,
            Format::Nvfp4 => ScaleFormat::E4M3TimesTensor,
            _ => ScaleFormat::F32,
        }
    }

    /// Whether a group's scale depends on the whole tensor's largest magnitude (NVFP4).
    pub fn needs_tensor_amax(self) -> bool {
        self.scale_format() == ScaleFormat::E4M3TimesTensor
    }

    /// True for the formats whose values are E2M1 (the integer GEMM holds twice each value).
    pub fn is_fp4(self) -> bool {
        self.element() == Format::Fp4E2M1
    }

    /// True for the formats whose values are FP8 (E4M3, E5M2, MXFP8: the FP8 GEMM's operands).
    pub fn is_fp8(self) -> bool {
        matches!(self.element(), Format::Fp8E4M3 | Format::Fp8E5M2)
    }

    /// What one unit of an integer GEMM lane is worth: ½ for the E2M1 formats (a lane holds twice
    /// the value), 1 for the others.
    pub fn lane_unit(self) -> f32 {
        if self.is_fp4() {
            0.5
        } else {
            1.0
        }
    }

    /// Bits each code occupies in a packed word (int3: 4, see the module docs).
    pub fn bits(self) -> u32 {
        match self {
            Format::Int8 | Format::Fp8E4M3 | Format::Fp8E5M2 | Format::Mxfp8 => 8,
            Format::Int4 | Format::Log4 | Format::Int3 | Format::Fp4E2M1 | Format::Mxfp4 | Format::Nvfp4 => 4,
            Format::Int2 => 2,
        }
    }

    /// Bits of information per value: [`Format::bits`], except 3 for int3.
    pub fn value_bits(self) -> u32 {
        match self {
            Format::Int3 => 3,
            f => f.bits(),
        }
    }

    /// True for the symmetric integer formats (int8, int4, int3, int2).
    pub fn is_int(self) -> bool {
        matches!(self, Format::Int8 | Format::Int4 | Format::Int3 | Format::Int2)
    }

    /// The largest magnitude of the integer a code stands for in an integer GEMM (`gemm_int`'s
    /// lane value), over every code a word can hold — the quantizers never produce the most
    /// negative two's complement code, but a product must not overflow on one either: int8 128,
    /// int4 and int3 8, int2 2, log4 64 (2^6), the E2M1 formats 12 (twice 6); `None` for the
    /// FP8 formats.
    pub fn max_lane(self) -> Option<u32> {
        match self {
            Format::Int8 | Format::Int4 | Format::Int3 | Format::Int2 => Some(1 << (self.bits() - 1)),
            Format::Log4 => Some(64),
            Format::Fp4E2M1 | Format::Mxfp4 | Format::Nvfp4 => Some(12),
            Format::Fp8E4M3 | Format::Fp8E5M2 | Format::Mxfp8 => None,
        }
    }

    /// Codes per packed `u32` word.
    pub fn per_word(self) -> u32 {
        32 / self.bits()
    }

    /// The largest magnitude a code takes, in the scaled domain: [`Format::qmax`] except for the
    /// clipping formats (int3: 3, int2: 1).
    pub fn top(self) -> f32 {
        match self {
            Format::Int3 => 3.0,
            Format::Int2 => 1.0,
            f => f.qmax(),
        }
    }

    /// Where a group's `amax` lands in the scaled domain (`s = amax / qmax`): the largest
    /// representable magnitude, except for int3 (4) and int2 (2), which clip (module docs).
    pub fn qmax(self) -> f32 {
        match self {
            Format::Int8 => 127.0,
            Format::Int4 => 7.0,
            Format::Fp8E4M3 | Format::Mxfp8 => fp8::E4M3.max_finite(),
            Format::Fp8E5M2 => fp8::E5M2.max_finite(),
            Format::Log4 => 64.0,
            Format::Int3 => 4.0,
            Format::Int2 => 2.0,
            Format::Fp4E2M1 | Format::Mxfp4 | Format::Nvfp4 => fp4::MAX,
        }
    }

    /// `1/qmax` rounded to f32: the factor that turns a group's `amax` into its scale.
    /// The shaders receive these exact bits.
    pub fn rcp_qmax(self) -> f32 {
        1.0 / self.qmax()
    }

    /// Encodes a scaled value `y` (already multiplied by the group's inverse scale; finite and
    /// not subnormal) to a code, rounding to nearest-even or stochastically with draw `r24`.
    pub fn encode_scaled(self, y: f32, stochastic: bool, r24: u32) -> u32 {
        match self {
            Format::Int8 => int::encode(y, 127, 8, stochastic, r24),
            Format::Int4 => int::encode(y, 7, 4, stochastic, r24),
            Format::Fp8E4M3 | Format::Mxfp8 => fp8::E4M3.encode(y, stochastic, r24),
            Format::Fp8E5M2 => fp8::E5M2.encode(y, stochastic, r24),
            Format::Log4 => log4::encode(y, stochastic, r24),
            Format::Int3 => int::encode(y, 3, 4, stochastic, r24),
            Format::Int2 => int::encode(y, 1, 2, stochastic, r24),
            Format::Fp4E2M1 | Format::Mxfp4 | Format::Nvfp4 => fp4::encode(y, stochastic, r24),
        }
    }

    /// The code a non-finite input gets (the input's bits are passed).
    pub fn encode_nonfinite(self, bits: u32) -> u32 {
        let neg = bits >> 31 == 1;
        let nan = bits & 0x007f_ffff != 0;
        let int = |qmax: i32, b: u32| if nan { 0 } else { int::to_code(if neg { -qmax } else { qmax }, b) };
        match self {
            Format::Int8 => int(127, 8),
            Format::Int4 => int(7, 4),
            Format::Int3 => int(3, 4),
            Format::Int2 => int(1, 2),
            Format::Fp8E4M3 | Format::Mxfp8 => fp8::E4M3.encode_nonfinite(bits),
            Format::Fp8E5M2 => fp8::E5M2.encode_nonfinite(bits),
            Format::Fp4E2M1 | Format::Mxfp4 | Format::Nvfp4 => fp4::encode_nonfinite(bits),
            Format::Log4 => {
                if nan {
                    0
                } else {
                    log4::encode_level(neg, 7)
                }
            }
        }
    }

    /// Decodes a code to its value in the scaled domain (multiply by `s` to dequantize).
    pub fn decode(self, code: u32) -> f32 {
        match self {
            Format::Int8 => int::decode(code, 8) as f32,
            Format::Int4 | Format::Int3 => int::decode(code, 4) as f32,
            Format::Int2 => int::decode(code, 2) as f32,
            Format::Fp8E4M3 | Format::Mxfp8 => fp8::E4M3.decode(code),
            Format::Fp8E5M2 => fp8::E5M2.decode(code),
            Format::Log4 => log4::decode(code),
            Format::Fp4E2M1 | Format::Mxfp4 | Format::Nvfp4 => fp4::decode(code),
        }
    }

    /// The full quantization rule for one element (see the module docs): `inv = 0` is a group
    /// with `s = 0`, where only the format's own non-finite codes are not 0.
    pub fn quantize(self, x: f32, inv: f32, stochastic: bool, r24: u32) -> u32 {
        let bits = x.to_bits();
        if !is_finite_bits(bits) {
            let code = self.encode_nonfinite(bits);
            return if inv == 0.0 && self.decode(code).is_finite() { 0 } else { code };
        }
        let y = ftz(ftz(x) * inv);
        self.encode_scaled(y, stochastic, r24)
    }

    /// Dequantizes one code with its group's scale: `ftz(decode(code) · s)`, or the code's own
    /// value when it is non-finite (see the module docs).
    pub fn dequantize(self, code: u32, s: f32) -> f32 {
        let v = self.decode(code);
        if v.is_finite() {
            ftz(v * s)
        } else {
            v
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            crate::Error::InvalidArgument(format!(
                "unknown format '{s}' (expected one of int8, int4, fp8-e4m3, fp8-e5m2, log4, int3, int2, fp4-e2m1, mxfp8, mxfp4, nvfp4)"
            ))
        })
    }
}

/// True if the f32 with these bits is finite.
#[inline]
pub fn is_finite_bits(bits: u32) -> bool {
    bits & 0x7f80_0000 != 0x7f80_0000
}

/// Flushes a subnormal to (signed) zero; other values pass unchanged.
#[inline]
pub fn ftz(x: f32) -> f32 {
    let b = x.to_bits();
    if b & 0x7f80_0000 == 0 {
        f32::from_bits(b & 0x8000_0000)
    } else {
        x
    }
}

/// Rounds the integer `mant / 2^shift` to an integer: to nearest with ties to even, or
/// stochastically (up with probability equal to the dropped fraction, resolved against the 24-bit
/// draw `r24`). `mant` must be below 2^24; any `shift` is allowed.
///
/// Stochastic rounding is exactly unbiased when the dropped fraction has at most 24 bits
/// (`shift <= 24`); beyond that the probability is rounded up to the next multiple of 2^-24.
#[inline]
pub fn round_shift(mant: u32, shift: u32, stochastic: bool, r24: u32) -> u32 {
    if shift == 0 {
        return mant;
    }
    let (q, rem) = if shift >= 32 { (0, mant) } else { (mant >> shift, mant & ((1u32 << shift) - 1)) };
    let up = if stochastic {
        if shift <= 24 {
            (rem << (24 - shift)) > r24
        } else {
            let k = shift - 24;
            let c = if k >= 24 { (rem != 0) as u32 } else { (rem + ((1u32 << k) - 1)) >> k };
            c > r24
        }
    } else if shift > 24 {
        false
    } else {
        let half = 1u32 << (shift - 1);
        rem > half || (rem == half && q & 1 == 1)
    };
    q + up as u32
}

/// Splits a positive, normal f32's bits into its unbiased exponent and 24-bit mantissa
/// (hidden bit included).
#[inline]
pub fn split(abs_bits: u32) -> (i32, u32) {
    (((abs_bits >> 23) as i32) - 127, (abs_bits & 0x007f_ffff) | 0x0080_0000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_nearest_even() {
        assert_eq!(round_shift(0b1010, 1, false, 0), 0b101);
        assert_eq!(round_shift(0b1011, 1, false, 0), 0b110); // 5.5 -> 6
        assert_eq!(round_shift(0b1001, 1, false, 0), 0b100); // 4.5 -> 4
        assert_eq!(round_shift(0b1101, 2, false, 0), 0b11); // 3.25 -> 3
        assert_eq!(round_shift(0b1110, 2, false, 0), 0b100); // 3.5 -> 4
        assert_eq!(round_shift(0x80_0000, 24, false, 0), 0); // 0.5 -> 0
        assert_eq!(round_shift(0x80_0001, 24, false, 0), 1);
        assert_eq!(round_shift(0xff_ffff, 25, false, 0), 0);
        assert_eq!(round_shift(0xff_ffff, 200, false, 0), 0);
    }

    #[test]
    fn round_shift_stochastic_probability_is_the_fraction() {
        // 0b101.01 = 5.25: up iff 0.25 * 2^24 > r.
        let quarter = 1u32 << 22;
        assert_eq!(round_shift(0b10101, 2, true, quarter - 1), 6);
        assert_eq!(round_shift(0b10101, 2, true, quarter), 5);
        // Exact integers never move.
        assert_eq!(round_shift(0b10100, 2, true, 0), 5);
        // Tiny fractions beyond 24 bits: up only on the smallest draw.
        assert_eq!(round_shift(1, 40, true, 0), 1);
        assert_eq!(round_shift(1, 40, true, 1), 0);
    }

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!("int5".parse::<Format>().is_err());
    }
}
