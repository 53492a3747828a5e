// The rows of L = xᵀ read four at a time with their sums in col_sum's order, shared by the
// transposing quantizers that write a layer's bias gradient (quantize_transpose_fused,
// hadamard_quantize_transpose). It reads the including kernel's `p: QuantParams` (p.cols: the
// length of L's rows; p.aux0 = 1: sums asked; p.aux1: col_sum's chunk_rows) and x through its
// `load_x4(i)` (values 4i .. 4i + 3, masked as the kernel reads them); each chunk as
// chunk_sums.wgsl's chunk_pass4 sums it.

fn row_pass4(q: u32, i0: u32) -> RowPass4 {
    var m = vec4<u32>();
    var total = vec4<f32>();
    if (p.aux0 != 1u) {
        // The maxima alone: one plain loop (the chunked one below costs twice as much on lavapipe).
        for (var col = 0u; col < p.cols; col++) {
            m = max(m, amax_bits4(load_x4(col * q + i0)));
        }
        return RowPass4(m, total);
    }
    // The chunks added in order, as col_sum's second level adds them.
    let chunk_cols = max(p.aux1, 1u);
    for (var c0 = 0u; c0 < p.cols; c0 += chunk_cols) {
        let c = chunk_pass4(q, i0, c0, min(c0 + chunk_cols, p.cols));
        m = max(m, c.m);
        total = select(total + c.total, c.total, c0 == 0u);
    }
    return RowPass4(m, total);
}
