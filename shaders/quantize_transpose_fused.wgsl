// quantize_transpose_fused: the one-pass transposing quantizer for per-row (entry `main`) and
// per-block (entry `main_block`) scales of L = xᵀ (what the backward GEMMs need: dYᵀ and Xᵀ
// packed along the batch, Wᵀ along the outputs). x is [cols, rows] row-major; L is [rows, cols],
// packed along its rows. Same output as absmax (transposed) -> quantize_transpose, bit
// for bit (reference: src/reference/quantize_transpose_fused.rs): the maximum is order-free, and
// the groups, scales and RNG indices are those of L.
// With aux0 = 1 it also writes each row's sum of L, sums[row] = Σ_c x[c][row] (dYᵀ's rows: the
// bias gradient), in col_sum's order exactly: the columns of L cut into chunks of aux1 (=
// col_sum's chunk_rows), per chunk 8 lanes each summing every 8th element in order, the lanes
// added in order, then the chunks in order.
// Layout: a workgroup owns 32 consecutive rows of L (columns of x) with 8 threads (lanes) each:
// per chunk, lane ly reduces elements ly, ly + 8, ... of its row (32 consecutive floats of x per
// step: the reads coalesce), the lanes meet in workgroup memory, one thread per row folds them;
// then it computes (s, 1/s) and the eight lanes pack words ly, ly + 8, ... of their row (x read a
// second time, from the cache for training sizes). Workgroups: ceil(rows / 32).
// `main_block`: the same 32 rows × 8 lanes, one block of block_div columns of L at a time: the
// lanes reduce the block, one thread per row computes its scale, the lanes pack the block's words;
// with sums, one more read of each row first, summed as `main` sums it (the block-scaled formats'
// dYᵀ: the bias gradient without col_sum's launches).
// Entries `main_thread` and `main_block_thread` (CPU adapters, where a barrier splits the shader
// and costs more than the reduction it orders): the same outputs from one thread per row of L,
// 8 per workgroup (so that L's few rows spread over a CPU's cores), no workgroup memory; the row
// sums keep col_sum's order (eight interleaved partial sums per chunk, added in lane order, then
// the chunks in order).
// `main_thread_v4` (per row, rows of L a multiple of 4) and `main_block_thread_v4` (per block):
// p.quads quads of four adjacent rows of L per thread (common/rows_t.wgsl's row_quads and
// block_quads), x read as vec4s (binding 1 as x4), the same bits.
// With p.batch_rows = R > 0, x is a stack of [cols, R] matrices and L their transposes one under
// the other (attention's batched operands, one launch instead of a transpose and a quantizer):
// only the addresses in x change (x_row, common/pack_t.wgsl); groups, scales and draws are L's.
// With p.samples > 1 every entry writes that many stochastic samples of L stacked (SMP,
// common/samples.wgsl): the maxima and sums taken once, each sample packed with its own draws.
// Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED: no loop counter of naga's): every loop
// here and in the included units steps its counter by a positive constant (1, 4, LANES) or by
// chunk_cols, run or run_words (at least 1), towards a bound fixed before the loop (a params field,
// the format's codes per word, 24 in recip_rne, a thread's quads); the bounds are buffer lengths,
// far below u32's end, so every loop ends.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 codes (read_write u32), 3 scales
// (read_write f32, one per group of L per sample), 4 step (StepState), 5 sums (read_write f32,
// rows of L), 6 tensor_amax (read u32: the tensor's maximum as f32 bits, NVFP4 only), 7 mask
// (read f32: with p.masked, x[i] counts as 0 unless mask[i] > 0, ReLU's backward).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// x again, as vec4s (the _v4 entries only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;
@group(0) @binding(6) var<storage, read> tensor_amax: array<u32>;
@group(0) @binding(7) var<storage, read> mask: array<f32>;
// mask again, as vec4s (the _v4 entries only).
@group(0) @binding(7) var<storage, read> mask4: array<vec4<f32>>;

const ROWS: u32 = 32u;
const LANES: u32 = 8u;

var<workgroup> red: array<u32, 256>;
var<workgroup> acc: array<f32, 256>;
var<workgroup> row_inv: array<f32, 32>;

// The largest of the eight lanes' partial maxima of row lx (red[l * ROWS + lx]).
fn lanes_max(lx: u32) -> u32 {
    var mm = red[lx];
    for (var l = 1u; l < LANES; l++) {
        mm = max(mm, red[l * ROWS + lx]);
    }
    return mm;
}

