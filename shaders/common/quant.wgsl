// Mirror of src/format/mod.rs, src/format/int.rs and src/format/scale.rs: the rounding primitive,
// flush-to-zero, the exact reciprocal, and the symmetric integer formats.

const MIN_NORMAL_BITS: u32 = 0x00800000u;

fn is_finite_bits(bits: u32) -> bool {
    return (bits & 0x7f800000u) != 0x7f800000u;
}

fn ftz(x: f32) -> f32 {
    let b = bitcast<u32>(x);
    if ((b & 0x7f800000u) == 0u) {
        return bitcast<f32>(b & 0x80000000u);
    }
    return x;
}

// A decoded code's value scaled by its group's scale; a non-finite code keeps its value
// (src/format/mod.rs, `Format::dequantize`).
fn scaled_value(v: f32, s: f32) -> f32 {
    if (!is_finite_bits(bitcast<u32>(v))) {
        return v;
    }
    return ftz(v * s);
}

// |x| as ordered bits for max-reductions: non-finite and subnormal values count as 0.
fn amax_bits(x: f32) -> u32 {
    let b = bitcast<u32>(x) & 0x7fffffffu;
    if (b >= 0x7f800000u || b < MIN_NORMAL_BITS) {
        return 0u;
    }
    return b;
}

// amax_bits of each component.
fn amax_bits4(v: vec4<f32>) -> vec4<u32> {
    return vec4<u32>(amax_bits(v.x), amax_bits(v.y), amax_bits(v.z), amax_bits(v.w));
}

// Unbiased exponent of a positive normal f32's bits (-127 for 0 and subnormals).
fn split_exp(abs_bits: u32) -> i32 {
    return i32(abs_bits >> 23u) - 127;
}

// The fraction bits of 1/(1 + k/8) · 2 (= 16/(8 + k), in (1, 2)) correctly rounded to 24 bits, for
// k = 1 .. 7 (k = 0, a power of two, is exact): recip_rne's quotient for a mantissa of three
// fraction bits, which its long division gives bit for bit (tests/formats.rs: every such value).
fn recip_frac3(k: u32) -> u32 {
    var t = array<u32, 8>(
        0u, 0x638e39u, 0x4ccccdu, 0x3a2e8cu, 0x2aaaabu, 0x1d89d9u, 0x124925u, 0x088889u
    );
    return t[k & 7u];
}

// recip_rne of a positive normal power of two s, from its exponent alone (1/s exactly; 0 where
// 1/s would be subnormal): recip_rne's first path, and the inverse of an MX group scale or of
// NVFP4's tensor scale without recip_rne's other branches, table and 24-step long division
// (format_check's pow2_recip checks it at every normal power of two).
fn recip_pow2(s: f32) -> f32 {
    let e = bitcast<u32>(s) >> 23u;
    return select(0.0, bitcast<f32>((254u - e) << 23u), e <= 253u);
}

// src/format/scale.rs, `recip_rne`: the correctly rounded 1/x of a positive normal x (0 for any
// other x, and where 1/x would be subnormal). A mantissa of at most three fraction bits (an E4M3
// value times a power of two: NVFP4's group scales) takes its quotient from recip_frac3, without
// the 24 steps of the long division.
fn recip_rne(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    let exp = i32(bits >> 23u);
    if ((bits >> 31u) != 0u || exp == 0 || exp == 255) {
        return 0.0;
    }
    let e = exp - 127;
    let m = (bits & 0x007fffffu) | 0x00800000u;
    if (m == 0x00800000u) {
        return recip_pow2(x);
    }
    if ((m & 0x000fffffu) == 0u) {
        let re3 = -1 - e;
        if (re3 < -126) {
            return 0.0;
        }
        return bitcast<f32>((u32(re3 + 127) << 23u) | recip_frac3(m >> 20u));
    }
    var q = 1u;
    var rem = 0x01000000u - m;
    for (var i = 0u; i < 24u; i++) {
        rem = rem << 1u;
        q = q << 1u;
        if (rem >= m) {
            rem -= m;
            q |= 1u;
        }
    }
    var mant = q >> 1u;
    let round = q & 1u;
    if (round == 1u && (rem != 0u || (mant & 1u) == 1u)) {
        mant += 1u;
    }
    var re = -1 - e;
    if (mant == 0x01000000u) {
        mant = 0x00800000u;
        re += 1;
    }
    if (re < -126) {
        return 0.0;
    }
    return bitcast<f32>((u32(re + 127) << 23u) | (mant & 0x007fffffu));
}

fn int_decode(code: u32, b: u32) -> i32 {
    return bitcast<i32>(code << (32u - b)) >> (32u - b);
}

// src/format/mod.rs's round_shift(mant, shift) on the value it stands for, s = mant·2^-shift
// (0 <= s < 2^22), in f32 arithmetic whose every step is exact and without branching on the value
// (on a CPU adapter lanes run both sides of a branch). To nearest, ties to even: s + 1.5·2^23 lies
// in [2^23, 2^24), where f32's spacing is 1, so the sum rounds s to an integer and its low
// mantissa bits, less 2^22, are that integer. Stochastically: floor(s) + 1 where frac·2^24 > r24
// (frac = s - floor(s) and frac·2^24 are exact; round_shift's ceil(frac·2^24) > r24 for shifts
// past 24 is the same test, r24 being an integer).
fn round_scaled(s: f32, stochastic: bool, r24: u32) -> u32 {
    if (stochastic) {
        let f = floor(s);
        let up = (s - f) * 16777216.0 > f32(bitcast<i32>(r24));
        return (bitcast<u32>(f + 8388608.0) & 0x007fffffu) + select(0u, 1u, up);
    }
    return (bitcast<u32>(s + 12582912.0) & 0x007fffffu) - 0x00400000u;
}

// An integer format's code of x with inverse scale inv (fmt_quantize for qmax = 2^(b-1) - 1; the
// bits of src/format/int.rs on y = ftz(ftz(x)·inv)): |y| clamped to qmax, rounded by
// round_scaled, the sign applied in two's complement. Non-finite x: ±qmax (the clamp), and 0
// where y is NaN (x NaN, or ±inf in a group of scale 0), as the format's non-finite rule says.
// To nearest the signed value is clamped and rounded at once (round_scaled's sum lies in
// [2^23, 2^24) for |y| <= 127 too, and ties to even are symmetric, so its low bits less 2^22 are
// the rounded integer in two's complement), and y's second ftz is left out: a subnormal rounds
// to the code 0 as the 0 it would flush to does. Fewer instructions a value where the rounding is
// a constant (on llvmpipe, resnet20's int8 step at batch 128: im2col_quantize's tiles, 153 ->
// 143-144 ms a step).
fn int_quantize(x: f32, inv: f32, qmax: f32, b: u32, stochastic: bool, r24: u32) -> u32 {
    let y0 = ftz(x) * inv;
    var q: u32;
    if (stochastic) {
        let y = ftz(y0);
        let mag = round_scaled(min(abs(y), qmax), true, r24);
        q = select(mag, 0u - mag, y < 0.0);
    } else {
        q = (bitcast<u32>(clamp(y0, -qmax, qmax) + 12582912.0) & 0x007fffffu) - 0x00400000u;
    }
    return select(q & ((1u << b) - 1u), 0u, (bitcast<u32>(y0) & 0x7fffffffu) > 0x7f800000u);
}
