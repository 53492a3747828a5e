// A row of L = xᵀ by one thread, shared by the transposing one-pass quantizers that run a thread
// per row (quantize_transpose_fused's per-thread entries, quantize_both's transposed side): the
// row's maximum and, with p.aux0 = 1, its sum in col_sum's order (eight interleaved partial sums
// per chunk of p.aux1 columns, added in lane order, then the chunks in order), its scale or its
// blocks' scales, and its words packed into every SMP sample. It reads the including kernel's `p:
// QuantParams` (L's layout), x through load_x and load_x4 (one_pass.wgsl; quads of four adjacent
// rows of L per thread in row_quads and block_quads, each chunk's sums chunk_sums.wgsl's
// chunk_pass4), x_row, pack_words4 and the quads' units (quads_from, quad_i0, pack_quads;
// pack_t.wgsl), writes its `sums` binding, and stores through put_code and put_scale
// (common/stores.wgsl, or common/stores_both.wgsl) and group_scale_of (group_scale.wgsl, or
// quantize_both's own).

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

// Quads of L's rows (four adjacent rows, p.rows a multiple of 4) by one thread, p.quads of them
// (fewer at L's end): `row_thread` and `block_thread` for each of the quad's rows at once, x read
// as vec4s (four adjacent values of a row of x). A quad's values of one column of L lie a whole
// row of x from the next column's (16 KB at 4096 wide), so a thread of one quad reads 16 bytes of
// a row of x and moves on; a thread of several reads a run of QUAD_RUN columns of each of its
// quads in turn, so the rows of x the run reaches are read again, further along, by its next
// quads while they are fresh (lavapipe, int8 per row, L of 4096×4096: 30–36 ms with eight quads
// a thread against 57–66 with one). Every row's maximum, sum order, scale, draws and codes are
// row_thread's (block_thread's): a maximum in any order, each sum's chunks in order, each draw
// indexed by its row and column.

// The maxima (amax_bits) of a quad's four rows over columns c0 .. end of L (i0 = quad_i0 of the
// quad, q = x_row's step / 4).
fn quad_amax(q: u32, i0: u32, c0: u32, end: u32) -> vec4<u32> {
    var m = vec4<u32>();
    for (var col = c0; col < end; col++) {
        m = max(m, amax_bits4(load_x4(col * q + i0)));
    }
    return m;
}

// The maxima (amax_bits) and, with sums (p.aux0 = 1), the sums in col_sum's order of nq quads
// from row r0.
struct QuadsPass {
    m: array<vec4<u32>, MAX_QUADS>,
    total: array<vec4<f32>, MAX_QUADS>,
}

fn quads_pass(r0: u32, nq: u32, q: u32) -> QuadsPass {
    var r: QuadsPass;
    if (p.aux0 != 1u) {
        // The maxima alone: plain loops over each run (the chunked one below costs twice as much
        // on lavapipe); one quad's row in one run.
        let run = max(select(p.cols, QUAD_RUN, nq > 1u), 1u);
        for (var c0 = 0u; c0 < p.cols; c0 += run) {
            let end = min(c0 + run, p.cols);
            for (var v = 0u; v < nq; v++) {
                r.m[v] = max(r.m[v], quad_amax(q, quad_i0(r0 + 4u * v), c0, end));
            }
        }
        return r;
    }
    // The chunks added in order, as col_sum's second level adds them; a chunk is a run.
    let chunk_cols = max(p.aux1, 1u);
    for (var c0 = 0u; c0 < p.cols; c0 += chunk_cols) {
        let end = min(c0 + chunk_cols, p.cols);
        for (var v = 0u; v < nq; v++) {
            let c = chunk_pass4(q, quad_i0(r0 + 4u * v), c0, end);
            r.m[v] = max(r.m[v], c.m);
            r.total[v] = select(r.total[v] + c.total, c.total, c0 == 0u);
        }
    }
    return r;
}

// The row sums of nq quads from row r0, into `sums`.
fn store_quad_sums(r0: u32, nq: u32, rp: QuadsPass) {
    for (var v = 0u; v < nq; v++) {
        for (var j = 0u; j < 4u; j++) {
            sums[r0 + 4u * v + j] = rp.total[v][j];
        }
    }
}

// The quads from row r0, per-row scales.
fn row_quads(r0: u32) {
    if (r0 >= p.rows) {
        return;
    }
    let nq = quads_from(r0);
    let q = x_row(r0).y / 4u;
    let rp = quads_pass(r0, nq, q);
    var inv: array<vec4<f32>, MAX_QUADS>;
    for (var v = 0u; v < nq; v++) {
        for (var j = 0u; j < 4u; j++) {
            let si = group_scale_of(bitcast<f32>(rp.m[v][j]));
            store_scale(r0 + 4u * v + j, si.x);
            inv[v][j] = si.y;
        }
    }
    if (p.aux0 == 1u) {
        store_quad_sums(r0, nq, rp);
    }
    pack_quads(r0, nq, q, 0u, p.words_per_row, inv);
}

// The quads from row r0 block by block (per-block scales): each block of each quad in turn.
fn block_quads(r0: u32) {
    if (r0 >= p.rows) {
        return;
    }
    let nq = quads_from(r0);
    let block = p.block_div;
    let blocks = (p.cols + block - 1u) / block;
    let words_per_block = block / fmt_per_word();
    let q = x_row(r0).y / 4u;
    // The row sums: one more read of the rows first, as block_thread.
    if (p.aux0 == 1u) {
        store_quad_sums(r0, nq, quads_pass(r0, nq, q));
    }
    for (var blk = 0u; blk < blocks; blk++) {
        let end = min((blk + 1u) * block, p.cols);
        for (var v = 0u; v < nq; v++) {
            let r = r0 + 4u * v;
            let i0 = quad_i0(r);
            let m = quad_amax(q, i0, blk * block, end);
            var inv = vec4<f32>();
            for (var j = 0u; j < 4u; j++) {
                let si = group_scale_of(bitcast<f32>(m[j]));
                store_scale((r + j) * p.row_mul + blk, si.x);
                inv[j] = si.y;
            }
            pack_words4(r, q, i0, blk * words_per_block, min((blk + 1u) * words_per_block, p.words_per_row), inv);
        }
    }
}