// The tree entries' read of row `row` of L (xr = x_row(row); lane ly of its eight): the lane's
// maximum, and with sums (p.aux0 = 1) the row's sum in col_sum's order, complete in lane 0
// (ly == 0). Every thread of the workgroup calls it (its barriers), valid row or not.
fn tree_row_pass(xr: vec2<u32>, valid: bool, lid: u32) -> RowPass {
    let lx = lid % ROWS;
    let ly = lid / ROWS;
    let with_sums = p.aux0 == 1u;
    let chunk_cols = select(p.cols, max(p.aux1, 1u), with_sums);
    let chunks = (p.cols + chunk_cols - 1u) / chunk_cols;
    var m = 0u;
    var total = 0.0;
    // Uniform loop (chunks is the same for every thread): each pass ends with its barriers.
    for (var c = 0u; c < chunks; c++) {
        let end = min((c + 1u) * chunk_cols, p.cols);
        var s = 0.0;
        if (valid) {
            for (var col = c * chunk_cols + ly; col < end; col += LANES) {
                let v = load_x(xr.x + col * xr.y);
                m = max(m, amax_bits(v));
                s += v;
            }
        }
        if (with_sums) {
            acc[lid] = s;
            workgroupBarrier();
            if (ly == 0u) {
                var t = acc[lx];
                for (var l = 1u; l < LANES; l++) {
                    t += acc[l * ROWS + lx];
                }
                total = select(total + t, t, c == 0u);
            }
            workgroupBarrier();
        }
    }
    return RowPass(m, total);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lx = lid % ROWS;
    let ly = lid / ROWS;
    let row = flat_workgroup(wg, nwg) * ROWS + lx;
    let valid = row < p.rows;
    let xr = x_row(row);
    let rp = tree_row_pass(xr, valid, lid);
    red[lid] = rp.m;
    workgroupBarrier();
    if (ly == 0u) {
        let si = group_scale_of(bitcast<f32>(lanes_max(lx)));
        row_inv[lx] = si.y;
        if (valid) {
            store_scale(row, si.x);
            if (p.aux0 == 1u) {
                sums[row] = rp.total;
            }
        }
    }
    workgroupBarrier();
    if (!valid) {
        return;
    }
    store_words_t(row, xr, ly, p.words_per_row, LANES, row_inv[lx]);
}

@compute @workgroup_size(256)
fn main_block(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lx = lid % ROWS;
    let ly = lid / ROWS;
    let row = flat_workgroup(wg, nwg) * ROWS + lx;
    let valid = row < p.rows;
    let block = p.block_div;
    let blocks = (p.cols + block - 1u) / block;
    let words_per_block = block / fmt_per_word();
    let xr = x_row(row);
    // The row sums: one more read of the row, in col_sum's order (uniform: p.aux0 is).
    if (p.aux0 == 1u) {
        let rp = tree_row_pass(xr, valid, lid);
        if (ly == 0u && valid) {
            sums[row] = rp.total;
        }
    }
    // Uniform loop (blocks is the same for every thread), two barriers per block.
    for (var blk = 0u; blk < blocks; blk++) {
        let end = min((blk + 1u) * block, p.cols);
        var m = 0u;
        if (valid) {
            for (var col = blk * block + ly; col < end; col += LANES) {
                m = max(m, amax_bits(load_x(xr.x + col * xr.y)));
            }
        }
        red[lid] = m;
        workgroupBarrier();
        if (ly == 0u) {
            let si = group_scale_of(bitcast<f32>(lanes_max(lx)));
            row_inv[lx] = si.y;
            if (valid) {
                store_scale(row * p.row_mul + blk, si.x);
            }
        }
        workgroupBarrier();
        if (valid) {
            let w_end = min((blk + 1u) * words_per_block, p.words_per_row);
            store_words_t(row, xr, blk * words_per_block + ly, w_end, LANES, row_inv[lx]);
        }
    }
}

// 8 rows per workgroup: one 8-lane SIMD piece each, so that L's few rows (a convolution's
// channels) spread over every core of a CPU adapter.
@compute @workgroup_size(8)
fn main_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    row_thread(flat_workgroup(wg, nwg) * 8u + lid);
}

@compute @workgroup_size(8)
fn main_block_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    block_thread(flat_workgroup(wg, nwg) * 8u + lid);
}

// p.quads quads of L's rows per thread, 8 threads per workgroup.
@compute @workgroup_size(8)
fn main_block_thread_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    block_quads((flat_workgroup(wg, nwg) * 8u + lid) * quad_rows());
}

// p.quads quads of L's rows per thread, 8 threads per workgroup.
@compute @workgroup_size(8)
fn main_thread_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    row_quads((flat_workgroup(wg, nwg) * 8u + lid) * quad_rows());
}
