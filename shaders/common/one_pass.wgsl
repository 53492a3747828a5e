// What the one-pass quantizers (quantize_fused, quantize_transpose_fused) share: x read through
// ReLU's mask. It reads the including kernel's `p: QuantParams` and its x and mask bindings, each
// as f32 (`x`, `mask`) and as vec4 (`x4`, `mask4`) views.

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
