// Mirror of `Format` in src/format/mod.rs: dispatch on the FORMAT override constant
// (0 int8, 1 int4, 2 fp8-e4m3, 3 fp8-e5m2, 4 log4, 5 int3 in 4-bit lanes, 6 int2, 7 fp4-e2m1,
// 8 mxfp8, 9 mxfp4, 10 nvfp4), the shared per-element rule, and the group scale rules of
// src/format/scale.rs.

override FORMAT: u32 = 0u;

fn fmt_bits() -> u32 {
    switch FORMAT {
        case 1u, 4u, 5u, 7u, 9u, 10u: { return 4u; }
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
        case 2u, 8u: { return bitcast<f32>(0x3b124925u); }
        case 7u, 9u, 10u: { return bitcast<f32>(0x3e2aaaabu); }
        case 3u: { return bitcast<f32>(0x37924925u); }
        case 5u: { return 0.25; }
        case 6u: { return 0.5; }
        default: { return bitcast<f32>(0x3c800000u); }
    }
}

fn fmt_encode_scaled(y: f32, stochastic: bool, r24: u32) -> u32 {
    switch FORMAT {
        case 2u, 8u: { return fp8_encode(y, 3u, 7, 0x7eu, stochastic, r24); }
        case 3u: { return fp8_encode(y, 2u, 15, 0x7bu, stochastic, r24); }
        case 7u, 9u, 10u: { return fp4_encode(y, stochastic, r24); }
        default: { return log4_encode(y, stochastic, r24); }
    }
}

fn fmt_encode_nonfinite(bits: u32) -> u32 {
    let neg = (bits >> 31u) == 1u;
    let nan = (bits & 0x007fffffu) != 0u;
    switch FORMAT {
        case 2u, 8u: { return fp8_encode_nonfinite(bits, 4u, 3u, 0x7eu, false); }
        case 3u: { return fp8_encode_nonfinite(bits, 5u, 2u, 0x7bu, true); }
        case 7u, 9u, 10u: { return fp4_encode_nonfinite(bits); }
        default: { return select(log4_encode_level(neg, 7u), 0u, nan); }
    }
}

fn fmt_decode(code: u32) -> f32 {
    switch FORMAT {
        case 0u: { return f32(int_decode(code, 8u)); }
        case 1u, 5u: { return f32(int_decode(code, 4u)); }
        case 6u: { return f32(int_decode(code, 2u)); }
        case 2u, 8u: { return fp8_decode(code, 4u, 3u, 7, false); }
        case 3u: { return fp8_decode(code, 5u, 2u, 15, true); }
        case 7u, 9u, 10u: { return fp4_decode(code); }
        default: { return log4_decode(code); }
    }
}

