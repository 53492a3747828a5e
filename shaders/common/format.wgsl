// Mirror of `Format` in src/format/mod.rs: dispatch on the FORMAT override constant
// (0 int8, 1 int4, 2 fp8-e4m3, 3 fp8-e5m2, 4 log4, 5 int3 in 4-bit lanes, 6 int2), and the shared per-element rule.

override FORMAT: u32 = 0u;

fn fmt_bits() -> u32 {
    switch FORMAT {
        case 1u, 4u, 5u: { return 4u; }
        case 6u: { return 2u; }
        default: { return 8u; }
    }
}

fn fmt_per_word() -> u32 {
    return 32u / fmt_bits();
}

// 1/qmax, as the exact f32 bits of the host's `Format::rcp_qmax`.
fn fmt_rcp_qmax() -> f32 {
    switch FORMAT {
        case 0u: { return bitcast<f32>(0x3c010204u); }
        case 1u: { return bitcast<f32>(0x3e124925u); }
        case 2u: { return bitcast<f32>(0x3b124925u); }
        case 3u: { return bitcast<f32>(0x37924925u); }
        case 5u: { return 0.25; }
        case 6u: { return 0.5; }
        default: { return bitcast<f32>(0x3c800000u); }
    }
}

fn fmt_encode_scaled(y: f32, stochastic: bool, r24: u32) -> u32 {
    switch FORMAT {
        case 0u: { return int_encode(y, 127u, 8u, stochastic, r24); }
        case 1u: { return int_encode(y, 7u, 4u, stochastic, r24); }
        case 2u: { return fp8_encode(y, 4u, 3u, 7, 0x7eu, stochastic, r24); }
        case 3u: { return fp8_encode(y, 5u, 2u, 15, 0x7bu, stochastic, r24); }
        case 5u: { return int_encode(y, 3u, 4u, stochastic, r24); }
        case 6u: { return int_encode(y, 1u, 2u, stochastic, r24); }
        default: { return log4_encode(y, stochastic, r24); }
    }
}

fn fmt_encode_nonfinite(bits: u32) -> u32 {
    let neg = (bits >> 31u) == 1u;
    let nan = (bits & 0x007fffffu) != 0u;
    switch FORMAT {
        case 0u: { return select(int_to_code(select(127, -127, neg), 8u), 0u, nan); }
        case 1u: { return select(int_to_code(select(7, -7, neg), 4u), 0u, nan); }
        case 2u: { return fp8_encode_nonfinite(bits, 4u, 3u, 0x7eu, false); }
        case 3u: { return fp8_encode_nonfinite(bits, 5u, 2u, 0x7bu, true); }
        case 5u: { return select(int_to_code(select(3, -3, neg), 4u), 0u, nan); }
        case 6u: { return select(int_to_code(select(1, -1, neg), 2u), 0u, nan); }
        default: { return select(log4_encode_level(neg, 7u), 0u, nan); }
    }
}

fn fmt_decode(code: u32) -> f32 {
    switch FORMAT {
        case 0u: { return f32(int_decode(code, 8u)); }
        case 1u, 5u: { return f32(int_decode(code, 4u)); }
        case 6u: { return f32(int_decode(code, 2u)); }
        case 2u: { return fp8_decode(code, 4u, 3u, 7, false); }
        case 3u: { return fp8_decode(code, 5u, 2u, 15, true); }
        default: { return log4_decode(code); }
    }
}

// The quantization rule for one element (src/format/mod.rs, `Format::quantize`): inv = 0 is a
// group with s = 0, where only the format's own non-finite codes are not 0.
fn fmt_quantize(x: f32, inv: f32, stochastic: bool, r24: u32) -> u32 {
    let bits = bitcast<u32>(x);
    if (!is_finite_bits(bits)) {
        let code = fmt_encode_nonfinite(bits);
        if (inv == 0.0 && is_finite_bits(bitcast<u32>(fmt_decode(code)))) {
            return 0u;
        }
        return code;
    }
    let y = ftz(ftz(x) * inv);
    return fmt_encode_scaled(y, stochastic, r24);
}

fn fmt_dequantize(code: u32, s: f32) -> f32 {
    return scaled_value(fmt_decode(code), s);
}

// Scale and inverse scale of a group (src/format/scale.rs, `scale_for_amax`).
fn fmt_scale_for_amax(amax: f32) -> vec2<f32> {
    let s = amax * fmt_rcp_qmax();
    if (!(bitcast<u32>(s) >= MIN_NORMAL_BITS) || !is_finite_bits(bitcast<u32>(s))) {
        return vec2<f32>(0.0, 0.0);
    }
    return vec2<f32>(s, recip_rne(s));
}
