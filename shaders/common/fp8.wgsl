// Mirror of src/format/fp8.rs: OCP FP8 E4M3 / E5M2 encode and decode, parameterized by the
// variant's (ebits, mbits, bias, max_code, has_inf).

const FP8_NAN_CODE: u32 = 0x7fu;

fn fp8_encode(y: f32, ebits: u32, mbits: u32, bias: i32, max_code: u32, stochastic: bool, r24: u32) -> u32 {
    let bits = bitcast<u32>(y);
    let abs = bits & 0x7fffffffu;
    if (abs == 0u) {
        return 0u;
    }
    let sign = (bits >> 24u) & 0x80u;
    let e = split_exp(abs);
    let mant = split_mant(abs);
    var mag = 0u;
    if (e >= 1 - bias) {
        if (e + bias > i32((1u << ebits) - 1u)) {
            mag = max_code;
        } else {
            let q = round_shift(mant, 23u - mbits, stochastic, r24);
            mag = (u32(e + bias - 1) << mbits) + q;
        }
    } else {
        let shift = u32(23 - i32(mbits) + (1 - bias - e));
        mag = round_shift(mant, shift, stochastic, r24);
    }
    if (mag == 0u) {
        return 0u;
    }
    return sign | min(mag, max_code);
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
    if (has_inf && exp == emax) {
        if (m == 0u) {
            return bitcast<f32>(sign | 0x7f800000u);
        }
        return bitcast<f32>(0x7fc00000u);
    }
    if (!has_inf && mag == 0x7fu) {
        return bitcast<f32>(0x7fc00000u);
    }
    var abs = 0.0;
    if (exp == 0u) {
        abs = f32(m) * bitcast<f32>(u32(127 + 1 - bias - i32(mbits)) << 23u);
    } else {
        abs = bitcast<f32>((u32(i32(exp) - bias + 127) << 23u) | (m << (23u - mbits)));
    }
    return bitcast<f32>(bitcast<u32>(abs) | sign);
}
