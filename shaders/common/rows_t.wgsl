// A row of L = xᵀ by one thread, shared by the transposing one-pass quantizers that run a thread
// per row (quantize_transpose_fused's per-thread entries, quantize_both's transposed side): the
// row's maximum and, with p.aux0 = 1, its sum in col_sum's order (eight interleaved partial sums
// per chunk of p.aux1 columns, added in lane order, then the chunks in order), its scale or its
// blocks' scales, and its words packed into every SMP sample. It reads the including kernel's
// `p: QuantParams` (L's layout), x through load_x and load_x4 (one_pass.wgsl; four adjacent rows
// of L per thread in row_thread4 and block_thread4, whose maxima and sums are row_sums.wgsl's),
// x_row and pack_words4 (pack_t.wgsl), writes its `sums` binding, and stores through put_code and
// put_scale (common/stores.wgsl, or common/stores_both.wgsl) and group_scale_of (group_scale.wgsl,
// or quantize_both's own).

// Words w0, w0 + step, .. below w1 of row `row` of L (xr = x_row(row)), packed with inverse scale
// s_inv into every SMP sample (each sample's draw key computed once).
fn store_words_t(row: u32, xr: vec2<u32>, w0: u32, w1: u32, step: u32, s_inv: f32) {
    for (var j = 0u; j < p.samples; j++) {
        let key = sample_key(j);
        for (var word = w0; word < w1; word += step) {
            put_code(code_at(j, row, word), pack_word_t(row, xr, word, s_inv, key));
        }
    }
}

// What one read of a row of L gives: its maximum as f32 bits, and with sums its sum.
struct RowPass {
    m: u32,
    total: f32,
}

// The per-thread entries' read of a row of L (xr = x_row(row)): its maximum, and with sums
// (p.aux0 = 1) its sum in col_sum's order.
fn thread_row_pass(xr: vec2<u32>) -> RowPass {
    let with_sums = p.aux0 == 1u;
    var m = 0u;
    var total = 0.0;
    if (!with_sums) {
        // The maximum alone: one plain loop (the chunked one below costs twice as much on lavapipe).
        for (var col = 0u; col < p.cols; col++) {
            m = max(m, amax_bits(load_x(xr.x + col * xr.y)));
        }
        return RowPass(m, total);
    }
    let chunk_cols = max(p.aux1, 1u);
    for (var c0 = 0u; c0 < p.cols; c0 += chunk_cols) {
        let end = min(c0 + chunk_cols, p.cols);
        // Lane l of `main` sums columns c0 + l, c0 + l + 8, ...: s[l] here, in the same order.
        var s = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (var col = c0; col < end; col += SUM_LANES) {
            for (var l = 0u; l < SUM_LANES; l++) {
                if (col + l < end) {
                    let v = load_x(xr.x + (col + l) * xr.y);
                    m = max(m, amax_bits(v));
                    s[l] += v;
                }
            }
        }
        var t = s[0];
        for (var l = 1u; l < SUM_LANES; l++) {
            t += s[l];
        }
        total = select(total + t, t, c0 == 0u);
    }
    return RowPass(m, total);
}

// Row `row` of L by one thread (per-row scales).
fn row_thread(row: u32) {
    if (row >= p.rows) {
        return;
    }
    let xr = x_row(row);
    let rp = thread_row_pass(xr);
    let si = group_scale_of(bitcast<f32>(rp.m));
    store_scale(row, si.x);
    if (p.aux0 == 1u) {
        sums[row] = rp.total;
    }
    store_words_t(row, xr, 0u, p.words_per_row, 1u, si.y);
}

// The blocks of row `row` of L by one thread (per-block scales).
fn block_thread(row: u32) {
    if (row >= p.rows) {
        return;
    }
    let block = p.block_div;
    let blocks = (p.cols + block - 1u) / block;
    let words_per_block = block / fmt_per_word();
    let xr = x_row(row);
    if (p.aux0 == 1u) {
        sums[row] = thread_row_pass(xr).total;
    }
    for (var blk = 0u; blk < blocks; blk++) {
        let end = min((blk + 1u) * block, p.cols);
        var m = 0u;
        for (var col = blk * block; col < end; col++) {
            m = max(m, amax_bits(load_x(xr.x + col * xr.y)));
        }
        let si = group_scale_of(bitcast<f32>(m));
        store_scale(row * p.row_mul + blk, si.x);
        let w_end = min((blk + 1u) * words_per_block, p.words_per_row);
        store_words_t(row, xr, blk * words_per_block, w_end, 1u, si.y);
    }
}

// Rows r0 .. r0 + 3 of L by one thread (p.rows a multiple of 4): `row_thread` for four adjacent
// rows at once, x read as vec4s (four adjacent values of a row of x); every row's maximum, sum
// order, scale, draws and codes are row_thread's.
fn row_thread4(r0: u32) {
    if (r0 >= p.rows) {
        return;
    }
    // Rows r0 .. r0 + 3 of L are adjacent in x (batched: within one matrix, batch_rows in fours).
    let xr = x_row(r0);
    let q = xr.y / 4u;
    let i0 = xr.x / 4u;
    let rp = row_pass4(q, i0);
    var inv = vec4<f32>();
    for (var j = 0u; j < 4u; j++) {
        let si = group_scale_of(bitcast<f32>(rp.m[j]));
        store_scale(r0 + j, si.x);
        inv[j] = si.y;
    }
    if (p.aux0 == 1u) {
        for (var j = 0u; j < 4u; j++) {
            sums[r0 + j] = rp.total[j];
        }
    }
    pack_words4(r0, q, i0, 0u, p.words_per_row, inv);
}

// Rows r0 .. r0 + 3 of L block by block (p.rows a multiple of 4): `block_thread` for four
// adjacent rows at once, x read as vec4s; every block's maximum, scale, draws and codes, and the
// row sums, are block_thread's.
fn block_thread4(r0: u32) {
    if (r0 >= p.rows) {
        return;
    }
    let block = p.block_div;
    let blocks = (p.cols + block - 1u) / block;
    let words_per_block = block / fmt_per_word();
    let xr = x_row(r0);
    let q = xr.y / 4u;
    let i0 = xr.x / 4u;
    // The row sums: one more read of the rows first, as block_thread.
    if (p.aux0 == 1u) {
        let total = row_pass4(q, i0).total;
        for (var j = 0u; j < 4u; j++) {
            sums[r0 + j] = total[j];
        }
    }
    for (var blk = 0u; blk < blocks; blk++) {
        let end = min((blk + 1u) * block, p.cols);
        var m = vec4<u32>();
        for (var col = blk * block; col < end; col++) {
            m = max(m, amax_bits4(load_x4(col * q + i0)));
        }
        var inv = vec4<f32>();
        for (var j = 0u; j < 4u; j++) {
            let si = group_scale_of(bitcast<f32>(m[j]));
            store_scale((r0 + j) * p.row_mul + blk, si.x);
            inv[j] = si.y;
        }
        pack_words4(r0, q, i0, blk * words_per_block, min((blk + 1u) * words_per_block, p.words_per_row), inv);
    }
}
