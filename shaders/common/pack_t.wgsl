// Packing of L = xᵀ, shared by the transposing quantizers (quantize_transpose,
// quantize_transpose_fused, quantize_both's transposed side), as gemm_tiled's loops are by the
// GEMMs: it reads the including kernel's `p: QuantParams` and x through its `load_x(i)` and
// `load_x4(i)` (x stored [cols, rows], L[row][col] = x[col * p.rows + row]; or, with
// p.batch_rows = R > 0, a stack of [cols, R] matrices whose transposes are L's rows in blocks of
// R: see x_row), and stores through put_code (common/stores.wgsl, or common/stores_both.wgsl).

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

// Codes 0 .. n of word `word` of rows r0 .. r0 + 3 of L (pack_words4's), with draw key `key`.
fn quad_word4(r0: u32, q: u32, i0: u32, word: u32, n: u32, inv: vec4<f32>, key: u32) -> vec4<u32> {
    let per_word = fmt_per_word();
    let b = fmt_bits();
    let stochastic = p.stochastic == 1u;
    var packed = vec4<u32>();
    for (var i = 0u; i < n; i++) {
        let col = word * per_word + i;
        let v = load_x4(col * q + i0);
        var r = vec4<u32>();
        if (stochastic) {
            let idx = r0 * p.cols + col;
            r = vec4<u32>(rng_draw24(key, idx), rng_draw24(key, idx + p.cols), rng_draw24(key, idx + 2u * p.cols),
                          rng_draw24(key, idx + 3u * p.cols));
        }
        packed.x |= fmt_quantize(v.x, inv.x, stochastic, r.x) << (i * b);
        packed.y |= fmt_quantize(v.y, inv.y, stochastic, r.y) << (i * b);
        packed.z |= fmt_quantize(v.z, inv.z, stochastic, r.z) << (i * b);
        packed.w |= fmt_quantize(v.w, inv.w, stochastic, r.w) << (i * b);
    }
    return packed;
}

// Words w0 .. w1 of rows r0 .. r0 + 3 of L (x read as vec4s: index col * q + i0 holds column col
// of the four rows), packed with inverse scales inv into every SMP sample. The four rows are
// written out component by component: with a loop over them, indexing the vectors by its counter,
// quantize_transpose's main_rows4 took 1.2-1.5x as long on llvmpipe (`kernel_report`, and the
// CNN's `+tensor` steps). Whole words (a loop over the format's codes per word, a constant) and
// the row's last, partial word (its codes within the row) are packed apart: a test of each code's
// column took about a tenth of quantize_both's launch on resnet20's dYᵀ (16 rows of 100,352
// columns, MNIST batch 128: 5.5-5.7 -> 5.2-5.4 ms).
fn pack_words4(r0: u32, q: u32, i0: u32, w0: u32, w1: u32, inv: vec4<f32>) {
    let per_word = fmt_per_word();
    let whole = max(min(w1, p.cols / per_word), w0);
    for (var smp = 0u; smp < p.samples; smp++) {
        let key = sample_key(smp);
        for (var word = w0; word < whole; word++) {
            store_quad_word(smp, r0, word, quad_word4(r0, q, i0, word, per_word, inv, key));
        }
        if (whole < w1) {
            store_quad_word(smp, r0, whole, quad_word4(r0, q, i0, whole, p.cols - whole * per_word, inv, key));
        }
    }
}

// Word `word` of rows r0 .. r0 + 3 of L in sample smp.
fn store_quad_word(smp: u32, r0: u32, word: u32, packed: vec4<u32>) {
    put_code(code_at(smp, r0, word), packed.x);
    put_code(code_at(smp, r0 + 1u, word), packed.y);
    put_code(code_at(smp, r0 + 2u, word), packed.z);
    put_code(code_at(smp, r0 + 3u, word), packed.w);
}

// Quads of L's rows (four adjacent rows, L's rows a multiple of 4), several a thread in the
// transposing quantizers' vec4 entries (rows_t.wgsl's row_quads and block_quads;
// quantize_transpose's main_rows4): a thread of several reads a run of QUAD_RUN columns of each of
// its quads in turn.

// The most quads a thread takes (the launchers' MAX_QUADS).
const MAX_QUADS: u32 = 8u;
// Columns of L a thread reads of each of its quads before the next run.
const QUAD_RUN: u32 = 64u;

// Rows of L from one thread's first row to the next thread's: p.quads quads (at least one).
fn quad_rows() -> u32 {
    return 4u * max(p.quads, 1u);
}

// The quads of the thread whose first row is r0.
fn quads_from(r0: u32) -> u32 {
    return min(quad_rows(), p.rows - r0) / 4u;
}

// Where the quad of rows r .. r + 3 lies in x read as vec4s: column col of L at col * q +
// quad_i0(r), q = x_row's step / 4 (rows of one quad are adjacent in x; batched, within one matrix:
// batch_rows a multiple of 4).
fn quad_i0(r: u32) -> u32 {
    return x_row(r).x / 4u;
}

// Words w0 .. w1 of the nq quads from row r0 (q = x_row's step / 4), quad v packed with inverse
// scales inv[v] into every SMP sample: runs of QUAD_RUN columns of each quad in turn, one quad's
// words in one run.
fn pack_quads(r0: u32, nq: u32, q: u32, w0: u32, w1: u32, inv: array<vec4<f32>, MAX_QUADS>) {
    let run_words = max(select(w1 - w0, QUAD_RUN / fmt_per_word(), nq > 1u), 1u);
    for (var ws = w0; ws < w1; ws += run_words) {
        let we = min(ws + run_words, w1);
        for (var v = 0u; v < nq; v++) {
            pack_words4(r0 + 4u * v, q, quad_i0(r0 + 4u * v), ws, we, inv[v]);
        }
    }
}
