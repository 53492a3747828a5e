// Integer GEMM operands as int8 lanes (gemm_int, gemm_int_lanes): widening of every gemm_int
// format to four int8 lanes per u32, the lane words of A and B rows, and their scales. The
// including kernel declares p (GemmParams), the FMT_A / FMT_B overrides and the bindings a_codes,
// a_scales, b_codes, b_scales; a_row0 / b_row0 come from split_tile (common/gemm.wgsl).

// End of this workgroup's K range (split-K); lane words at or past it read as 0.
var<private> k_end: u32;

// Four 2-bit int2 codes (the low byte) as four int8 lanes.
fn widen2(pairs: u32) -> u32 {
    // Code i into the low two bits of byte i; bit 1 set fills bits 2..7 (0x02 * 0x7e = 0xfc).
    let x = (pairs & 0x3u) | ((pairs & 0xcu) << 6u) | ((pairs & 0x30u) << 12u) | ((pairs & 0xc0u) << 18u);
    return x | ((x & 0x02020202u) * 0x7eu);
}

fn is_fp4(fmt: u32) -> bool {
    return fmt == 7u || fmt == 9u || fmt == 10u;
}

// What a lane unit is worth: an E2M1 lane holds twice its value.
fn lane_unit() -> f32 {
    return select(1.0, 0.5, is_fp4(FMT_A)) * select(1.0, 0.5, is_fp4(FMT_B));
}

// Four 4-bit codes (int4, int3, log4 or E2M1) as four int8 lanes.
fn widen4(nibbles: u32, fmt: u32) -> u32 {
    // Code i into the low nibble of byte i.
    let x = (nibbles & 0xfu) | ((nibbles & 0xf0u) << 4u) | ((nibbles & 0xf00u) << 8u) | ((nibbles & 0xf000u) << 12u);
    if (is_fp4(fmt)) {
        // E2M1 magnitude m = (e, f): twice the value is f (e = 0) or (2 + f) << (e - 1).
        var out = 0u;
        for (var i = 0u; i < 4u; i++) {
            let code = (x >> (8u * i)) & 0xfu;
            let m = code & 7u;
            let e = m >> 1u;
            var mag = m & 1u;
            if (e != 0u) {
                mag = (2u + (m & 1u)) << (e - 1u);
            }
            out |= select(mag, (0u - mag) & 0xffu, (code & 8u) != 0u) << (8u * i);
        }
        return out;
    }
    if (fmt != 4u) {
        // int4: bit 3 set fills bits 4..7 of its byte (0x08 * 0x1e = 0xf0: no carry between bytes).
        return x | ((x & 0x08080808u) * 0x1eu);
    }
    // log4: level l = code & 7 is 2^(l-1) (0 for l = 0), negated when bit 3 is set.
    var out = 0u;
    for (var i = 0u; i < 4u; i++) {
        let code = (x >> (8u * i)) & 0xfu;
        let mag = (1u << (code & 7u)) >> 1u;
        out |= select(mag, (0u - mag) & 0xffu, (code & 8u) != 0u) << (8u * i);
    }
    return out;
}

// The codes of lane word kw (elements 4kw .. 4kw+3) of A's row `row` as stored: the word (int8),
// its byte (int2) or its 16 bits (4-bit formats) in the low bits; 0 (every format's code of 0)
// past M or the K range.
fn raw_word_a(row: u32, kw: u32, sample: u32) -> u32 {
    if (row >= p.m || kw * 4u >= k_end) {
        return 0u;
    }
    let base = (sample * p.m + a_row0 + row) * p.a_words;
    if (FMT_A == 0u) {
        return a_codes[base + kw];
    }
    if (FMT_A == 6u) {
        return (a_codes[base + kw / 4u] >> (8u * (kw % 4u))) & 0xffu;
    }
    return (a_codes[base + kw / 2u] >> (16u * (kw % 2u))) & 0xffffu;
}

fn raw_word_b(col: u32, kw: u32) -> u32 {
    if (col >= p.n || kw * 4u >= k_end) {
        return 0u;
    }
    let base = (b_row0 + col) * p.b_words;
    if (FMT_B == 0u) {
        return b_codes[base + kw];
    }
    if (FMT_B == 6u) {
        return (b_codes[base + kw / 4u] >> (8u * (kw % 4u))) & 0xffu;
    }
    return (b_codes[base + kw / 2u] >> (16u * (kw % 2u))) & 0xffffu;
}

// Codes as raw_word_a/b give them, widened to four int8 lanes.
fn widen(raw: u32, fmt: u32) -> u32 {
    if (fmt == 0u) {
        return raw;
    }
    if (fmt == 6u) {
        return widen2(raw);
    }
    return widen4(raw, fmt);
}

// Lane word kw (elements 4kw .. 4kw+3) of row `row` of A as four int8 lanes.
fn lane_word_a(row: u32, kw: u32, sample: u32) -> u32 {
    return widen(raw_word_a(row, kw, sample), FMT_A);
}

fn lane_word_b(col: u32, kw: u32) -> u32 {
    return widen(raw_word_b(col, kw), FMT_B);
}

// The four lane values of raw codes as f32 (the lanes kernels, which multiply in f32): the
// widened lanes converted, but log4 and E2M1 codes decoded directly, four at once, where
// widen4 packs them one by one into lanes that would be unpacked again. The same values.
fn lanes_f32_of(raw: u32, fmt: u32) -> vec4<f32> {
    if (fmt == 4u || is_fp4(fmt)) {
        let c = (vec4<u32>(raw) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(0xfu);
        let m = c & vec4<u32>(7u);
        var mag: vec4<u32>;
        if (fmt == 4u) {
            // log4: level l is 2^(l-1), 0 for l = 0.
            mag = (vec4<u32>(1u) << m) >> vec4<u32>(1u);
        } else {
            // E2M1 magnitude (e, f), twice its value: f for e = 0, else (2 + f) << (e - 1).
            let e = m >> vec4<u32>(1u);
            let f = m & vec4<u32>(1u);
            mag = select((vec4<u32>(2u) + f) << (max(e, vec4<u32>(1u)) - vec4<u32>(1u)), f, e == vec4<u32>(0u));
        }
        let v = vec4<f32>(mag);
        return select(v, -v, (c & vec4<u32>(8u)) != vec4<u32>(0u));
    }
    return vec4<f32>(unpack4xI8(widen(raw, fmt)));
}

// Lane word kw of A's row `row` (B's column `col`) as four f32.
fn lane_f32_a(row: u32, kw: u32, sample: u32) -> vec4<f32> {
    return lanes_f32_of(raw_word_a(row, kw, sample), FMT_A);
}

fn lane_f32_b(col: u32, kw: u32) -> vec4<f32> {
    return lanes_f32_of(raw_word_b(col, kw), FMT_B);
}

fn scale_a(sample: u32, row: u32, k: u32, groups: u32) -> f32 {
    return a_scales[sample * groups + (a_row0 + row) * p.a_row_mul + (k >> block_shift(p.a_block_div))];
}

fn scale_b(col: u32, k: u32) -> f32 {
    return b_scales[(b_row0 + col) * p.b_row_mul + (k >> block_shift(p.b_block_div))];
}
