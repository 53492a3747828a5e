// A row's scale groups by one thread, shared by the one-pass quantizers that pack x in its own
// orientation a thread per group (quantize_fused's per-thread entries, quantize_both's side of x):
// a word's and a group's maximum and a group's scale and codes. It reads the including kernel's
// `p: QuantParams` and x through load_x and load_x4 (one_pass.wgsl), and stores through
// store_scale (samples.wgsl), store_words and store_words4 (pack_rows.wgsl) and put_code (a short
// group's words, store_short_group).

// The largest amax_bits of word `word`'s values in row `row`.
fn word_amax(row: u32, word: u32) -> u32 {
    let per_word = fmt_per_word();
    var m = 0u;
    for (var i = 0u; i < per_word; i++) {
        let col = word * per_word + i;
        if (col < p.cols) {
            m = max(m, amax_bits(load_x(row * p.cols + col)));
        }
    }
    return m;
}

// Group t (of per_row groups a row, seg words each): its row and words [w0, w1).
fn group_span(t: u32, per_row: u32, seg: u32) -> vec3<u32> {
    let w0 = (t % per_row) * seg;
    return vec3<u32>(t / per_row, w0, min(w0 + seg, p.words_per_row));
}

// The largest amax_bits of a group's values.
fn span_amax(g: vec3<u32>) -> u32 {
    var m = 0u;
    for (var w = g.y; w < g.z; w++) {
        m = max(m, word_amax(g.x, w));
    }
    return m;
}

// A group's scale and codes, with its (scale, 1/scale) si.
fn store_group(g: vec3<u32>, si: vec2<f32>) {
    store_scale(group_of(p, g.x, g.y * fmt_per_word()), si.x);
    store_words(g.x, g.y, g.z, 1u, si.y);
}

// word_amax over vec4s (codes per word and p.cols multiples of 4: a vec4 is in the row or past it).
fn word_amax4(row: u32, word: u32) -> u32 {
    let per_word = fmt_per_word();
    var m = 0u;
    for (var i = 0u; i < per_word; i += 4u) {
        let col = word * per_word + i;
        if (col < p.cols) {
            let v = load_x4((row * p.cols + col) / 4u);
            m = max(m, max(max(amax_bits(v.x), amax_bits(v.y)), max(amax_bits(v.z), amax_bits(v.w))));
        }
    }
    return m;
}

// The largest amax_bits of a group's values, read as vec4s (codes per word and p.cols multiples of
// 4).
fn group_amax4(g: vec3<u32>) -> u32 {
    var m = 0u;
    for (var w = g.y; w < g.z; w++) {
        m = max(m, word_amax4(g.x, w));
    }
    return m;
}

// A group's scale and codes with its (scale, 1/scale) si, x read four values at a time (a per-row
// group: the whole row, whose scale is group_of's index row).
fn store_group4_with(g: vec3<u32>, si: vec2<f32>) {
    store_scale(group_of(p, g.x, g.y * fmt_per_word()), si.x);
    store_words4(g.x, g.y, g.z, 1u, si.y);
}

// store_group over vec4s (codes per word and p.cols multiples of 4): the group's maximum, scale
// and codes (a group of at most SHORT_GROUP values from registers: store_short_group).
fn store_group4(g: vec3<u32>) {
    if (is_short_group(g)) {
        store_short_group(g);
        return;
    }
    store_group4_with(g, group_scale_of(bitcast<f32>(group_amax4(g))));
}

// Values a group may have to be read once, into registers (store_short_group): an MX block's 32,
// an NVFP4 block, a short row. On llvmpipe every load runs lane by lane, and reading such a group
// once instead of twice (its maximum, then its codes) with every loop unrolled took
// quantize_fused's int8 blocks of 32 from 4.4-4.5 to 5.2-5.3 GB/s (to nearest; kernel_report's
// 16M values in rows of 4096).
const SHORT_GROUP: u32 = 32u;

// Whether group g is read once (store_short_group): at most SHORT_GROUP values.
fn is_short_group(g: vec3<u32>) -> bool {
    return (g.z - g.y) * fmt_per_word() <= SHORT_GROUP;
}

// Vec4 k of a short group whose vec4s start at x4's index `base` (n4 of them; 0 past them).
fn short_group_load(base: u32, k: u32, n4: u32) -> vec4<f32> {
    if (k < n4) {
        return load_x4(base + k);
    }
    return vec4<f32>();
}

