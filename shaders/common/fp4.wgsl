// Mirror of src/format/fp4.rs: FP4 E2M1 (sign bit 3, bias 1, max 6, no inf/NaN) as the FP8 rule
// with 2 exponent and 1 mantissa bits, the sign moved from bit 7 to bit 3.

fn fp4_encode(y: f32, stochastic: bool, r24: u32) -> u32 {
    let c = fp8_encode(y, 1u, 1, 0x7u, stochastic, r24);
    return ((c >> 4u) & 0x8u) | (c & 0x7u);
}

fn fp4_encode_nonfinite(bits: u32) -> u32 {
    if ((bits & 0x007fffffu) != 0u) {
        return 0u;
    }
    return ((bits >> 28u) & 0x8u) | 0x7u;
}

fn fp4_decode(code: u32) -> f32 {
    return fp8_decode(((code & 0x8u) << 4u) | (code & 0x7u), 2u, 1u, 1, false);
}
