// Packing of L = xᵀ, shared by the transposing quantizers (quantize_transpose,
// quantize_transpose_fused), as gemm_tiled's loops are by the GEMMs: it reads the including
// kernel's `p: QuantParams` and x through its `load_x(i)` (x stored [cols, rows], L[row][col] =
// x[col * p.rows + row]; or, with p.batch_rows = R > 0, a stack of [cols, R] matrices whose
// transposes are L's rows in blocks of R: see x_row).

// Where row `row` of L lies in x: (the index of L[row][0], the step from one column to the next).
fn x_row(row: u32) -> vec2<u32> {
    if (p.batch_rows == 0u) {
        return vec2<u32>(row, p.rows);
    }
    let r = p.batch_rows;
    return vec2<u32>((row / r) * (p.cols * r) + row % r, r);
}

// Word `word` of row `row` of L, packed with inverse scale s_inv; stochastic draws at index
// row·cols + col of key (the quantizer's rng_key(seed, stream + stream base)).
// xr = x_row(row).
fn pack_word_t(row: u32, xr: vec2<u32>, word: u32, s_inv: f32, key: u32) -> u32 {
    let per_word = fmt_per_word();
    let b = fmt_bits();
    let stochastic = p.stochastic == 1u;
    var packed = 0u;
    for (var i = 0u; i < per_word; i++) {
        let col = word * per_word + i;
        if (col < p.cols) {
            var r = 0u;
            if (stochastic) {
                r = rng_draw24(key, row * p.cols + col);
            }
            packed |= fmt_quantize(load_x(xr.x + col * xr.y), s_inv, stochastic, r) << (i * b);
        }
    }
    return packed;
}
