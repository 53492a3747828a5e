// hadamard_quantize_transpose: the rotated weight-gradient operand in one launch. x is
// [cols, rows] (dY or X: the batch down its rows); R = x·D·H16 blockwise down x's columns (the
// random Hadamard transform of hadamard.wgsl with blocks of 16 along the batch, D the ±1
// diagonal of the sign key), and L = Rᵀ is quantized per block of p.block_div (a multiple of 16)
// along its rows. The same codes and scales, bit for bit, as hadamard (axis rows, block 16) ->
// quantize_transpose_fused (per block), without R written or read back (reference:
// src/reference/hadamard_quantize_transpose.rs): the butterflies are hadamard's, in its order,
// and each block's maximum, scale, draws and codes are the transposing quantizer's. NVFP4 reads
// the tensor's maximum (of R) from tensor_amax[0], which hadamard's maxima-only pass writes.
// With p.masked, x[i] reads as 0 unless mask[i] > 0 (ReLU's backward, before the signs, as
// hadamard reads it). With p.aux0 = 1 it also writes each row's sum of the unrotated L (x as
// read, masked) per chunk of col_sum's first level (common/chunk_sums.wgsl), partial sums
// [chunks, rows of L] that col_sum's `finish` adds in order (with one chunk, the sums): the bias
// gradient that a rotated dYᵀ otherwise leaves to col_sum's two launches, in one.
// Layout: L's rows a multiple of 4 (x's columns in fours, read as vec4s). Thread t < rp.blocks
// owns one block of four adjacent rows of L (one quantization block of p.block_div batch rows ×
// 4 adjacent columns of x). Runs of BLOCKS_ACROSS threads take as many adjacent blocks of the
// same four rows, and successive runs take adjacent columns of x: with 1 (a GPU) adjacent
// threads read a row of x in order; on a CPU adapter a run's lanes store to adjacent words of
// L's rows, where with 1 each lane stored to rows of its own. A thread rotates each 16 in
// registers (butterflies unrolled), takes the block's four maxima, computes the four scales and
// packs the rotated values it kept (an MX block's two rotations; a longer block's further ones
// are rotated again). Threads rp.blocks .. (with sums only) each sum four rows of L over one
// chunk. No workgroup memory or barriers; 64 threads a workgroup.
// With p.samples > 1 it writes that many stochastic samples of L stacked (SMP, common/samples.wgsl).
// Entry main_both also quantizes x itself, unrotated, as quantize_fused quantizes it per block
// (the forward's X, or dY for the input gradient, where the same format packs x along its rows and
// the rotated xᵀ for the weight gradient; bindings 9-12): workgroups rp.workgroups .. (past
// main's) take px.aux0 of x's blocks a thread in turn (one on a GPU; on a CPU adapter a row's,
// at least 12: lowbit::kernels::hadamard_quantize_transpose::CPU_BLOCKS_A_THREAD),
// each as quantize_fused's main_group_v4 does (common/row_groups.wgsl: the same maximum, scale,
// draws and codes), x read through the same mask; NVFP4's block scales read x's own maximum,
// amax_x[0] (hadamard's maxima pass writes it beside R's). So the bits of this launch and
// quantize_fused's, in one launch where they take two. Its stores go through put_code and
// put_scale (x's outputs); L's are written directly.
// Bindings: 0 pl (QuantParams of L), 1 x (read f32; as vec4s), 2 codes (read_write u32), 3 scales
// (read_write f32), 4 step (StepState), 5 sums (read_write f32, [chunks, rows of L]),
// 6 tensor_amax (read u32, NVFP4 only), 7 mask (read f32; as vec4s), 8 rp (RotateParams); entry
// main_both also 9 codes_x (read_write u32), 10 scales_x (read_write f32), 11 px (QuantParams of
// x's layout), 12 amax_x (read u32: x's maximum as f32 bits, NVFP4 only).

struct RotateParams {
    // Bit i set: element i of every 16 is negated (D; bit 0 of rng_draw(signs, i), drawn on the host).
    negate: u32,
    // Threads that quantize blocks: rows of L / 4 × blocks per row rounded up to a multiple of
    // BLOCKS_ACROSS (threads past a row's last block take none).
    blocks: u32,
    // The Hadamard's normalization, 1/sqrt(16).
    scale: f32,
    // Workgroups of entry main (its blocks, then its sums threads; entry main_both's workgroups of
    // x's blocks come after).
    workgroups: u32,
}

