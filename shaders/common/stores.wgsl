// Where the shared units that write a quantizer's outputs (samples.wgsl's store_scale,
// pack_rows.wgsl's store_words, rows_t.wgsl's store_words_t) put code words and scales: the
// including kernel's `codes` and `scales` bindings (common/stores_both.wgsl: for the kernels that
// write a tensor's and its transpose's outputs in one launch).

fn put_code(i: u32, v: u32) {
    codes[i] = v;
}

fn put_scale(i: u32, v: f32) {
    scales[i] = v;
}
