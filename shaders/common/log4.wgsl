// Mirror of src/format/log4.rs: LUQ's 4-bit logarithmic format (sign + 3-bit level).

fn log4_encode_level(neg: bool, c: u32) -> u32 {
    if (c == 0u) {
        return 0u;
    }
    return (select(0u, 1u, neg) << 3u) | c;
}

fn log4_encode(y: f32, stochastic: bool, r24: u32) -> u32 {
    let bits = bitcast<u32>(y);
    let abs = bits & 0x7fffffffu;
    if (abs == 0u) {
        return 0u;
    }
    let e = split_exp(abs);
    let mant = split_mant(abs);
    var c = 7u;
    if (e < 0) {
        c = round_shift(mant, u32(23 - e), stochastic, r24);
    } else if (e < 7) {
        c = min(u32(e) + round_shift(mant, 23u, stochastic, r24), 7u);
    }
    return log4_encode_level((bits >> 31u) == 1u, c);
}

fn log4_decode(code: u32) -> f32 {
    let c = code & 7u;
    if (c == 0u) {
        return 0.0;
    }
    let mag = bitcast<f32>((127u + c - 1u) << 23u);
    if ((code & 8u) != 0u) {
        return -mag;
    }
    return mag;
}
