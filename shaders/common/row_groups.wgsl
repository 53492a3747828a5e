// A row's scale groups by one thread, shared by the one-pass quantizers that pack x in its own
// orientation a thread per group (quantize_fused's per-thread entries, quantize_both's side of x):
// a word's and a group's maximum and a group's scale and codes. It reads the including kernel's
// `p: QuantParams` and x through load_x and load_x4 (one_pass.wgsl), and stores through
// store_scale (samples.wgsl) and store_words and store_words4 (pack_rows.wgsl).

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
// and codes.
fn store_group4(g: vec3<u32>) {
    store_group4_with(g, group_scale_of(bitcast<f32>(group_amax4(g))));
}
