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

fn round_shift(mant: u32, shift: u32, stochastic: bool, r24: u32) -> u32 {
    if (shift == 0u) {
        return mant;
    }
    var q = 0u;
    var rem = mant;
    if (shift < 32u) {
        q = mant >> shift;
        rem = mant & ((1u << shift) - 1u);
    }
    var up = false;
    if (stochastic) {
        if (shift <= 24u) {
            up = (rem << (24u - shift)) > r24;
        } else {
            let k = shift - 24u;
            var c = select(0u, 1u, rem != 0u);
            if (k < 24u) {
                c = (rem + ((1u << k) - 1u)) >> k;
            }
            up = c > r24;
        }
    } else if (shift <= 24u) {
        let half = 1u << (shift - 1u);
        up = rem > half || (rem == half && (q & 1u) == 1u);
    }
    return q + select(0u, 1u, up);
}

// Unbiased exponent of a positive normal f32's bits.
fn split_exp(abs_bits: u32) -> i32 {
    return i32(abs_bits >> 23u) - 127;
}

// 24-bit mantissa, hidden bit included.
fn split_mant(abs_bits: u32) -> u32 {
    return (abs_bits & 0x007fffffu) | 0x00800000u;
}

fn recip_rne(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    let exp = i32(bits >> 23u);
    if ((bits >> 31u) != 0u || exp == 0 || exp == 255) {
        return 0.0;
    }
    let e = exp - 127;
    let m = (bits & 0x007fffffu) | 0x00800000u;
    if (m == 0x00800000u) {
        let re = -e;
        if (re < -126) {
            return 0.0;
        }
        return bitcast<f32>(u32(re + 127) << 23u);
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

fn int_to_code(q: i32, b: u32) -> u32 {
    return bitcast<u32>(q) & ((1u << b) - 1u);
}

fn int_decode(code: u32, b: u32) -> i32 {
    return bitcast<i32>(code << (32u - b)) >> (32u - b);
}

fn int_encode(y: f32, qmax: u32, b: u32, stochastic: bool, r24: u32) -> u32 {
    let bits = bitcast<u32>(y);
    let abs = bits & 0x7fffffffu;
    if (abs == 0u) {
        return 0u;
    }
    let e = split_exp(abs);
    var mag = qmax;
    if (e < 23) {
        mag = min(round_shift(split_mant(abs), u32(23 - e), stochastic, r24), qmax);
    }
    var q = i32(mag);
    if ((bits >> 31u) == 1u) {
        q = -q;
    }
    return int_to_code(q, b);
}
