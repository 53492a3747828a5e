// Mirror of src/format/fp8.rs: OCP FP8 E4M3 / E5M2 encode and decode, parameterized by the
// variant's (ebits, mbits, bias, max_code, has_inf).

const FP8_NAN_CODE: u32 = 0x7fu;

// The code of finite, flushed y: with e = max(exponent of |y|, 1 - bias) (the subnormal range
// sharing the smallest normal exponent), |y|·2^(mbits - e) (exact: a power of two, normal for
// every finite y) counts code steps, rounded by round_scaled to k; the magnitude code is
// ((e + bias - 1) << mbits) + k (k carries the hidden bit where y is normal, so a carry moves
// the exponent), saturated to max_code: round_shift's result on (exponent, mantissa), without a
// branch on the value.
fn fp8_encode(y: f32, mbits: u32, bias: i32, max_code: u32, stochastic: bool, r24: u32) -> u32 {
    let bits = bitcast<u32>(y);
    let abs = bits & 0x7fffffffu;
    let e = max(split_exp(abs), 1 - bias);
    let step_inv = bitcast<f32>(u32(i32(mbits) - e + 127) << 23u);
    let k = round_scaled(bitcast<f32>(abs) * step_inv, stochastic, r24);
    let mag = (u32(e + bias - 1) << mbits) + k;
    return select(((bits >> 24u) & 0x80u) | min(mag, max_code), 0u, mag == 0u);
}

fn fp8_encode_nonfinite(bits: u32, ebits: u32, mbits: u32, max_code: u32, has_inf: bool) -> u32 {
    if ((bits & 0x007fffffu) != 0u) {
        return FP8_NAN_CODE;
    }
    let sign = (bits >> 24u) & 0x80u;
    if (has_inf) {
        return sign | (((1u << ebits) - 1u) << mbits);
    }
    return sign | max_code;
}

fn fp8_decode(code: u32, ebits: u32, mbits: u32, bias: i32, has_inf: bool) -> f32 {
    let sign = (code & 0x80u) << 24u;
    let mag = code & 0x7fu;
    let exp = mag >> mbits;
    let m = mag & ((1u << mbits) - 1u);
    let emax = (1u << ebits) - 1u;
    // Without a branch on the code (the GEMMs decode every element, and a lane-divergent branch
    // runs both ways): a normal code's exponent and mantissa moved into f32's fields and
    // rebiased, a subnormal one (exp = 0) as m units of 2^(1 - bias - mbits), exact either way;
    // then the specials.
    let normal = (mag << (23u - mbits)) + (u32(127 - bias) << 23u);
    let sub = bitcast<u32>(f32(m) * bitcast<f32>(u32(127 + 1 - bias - i32(mbits)) << 23u));
    let inf = has_inf && exp == emax && m == 0u;
    let nan = select(mag == 0x7fu, exp == emax && m != 0u, has_inf);
    let abs = select(select(normal, sub, exp == 0u), 0x7f800000u, inf);
    return bitcast<f32>(select(abs | sign, 0x7fc00000u, nan));
}

// The value of code `code` of an FP8 GEMM operand in format `fmt` (gemm_fp8's ids: 3 = E5M2, else
// E4M3, MXFP8's elements included), as the FP8 GEMMs decode it.
fn fp8_value(code: u32, fmt: u32) -> f32 {
    if (fmt == 3u) {
        return fp8_decode(code, 5u, 2u, 15, true);
    }
    return fp8_decode(code, 4u, 3u, 7, false);
}

// The four values of a word of FP8 codes in format `fmt`, each scaled by `s` (scaled_value of
// common/quant.wgsl: the values `dequantize` gives); the lanes kernels' loads.
fn word_values(w: u32, fmt: u32, s: f32) -> vec4<f32> {
    return vec4<f32>(scaled_value(fp8_value(w & 0xffu, fmt), s), scaled_value(fp8_value((w >> 8u) & 0xffu, fmt), s),
                     scaled_value(fp8_value((w >> 16u) & 0xffu, fmt), s), scaled_value(fp8_value(w >> 24u, fmt), s));
}
