// Packing of a row's words, shared by the quantizers that pack x in its own orientation (quantize,
// quantize_fused), as pack_t.wgsl is by the transposing ones: it reads the including kernel's
// `p: QuantParams`, and x through its `load_x(i)` (value i) and `load_x4(i)` (values 4i .. 4i + 3).

// Word `word` of row `row`, packed with inverse scale s_inv; stochastic draws at index row·cols + col
// of key (the quantizer's rng_key(seed, stream + stream base)).
fn pack_word(row: u32, word: u32, s_inv: f32, key: u32) -> u32 {
    let per_word = fmt_per_word();
    let b = fmt_bits();
    let stochastic = p.stochastic == 1u;
    var packed = 0u;
    for (var i = 0u; i < per_word; i++) {
        let col = word * per_word + i;
        if (col < p.cols) {
            let idx = row * p.cols + col;
            var r = 0u;
            if (stochastic) {
                r = rng_draw24(key, idx);
            }
            packed |= fmt_quantize(load_x(idx), s_inv, stochastic, r) << (i * b);
        }
    }
    return packed;
}

// pack_word over vec4s: the same codes, draws and shifts.
fn pack_word4(row: u32, word: u32, s_inv: f32, key: u32) -> u32 {
    let per_word = fmt_per_word();
    let stochastic = p.stochastic == 1u;
    var packed = 0u;
    for (var i = 0u; i < per_word; i += 4u) {
        let col = word * per_word + i;
        if (col < p.cols) {
            let idx = row * p.cols + col;
            packed |= codes4(load_x4(idx / 4u), s_inv, stochastic, key, idx, i * fmt_bits());
        }
    }
    return packed;
}
