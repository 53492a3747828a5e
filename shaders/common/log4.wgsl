// Mirror of src/format/log4.rs: LUQ's 4-bit logarithmic format (sign + 3-bit level).

fn log4_encode_level(neg: bool, c: u32) -> u32 {
    if (c == 0u) {
        return 0u;
    }
    return (select(0u, 1u, neg) << 3u) | c;
}

// The level of finite, flushed y: with e = |y|'s exponent clamped to [0, 7],
// e + round_scaled(|y|·2^-e) capped at 7 (|y| < 1: 0 or 1, underflow rounded; below 2^7: 2^e or
// 2^(e+1); past it the scaled value is capped at 4, which still lands past level 7 and keeps it in
// round_scaled's range): round_shift's result on (exponent, mantissa), without a branch on the
// value.
fn log4_encode(y: f32, stochastic: bool, r24: u32) -> u32 {
    let bits = bitcast<u32>(y);
    let abs = bits & 0x7fffffffu;
    let e = clamp(split_exp(abs), 0, 7);
    let s = min(bitcast<f32>(abs) * bitcast<f32>(u32(127 - e) << 23u), 4.0);
    let c = min(u32(e) + round_scaled(s, stochastic, r24), 7u);
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
