// The stores of the kernels that write two tensors' outputs in one launch (quantize_both,
// im2col_quantize): where the shared units (samples.wgsl, pack_rows.wgsl, pack_stream.wgsl,
// rows_t.wgsl, unfold_t.wgsl) put code words and scales, x's (`codes`, `scales`) or its
// transpose's (`codes_t`, `scales_t`) as the invocation's `side` says: 0 x, 1 xᵀ. The including
// kernel sets side (and its private copy of the side's params, p) before packing.

var<private> side: u32;

fn put_code(i: u32, v: u32) {
    if (side == 0u) {
        codes[i] = v;
    } else {
        codes_t[i] = v;
    }
}

fn put_scale(i: u32, v: f32) {
    if (side == 0u) {
        scales[i] = v;
    } else {
        scales_t[i] = v;
    }
}
