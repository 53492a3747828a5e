// What the one-pass quantizers (quantize_fused, quantize_transpose_fused) share: x read through
// ReLU's mask, and the stacked stores of SMP samples. It reads the including kernel's
// `p: QuantParams`, `st: StepState`, its x and mask bindings, each as f32 (`x`, `mask`) and as
// vec4 (`x4`, `mask4`) views, and writes its `codes` and `scales`.

// Value i of x; with p.masked, 0 unless mask[i] > 0 (ReLU's backward, as relu_backward writes it).
fn load_x(i: u32) -> f32 {
    if (p.masked == 1u) {
        return select(0.0, x[i], mask[i] > 0.0);
    }
    return x[i];
}

// Values 4i .. 4i + 3 of x, masked as load_x.
fn load_x4(i: u32) -> vec4<f32> {
    if (p.masked == 1u) {
        return select(vec4<f32>(), x4[i], mask4[i] > vec4<f32>());
    }
    return x4[i];
}

// SMP: p.samples independent stochastic samples of the same tensor, stacked — sample j draws with
// rng_key(seed, stream + j + stream base) and is stored one whole tensor of codes (rows ·
// words_per_row words) and of scales (n_groups) after sample j - 1: what the integer GEMM averages
// in its epilogue. The scales are the same in every sample (a group's maximum does not depend on
// the draws). One sample is the plain quantizer.

// The draw key of sample j.
fn sample_key(j: u32) -> u32 {
    return rng_key(p.seed, p.stream + j + st.stream_base);
}

// Where word `word` of row `row` of sample j goes in codes.
fn code_at(j: u32, row: u32, word: u32) -> u32 {
    return (j * p.rows + row) * p.words_per_row + word;
}

// Group g's scale, into every sample.
fn store_scale(g: u32, s: f32) {
    for (var j = 0u; j < p.samples; j++) {
        scales[j * p.n_groups + g] = s;
    }
}