// The quantization rule for one element (src/format/mod.rs, `Format::quantize`): inv = 0 is a
// group with s = 0, where only the format's own non-finite codes are not 0.
fn fmt_quantize(x: f32, inv: f32, stochastic: bool, r24: u32) -> u32 {
    switch FORMAT {
        case 0u: { return int_quantize(x, inv, 127.0, 8u, stochastic, r24); }
        case 1u: { return int_quantize(x, inv, 7.0, 4u, stochastic, r24); }
        case 5u: { return int_quantize(x, inv, 3.0, 4u, stochastic, r24); }
        case 6u: { return int_quantize(x, inv, 1.0, 2u, stochastic, r24); }
        default: {}
    }
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

fn fmt_qmax() -> f32 {
    switch FORMAT {
        case 0u: { return 127.0; }
        case 1u: { return 7.0; }
        case 2u, 8u: { return 448.0; }
        case 3u: { return 57344.0; }
        case 5u: { return 4.0; }
        case 6u: { return 2.0; }
        case 7u, 9u, 10u: { return 6.0; }
        default: { return 64.0; }
    }
}

fn is_normal(s: f32) -> bool {
    let b = bitcast<u32>(s);
    return b >= MIN_NORMAL_BITS && is_finite_bits(b);
}

// The smallest power of two >= t (positive normal t); may be inf past the range.
fn pow2_at_least(t: f32) -> f32 {
    let b = bitcast<u32>(t);
    if ((b & 0x007fffffu) == 0u) {
        return t;
    }
    return bitcast<f32>((b & 0x7f800000u) + 0x00800000u);
}

// NVFP4's per-tensor scale (src/format/scale.rs, `nvfp4_tensor_scale`).
const NVFP4_RANGE: f32 = 2688.0;
const NVFP4_LIMIT: f32 = 2677.5;

fn nvfp4_tensor_scale(amax: f32) -> f32 {
    let t = amax * (1.0 / NVFP4_RANGE);
    if (!is_normal(t)) {
        return 0.0;
    }
    var s = pow2_at_least(t);
    if (!is_normal(s)) {
        return 0.0;
    }
    if (amax * recip_pow2(s) > NVFP4_LIMIT) {
        s = s * 2.0;
    }
    return select(0.0, s, is_normal(s));
}

// The smallest E4M3 value >= v (v > 0), as its code.
fn e4m3_at_least(v: f32) -> u32 {
    if (v <= bitcast<f32>(0x3b000000u)) {
        return 1u;
    }
    let c = fp8_encode(v, 3u, 7, 0x7eu, false, 0u);
    if (fp8_decode(c, 4u, 3u, 7, false) < v && c < 0x7eu) {
        return c + 1u;
    }
    return c;
}

// Scale and inverse scale of a group with largest magnitude `amax` in a tensor with largest
// `tensor_amax` (NVFP4 only reads it): src/format/scale.rs, `group_scale`.
fn fmt_group_scale(amax: f32, tensor_amax: f32) -> vec2<f32> {
    let t = amax * fmt_rcp_qmax();
    if (!is_normal(t)) {
        return vec2<f32>(0.0, 0.0);
    }
    var s = t;
    if (FORMAT == 8u || FORMAT == 9u) {
        s = pow2_at_least(t);
        if (!is_normal(s)) {
            return vec2<f32>(0.0, 0.0);
        }
        if (amax * recip_pow2(s) > fmt_qmax()) {
            s = s * 2.0;
        }
    } else if (FORMAT == 10u) {
        let st = nvfp4_tensor_scale(tensor_amax);
        if (st == 0.0) {
            return vec2<f32>(0.0, 0.0);
        }
        let v = t * recip_pow2(st);
        var c = e4m3_at_least(v);
        s = fp8_decode(c, 4u, 3u, 7, false) * st;
        if (is_normal(s) && amax * recip_rne(s) > fmt_qmax() && c < 0x7eu) {
            c = c + 1u;
            s = fp8_decode(c, 4u, 3u, 7, false) * st;
        }
    }
    if (!is_normal(s)) {
        return vec2<f32>(0.0, 0.0);
    }
    // (An MX scale, a power of two, takes recip_rne's first path: recip_pow2.)
    return vec2<f32>(s, recip_rne(s));
}

// Scale and inverse scale of a group that is the whole tensor (src/format/scale.rs,
// `scale_for_amax`).
fn fmt_scale_for_amax(amax: f32) -> vec2<f32> {
    return fmt_group_scale(amax, amax);
}

// Values v (a tensor's values idx .. idx + 3 in its row-major order) quantized with inverse scale
// s_inv, their codes at bits s, s + b, s + 2b and s + 3b of a word (b the format's bits);
// stochastic draws at indices idx .. idx + 3 of key. The vec4 packing of the quantizers that pack
// along x's rows (common/pack.wgsl, quantize_both's short rows, common/pack_stream.wgsl).
fn codes4(v: vec4<f32>, s_inv: f32, stochastic: bool, key: u32, idx: u32, s: u32) -> u32 {
    let b = fmt_bits();
    var r = vec4<u32>();
    if (stochastic) {
        r = vec4<u32>(rng_draw24(key, idx), rng_draw24(key, idx + 1u), rng_draw24(key, idx + 2u),
                      rng_draw24(key, idx + 3u));
    }
    return (fmt_quantize(v.x, s_inv, stochastic, r.x) << s) | (fmt_quantize(v.y, s_inv, stochastic, r.y) << (s + b))
        | (fmt_quantize(v.z, s_inv, stochastic, r.z) << (s + 2u * b))
        | (fmt_quantize(v.w, s_inv, stochastic, r.w) << (s + 3u * b));
}
