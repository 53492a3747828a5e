// The stacked stores of SMP samples, shared by the one-pass quantizers (quantize_fused,
// quantize_transpose_fused, quantize_both, im2col_quantize, im2col_quantize_transpose). It reads
// the including kernel's `p: QuantParams` and `st: StepState` and stores through its put_scale
// (common/stores.wgsl, or common/stores_both.wgsl, which picks one of two outputs).

// SMP: p.samples independent stochastic samples of the same tensor, stacked — sample j draws with
// rng_key(seed, stream + j + stream base) and is stored one whole tensor of codes (rows ·
// words_per_row words) and of scales (n_groups) after sample j - 1: what the integer GEMM averages
// in its epilogue. The scales are the same in every sample (a group's maximum does not depend on
// the draws). One sample is the plain quantizer.

// The draw key of sample j.
fn sample_key(j: u32) -> u32 {
    return sample_key_of(p, j);
}

// sample_key under params q (a kernel that packs two layouts at once: im2col_quantize's tiles).
fn sample_key_of(q: QuantParams, j: u32) -> u32 {
    return rng_key(q.seed, q.stream + j + st.stream_base);
}

// Where word `word` of row `row` of sample j goes in codes.
fn code_at(j: u32, row: u32, word: u32) -> u32 {
    return (j * p.rows + row) * p.words_per_row + word;
}

// Group g's scale, into every sample.
fn store_scale(g: u32, s: f32) {
    for (var j = 0u; j < p.samples; j++) {
        put_scale(j * p.n_groups + g, s);
    }
}
