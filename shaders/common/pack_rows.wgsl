// What the one-pass quantizers that pack x in its own orientation (quantize_fused,
// im2col_quantize, quantize_both) share: a row's words packed (pack.wgsl) into every SMP sample's
// codes (samples.wgsl), stored through the including kernel's put_code (common/stores.wgsl, or
// common/stores_both.wgsl).

// Words w0, w0 + step, .. below w1 of row `row`, packed with inverse scale s_inv into every SMP
// sample (each sample's draw key computed once).
fn store_words(row: u32, w0: u32, w1: u32, step: u32, s_inv: f32) {
    for (var j = 0u; j < p.samples; j++) {
        let key = sample_key(j);
        for (var w = w0; w < w1; w += step) {
            put_code(code_at(j, row, w), pack_word(row, w, s_inv, key));
        }
    }
}

// store_words over vec4s (pack_word4: codes per word and row length multiples of 4).
fn store_words4(row: u32, w0: u32, w1: u32, step: u32, s_inv: f32) {
    for (var j = 0u; j < p.samples; j++) {
        let key = sample_key(j);
        for (var w = w0; w < w1; w += step) {
            put_code(code_at(j, row, w), pack_word4(row, w, s_inv, key));
        }
    }
}