// Adjacent threads that take adjacent blocks of the same four rows of L (at least 1; 16 on a CPU
// adapter: lowbit::kernels::hadamard_quantize_transpose::CPU_BLOCKS_ACROSS).
override BLOCKS_ACROSS: u32 = 1u;

@group(0) @binding(0) var<uniform> pl: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;
@group(0) @binding(6) var<storage, read> tensor_amax: array<u32>;
@group(0) @binding(7) var<storage, read> mask: array<f32>;
@group(0) @binding(7) var<storage, read> mask4: array<vec4<f32>>;
@group(0) @binding(8) var<uniform> rp: RotateParams;
// Entry main_both only: x's own outputs and layout, and its maximum (NVFP4).
@group(0) @binding(9) var<storage, read_write> codes_x: array<u32>;
@group(0) @binding(10) var<storage, read_write> scales_x: array<f32>;
@group(0) @binding(11) var<uniform> px: QuantParams;
@group(0) @binding(12) var<storage, read> amax_x: array<u32>;

// The layout this invocation quantizes, which the shared units read: pl for L (every entry), px
// for x's own blocks (main_both).
var<private> p: QuantParams;

// Where the shared units store (common/samples.wgsl's store_scale, common/pack_rows.wgsl's
// store_words4): x's own outputs, the only ones they write here (L's codes and scales are stored
// by pack1 and store_scale_l).
fn put_code(i: u32, v: u32) {
    codes_x[i] = v;
}

fn put_scale(i: u32, v: f32) {
    scales_x[i] = v;
}

// L's group g scale, into every sample.
fn store_scale_l(g: u32, s: f32) {
    for (var j = 0u; j < p.samples; j++) {
        scales[j * p.n_groups + g] = s;
    }
}

// Row `row` of x (a column of L), x's columns 4·c4 .. 4·c4 + 3 (q = x's columns / 4), masked,
// negated where element i of a rotation is (D).
fn load_signed4(row: u32, q: u32, c4: u32, i: u32) -> vec4<f32> {
    let v = load_x4(row * q + c4);
    return select(v, -v, ((rp.negate >> i) & 1u) == 1u);
}

// Rows col0 .. col0 + 15 of x (L's columns col0 ..), columns 4·c4 .., rotated: hadamard's
// butterflies in its order (common/hadamard16.wgsl), then its scale.
fn rotated16(c4: u32, q: u32, col0: u32) -> array<vec4<f32>, 16> {
    let a = butterflies16(array<vec4<f32>, 16>(
        load_signed4(col0 + 0u, q, c4, 0u), load_signed4(col0 + 1u, q, c4, 1u), load_signed4(col0 + 2u, q, c4, 2u),
        load_signed4(col0 + 3u, q, c4, 3u), load_signed4(col0 + 4u, q, c4, 4u), load_signed4(col0 + 5u, q, c4, 5u),
        load_signed4(col0 + 6u, q, c4, 6u), load_signed4(col0 + 7u, q, c4, 7u), load_signed4(col0 + 8u, q, c4, 8u),
        load_signed4(col0 + 9u, q, c4, 9u), load_signed4(col0 + 10u, q, c4, 10u),
        load_signed4(col0 + 11u, q, c4, 11u), load_signed4(col0 + 12u, q, c4, 12u),
        load_signed4(col0 + 13u, q, c4, 13u), load_signed4(col0 + 14u, q, c4, 14u),
        load_signed4(col0 + 15u, q, c4, 15u)));
    let s = rp.scale;
    return array<vec4<f32>, 16>(a[0] * s, a[1] * s, a[2] * s, a[3] * s, a[4] * s, a[5] * s, a[6] * s, a[7] * s,
                                a[8] * s, a[9] * s, a[10] * s, a[11] * s, a[12] * s, a[13] * s, a[14] * s,
                                a[15] * s);
}

