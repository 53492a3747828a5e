// A stream packer, shared by the quantizers that unfold as they pack (im2col_quantize's codes
// entries, im2col_quantize_transpose): a row's values arrive in column order from an unfold, not
// from memory, and are packed as pack_word and pack_word_t pack them (code shifts, draw index
// row·cols + col), each word stored once full and the row's last, partial word by pack_flush.
// pack_push4 / pack_flush4 pack four rows at once (rows pk_row .. pk_row + 3: value j of each
// push is row pk_row + j's, with inverse scale pk_inv[j]). It reads the including kernel's
// `p: QuantParams` and stores through its put_code (common/stores.wgsl, or common/stores_both.wgsl)
// at samples.wgsl's code_at.

// The state of the row (rows) being packed: the row (the first of the four), the sample and its
// draw key, the inverse scale(s), the next column, the word being filled, its index and the
// position in it.
var<private> pk_row: u32;
var<private> pk_sample: u32;
var<private> pk_key: u32;
var<private> pk_inv: vec4<f32>;
var<private> pk_col: u32;
var<private> pk_word: u32;
var<private> pk_i: u32;
var<private> pk_acc: u32;
var<private> pk_acc4: vec4<u32>;

// Starts sample smp of row `row` (rows row .. row + 3 for pack_push4) at column c0, the first
// of a word.
fn pack_start(row: u32, smp: u32, c0: u32, inv: vec4<f32>) {
    pk_row = row;
    pk_sample = smp;
    pk_key = sample_key(smp);
    pk_inv = inv;
    pk_col = c0;
    pk_word = c0 / fmt_per_word();
    pk_i = 0u;
    pk_acc = 0u;
    pk_acc4 = vec4<u32>();
}

// Column pk_col of the row, packed with inverse scale pk_inv.x.
fn pack_push(v: f32) {
    let stochastic = p.stochastic == 1u;
    var r = 0u;
    if (stochastic) {
        r = rng_draw24(pk_key, pk_row * p.cols + pk_col);
    }
    pk_acc |= fmt_quantize(v, pk_inv.x, stochastic, r) << (pk_i * fmt_bits());
    pk_col++;
    pk_i++;
    if (pk_i == fmt_per_word()) {
        put_code(code_at(pk_sample, pk_row, pk_word), pk_acc);
        pk_word++;
        pk_i = 0u;
        pk_acc = 0u;
    }
}

// Columns pk_col .. pk_col + 3 of the row: pack_push of each in turn. Where the format's codes
// per word are a multiple of 4 (a vec4 starting on a word's quarter, half or start never
// straddles two words) the four codes go into the word at once: the same codes, shifts and draw
// indices, with the word's bookkeeping (and its test for a full word) once per four values.
fn pack_push_vec4(v: vec4<f32>) {
    let per_word = fmt_per_word();
    if (per_word % 4u != 0u) {
        pack_push(v.x);
        pack_push(v.y);
        pack_push(v.z);
        pack_push(v.w);
        return;
    }
    let i = pk_row * p.cols + pk_col;
    pk_acc |= codes4(v, pk_inv.x, p.stochastic == 1u, pk_key, i, pk_i * fmt_bits());
    pk_col += 4u;
    pk_i += 4u;
    if (pk_i == per_word) {
        put_code(code_at(pk_sample, pk_row, pk_word), pk_acc);
        pk_word++;
        pk_i = 0u;
        pk_acc = 0u;
    }
}

fn pack_flush() {
    if (pk_i > 0u) {
        put_code(code_at(pk_sample, pk_row, pk_word), pk_acc);
    }
}

// Column pk_col of rows pk_row .. pk_row + 3: v[j] of row pk_row + j.
fn pack_push4(v: vec4<f32>) {
    let stochastic = p.stochastic == 1u;
    for (var j = 0u; j < 4u; j++) {
        var r = 0u;
        if (stochastic) {
            r = rng_draw24(pk_key, (pk_row + j) * p.cols + pk_col);
        }
        pk_acc4[j] |= fmt_quantize(v[j], pk_inv[j], stochastic, r) << (pk_i * fmt_bits());
    }
    pk_col++;
    pk_i++;
    if (pk_i == fmt_per_word()) {
        pack_store4();
        pk_word++;
        pk_i = 0u;
        pk_acc4 = vec4<u32>();
    }
}

fn pack_store4() {
    for (var j = 0u; j < 4u; j++) {
        put_code(code_at(pk_sample, pk_row + j, pk_word), pk_acc4[j]);
    }
}

fn pack_flush4() {
    if (pk_i > 0u) {
        pack_store4();
    }
}