// The codes of a short group's vec4 k (values v, n4 vec4s from column c0 of row `row`) with inverse
// scale inv, at their place in the word (codes4, as pack_word4 shifts them); 0 past the group.
fn short_group_codes(v: vec4<f32>, k: u32, n4: u32, row: u32, c0: u32, inv: f32, key: u32) -> u32 {
    if (k >= n4) {
        return 0u;
    }
    let quads = fmt_per_word() / 4u;
    let idx = row * p.cols + c0 + 4u * k;
    return codes4(v, inv, p.stochastic == 1u, key, idx, 4u * (k % quads) * fmt_bits());
}

// Word w of a short group of n words starting at codes index `at`, if it has one.
fn short_group_put(at: u32, w: u32, n: u32, word: u32) {
    if (w < n) {
        put_code(at + w, word);
    }
}

// store_group4 of a short group (is_short_group; codes per word and p.cols multiples of 4), its
// eight vec4s (0 past its end) read once and kept in registers from the maximum to the codes: the
// same maximum (the zeros count 0), scale, draws, codes and words. Every value is a named local,
// and one sample's codes are formed outside any loop: with them inside the loop over SMP's samples
// even where there is one, the kernel ran slower on llvmpipe than reading the group twice (so it
// did with the values in an array passed between functions and that loop).
fn store_short_group(g: vec3<u32>) {
    let c0 = g.y * fmt_per_word();
    let n4 = (min(g.z * fmt_per_word(), p.cols) - c0) / 4u;
    let b = (g.x * p.cols + c0) / 4u;
    let v0 = short_group_load(b, 0u, n4);
    let v1 = short_group_load(b, 1u, n4);
    let v2 = short_group_load(b, 2u, n4);
    let v3 = short_group_load(b, 3u, n4);
    let v4 = short_group_load(b, 4u, n4);
    let v5 = short_group_load(b, 5u, n4);
    let v6 = short_group_load(b, 6u, n4);
    let v7 = short_group_load(b, 7u, n4);
    let m4 = max(max(max(amax_bits4(v0), amax_bits4(v1)), max(amax_bits4(v2), amax_bits4(v3))),
                 max(max(amax_bits4(v4), amax_bits4(v5)), max(amax_bits4(v6), amax_bits4(v7))));
    let m = bitcast<f32>(max(max(m4.x, m4.y), max(m4.z, m4.w)));
    let si = group_scale_of(m);
    store_scale(group_of(p, g.x, c0), si.x);
    if (p.samples == 1u) {
        store_short_words(g, 0u, c0, n4, si.y, v0, v1, v2, v3, v4, v5, v6, v7);
        return;
    }
    for (var j = 0u; j < p.samples; j++) {
        store_short_words(g, j, c0, n4, si.y, v0, v1, v2, v3, v4, v5, v6, v7);
    }
}

// SMP sample j's words of a short group with values v0 .. v7 (n4 vec4s from column c0, 0 past
// them: store_short_group's) and inverse scale inv.
fn store_short_words(g: vec3<u32>, j: u32, c0: u32, n4: u32, inv: f32, v0: vec4<f32>, v1: vec4<f32>,
                     v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>) {
    let r = g.x;
    let n = g.z - g.y;
    let key = sample_key(j);
    let k0 = short_group_codes(v0, 0u, n4, r, c0, inv, key);
    let k1 = short_group_codes(v1, 1u, n4, r, c0, inv, key);
    let k2 = short_group_codes(v2, 2u, n4, r, c0, inv, key);
    let k3 = short_group_codes(v3, 3u, n4, r, c0, inv, key);
    let k4 = short_group_codes(v4, 4u, n4, r, c0, inv, key);
    let k5 = short_group_codes(v5, 5u, n4, r, c0, inv, key);
    let k6 = short_group_codes(v6, 6u, n4, r, c0, inv, key);
    let k7 = short_group_codes(v7, 7u, n4, r, c0, inv, key);
    let at = code_at(j, r, g.y);
    // A word is one, two or four vec4s' codes (8-, 4- and 2-bit formats), at most n of them.
    switch fmt_per_word() / 4u {
        case 1u: {
            short_group_put(at, 0u, n, k0);
            short_group_put(at, 1u, n, k1);
            short_group_put(at, 2u, n, k2);
            short_group_put(at, 3u, n, k3);
            short_group_put(at, 4u, n, k4);
            short_group_put(at, 5u, n, k5);
            short_group_put(at, 6u, n, k6);
            short_group_put(at, 7u, n, k7);
        }
        case 2u: {
            short_group_put(at, 0u, n, k0 | k1);
            short_group_put(at, 1u, n, k2 | k3);
            short_group_put(at, 2u, n, k4 | k5);
            short_group_put(at, 3u, n, k6 | k7);
        }
        default: {
            short_group_put(at, 0u, n, k0 | k1 | k2 | k3);
            short_group_put(at, 1u, n, k4 | k5 | k6 | k7);
        }
    }
}