// The largest amax_bits of each of the four rows' 16 values.
fn max16(y: array<vec4<f32>, 16>) -> vec4<u32> {
    let m0 = max(max(amax_bits4(y[0]), amax_bits4(y[1])), max(amax_bits4(y[2]), amax_bits4(y[3])));
    let m1 = max(max(amax_bits4(y[4]), amax_bits4(y[5])), max(amax_bits4(y[6]), amax_bits4(y[7])));
    let m2 = max(max(amax_bits4(y[8]), amax_bits4(y[9])), max(amax_bits4(y[10]), amax_bits4(y[11])));
    let m3 = max(max(amax_bits4(y[12]), amax_bits4(y[13])), max(amax_bits4(y[14]), amax_bits4(y[15])));
    return max(max(m0, m1), max(m2, m3));
}

// Value i (of 16, column col0 + i of L) of rows r0 .. r0 + 3, coded with inverse scales inv into
// `packed` at its place in the word; the word stored when it is full. Draws at index row·cols +
// col, as the transposing quantizer's.
fn pack1(v: vec4<f32>, i: u32, r0: u32, col0: u32, inv: vec4<f32>, key: u32, smp: u32,
         packed: ptr<function, vec4<u32>>) {
    let per_word = fmt_per_word();
    let b = fmt_bits();
    let stochastic = p.stochastic == 1u;
    let col = col0 + i;
    var r = vec4<u32>();
    if (stochastic) {
        r = vec4<u32>(rng_draw24(key, r0 * p.cols + col), rng_draw24(key, (r0 + 1u) * p.cols + col),
                      rng_draw24(key, (r0 + 2u) * p.cols + col),
                      rng_draw24(key, (r0 + 3u) * p.cols + col));
    }
    let shift = (i % per_word) * b;
    let c = vec4<u32>(fmt_quantize(v.x, inv.x, stochastic, r.x), fmt_quantize(v.y, inv.y, stochastic, r.y),
                      fmt_quantize(v.z, inv.z, stochastic, r.z), fmt_quantize(v.w, inv.w, stochastic, r.w));
    *packed |= c << vec4<u32>(shift);
    if ((i + 1u) % per_word == 0u) {
        let word = col / per_word;
        codes[code_at(smp, r0, word)] = (*packed).x;
        codes[code_at(smp, r0 + 1u, word)] = (*packed).y;
        codes[code_at(smp, r0 + 2u, word)] = (*packed).z;
        codes[code_at(smp, r0 + 3u, word)] = (*packed).w;
        *packed = vec4<u32>();
    }
}

// The 16 rotated values y (columns col0 .. of rows r0 .. r0 + 3 of L) packed with inverse scales
// inv into every SMP sample. One sample's codes are packed outside any loop: in the loop over the
// samples where there was one, the launch ran slower on llvmpipe (MXFP8, kernel_report's
// hadamard_quantize_transpose line over 131072 × 144 values: 1.23-1.32 -> 1.70 GB/s without it).
fn pack16(r0: u32, col0: u32, y: array<vec4<f32>, 16>, inv: vec4<f32>) {
    if (p.samples == 1u) {
        pack16_sample(r0, col0, y, inv, 0u);
        return;
    }
    for (var smp = 0u; smp < p.samples; smp++) {
        pack16_sample(r0, col0, y, inv, smp);
    }
}

// pack16's SMP sample smp.
fn pack16_sample(r0: u32, col0: u32, y: array<vec4<f32>, 16>, inv: vec4<f32>, smp: u32) {
    let key = sample_key(smp);
    var w = vec4<u32>();
    pack1(y[0], 0u, r0, col0, inv, key, smp, &w);
    pack1(y[1], 1u, r0, col0, inv, key, smp, &w);
    pack1(y[2], 2u, r0, col0, inv, key, smp, &w);
    pack1(y[3], 3u, r0, col0, inv, key, smp, &w);
    pack1(y[4], 4u, r0, col0, inv, key, smp, &w);
    pack1(y[5], 5u, r0, col0, inv, key, smp, &w);
    pack1(y[6], 6u, r0, col0, inv, key, smp, &w);
    pack1(y[7], 7u, r0, col0, inv, key, smp, &w);
    pack1(y[8], 8u, r0, col0, inv, key, smp, &w);
    pack1(y[9], 9u, r0, col0, inv, key, smp, &w);
    pack1(y[10], 10u, r0, col0, inv, key, smp, &w);
    pack1(y[11], 11u, r0, col0, inv, key, smp, &w);
    pack1(y[12], 12u, r0, col0, inv, key, smp, &w);
    pack1(y[13], 13u, r0, col0, inv, key, smp, &w);
    pack1(y[14], 14u, r0, col0, inv, key, smp, &w);
    pack1(y[15], 15u, r0, col0, inv, key, smp, &w);
}

// Block blk of rows r0 .. r0 + 3 of L (r0 = 4·c4).
fn block4(c4: u32, blk: u32) {
    let q = p.rows / 4u;
    let r0 = c4 * 4u;
    let col0 = blk * p.block_div;
    let subs = (min(col0 + p.block_div, p.cols) - col0) / 16u;
    // The first two rotations (an MX block's 32 values) stay in registers from the maximum to the
    // packing; further ones (blocks of 48 and more) are rotated again.
    let y0 = rotated16(c4, q, col0);
    var y1 = y0;
    var m = max16(y0);
    if (subs > 1u) {
        y1 = rotated16(c4, q, col0 + 16u);
        m = max(m, max16(y1));
    }
    for (var s = 2u; s < subs; s++) {
        m = max(m, max16(rotated16(c4, q, col0 + s * 16u)));
    }
    var inv = vec4<f32>();
    for (var j = 0u; j < 4u; j++) {
        let si = group_scale_of(bitcast<f32>(m[j]));
        store_scale_l((r0 + j) * p.row_mul + blk, si.x);
        inv[j] = si.y;
    }
    pack16(r0, col0, y0, inv);
    if (subs > 1u) {
        pack16(r0, col0 + 16u, y1, inv);
    }
    for (var s = 2u; s < subs; s++) {
        pack16(r0, col0 + s * 16u, rotated16(c4, q, col0 + s * 16u), inv);
    }
}

// Thread t of entry main: a block of four rows of L (t < rp.blocks), else with sums four rows of L
// over one of col_sum's chunks of x's rows; threads past those do nothing.
fn rotated_thread(t: u32) {
    let q = p.rows / 4u;
    if (t < rp.blocks) {
        let run = t / BLOCKS_ACROSS;
        let blk = (run / q) * BLOCKS_ACROSS + t % BLOCKS_ACROSS;
        if (blk * p.block_div < p.cols) {
            block4(run % q, blk);
        }
        return;
    }
    // Sums: thread u takes four rows of L over one of col_sum's chunks of x's rows.
    let u = t - rp.blocks;
    let chunk_cols = max(p.aux1, 1u);
    let chunks = (p.cols + chunk_cols - 1u) / chunk_cols;
    if (p.aux0 == 1u && u < q * chunks) {
        let c4 = u % q;
        let c0 = (u / q) * chunk_cols;
        let s = chunk_pass4(q, c4, c0, min(c0 + chunk_cols, p.cols)).total;
        for (var j = 0u; j < 4u; j++) {
            sums[(u / q) * p.rows + c4 * 4u + j] = s[j];
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pl;
    rotated_thread(flat_workgroup(wg, nwg) * 64u + lid);
}

// main's workgroups, then (workgroups rp.workgroups ..) x's own blocks, px.aux0 a thread (blocks
// t·aux0 .. in the flat order of quantize_fused's main_group_v4, whatever the count), read as
// vec4s (x's rows are L's columns, a multiple of 4, and the block-scaled formats pack a multiple of
// 4 codes a word): main_group_v4's work with x's maximum from amax_x (NVFP4). A workgroup takes
// one side only, so p is the same for all its threads.
@compute @workgroup_size(64)
fn main_both(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let w = flat_workgroup(wg, nwg);
    if (w < rp.workgroups) {
        p = pl;
        rotated_thread(w * 64u + lid);
        return;
    }
    p = px;
    let per_row = (p.words_per_row + p.seg - 1u) / p.seg;
    let g0 = ((w - rp.workgroups) * 64u + lid) * p.aux0;
    for (var u = g0; u < min(g0 + p.aux0, p.rows * per_row); u++) {
        // (Only NVFP4 reads x's maximum; the launcher binds a stand-in for the other formats.) Not
        // store_group4's short groups read once (common/row_groups.wgsl): in this loop over a
        // thread's blocks they made resnet20's stage-1 launches slower on llvmpipe, not faster.
        let g = group_span(u, per_row, p.seg);
        store_group4_with(g, fmt_group_scale(bitcast<f32>(group_amax4(g)), bitcast<f32>(amax_x[0])));
    }
}
