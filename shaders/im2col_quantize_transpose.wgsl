// im2col_quantize_transpose: the transposing one-pass quantizer of a convolution's unfolded input,
// read from the input itself: L = colsᵀ ([kh·kw·c, batch·oh·ow], cols what im2col writes) packed
// along its rows with per-row or per-block scales, bit for bit what quantize_transpose_fused
// writes from cols (the weight gradient's Xᵀ), without cols being read (or written at all where
// nothing else needs it). Row r of L is tap (ky, kx) of channel ch, r = (ky·kw + kx)·c + ch; its
// column j the output pixel (b, oy, ox), j = (b·oh + oy)·ow + ox, holding
// x[b][oy·stride + ky − pad][ox·stride + kx − pad][ch], or 0 in the padding.
// Layout (CPU adapters, as quantize_transpose_fused's per-thread entries): one thread per row of L
// (entry main) or per four adjacent rows (main_v4: channels a multiple of 4, so the four rows are
// one tap's channels ch .. ch + 3 and read as one vec4), 8 threads per workgroup, which walk the
// same columns in step. Per group (the row, or each block of p.block_div columns): its maximum
// over the pixels inside the image (the padding's zeros leave a maximum unchanged), one run of
// pixels per output row; the group's scale (fmt_scale_for_amax, as the two-pass chain's); then its
// values packed in column order (common/pack_stream.wgsl), per output row its zeros, its run of x
// and its zeros, so every value, draw index (row·cols + col) and code is the one
// quantize_transpose_fused forms.
// Formats without a tensor-wide scale (not NVFP4); SMP's stacked samples as the one-pass
// quantizers store them (common/samples.wgsl).
// Indices: rows past p.rows return (the piece entries' threads past the pieces, whose amax
// indices, thread k·rows + r, stay below the rows × pieces of the launcher's scratch); a run's
// first x index is formed from y and x clamped into the image (inside it, or an empty run's,
// unread), each step along a run stays inside, and the padding's zeros are never loaded, so every
// load is in range (the launcher checks x's length against the geometry, and codes and scales
// against the layout).
// Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED: no loop counter of naga's): every loop
// here and in the included units steps its counter by a positive constant (1) or by a run of at
// least one column (the pixels left in the output row, or in the group, both at least 1 while the
// loop runs; main_rows' pieces by lanes · p.aux0 columns, at least one), towards a bound
// fixed before the loop (a params field, the group's end, the format's codes per word, 24 in
// recip_rne); the bounds are buffer lengths, far below u32's end, so every loop ends.
// The rows' code is common/unfold_t.wgsl's (shared with im2col_quantize's main_both_v4).
// A GPU's layouts take entries whose neighbouring threads work on neighbouring rows of L (one
// tap's neighbouring channels, so they load neighbouring values of x), each thread a piece of a
// row: per block, main_blocks (a thread per block, one launch); per row, main_rows where a row
// is short enough for one workgroup's lanes (its maximum met in workgroup memory, one launch),
// else main_maxima (each workgroup's lanes of a row met in workgroup memory, then one atomicMax
// into amax, which the launcher clears) then main_tiles (packing with their scales,
// common/maxima.wgsl). The same codes and scales as the CPU entries.
// Reference: src/reference/im2col_quantize_transpose.rs (im2col, then quantize_transpose_fused).
// Bindings: 0 params (QuantParams of L), 1 x (read f32, NHWC), 2 codes (read_write u32),
// 3 scales (read_write f32), 4 step (StepState), 5 conv (ConvParams), 6 the group maxima
// (read_write u32 bits, n_groups: a stand-in for the CPU entries).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// x again, as vec4s (main_v4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<uniform> conv: ConvParams;
// The group maxima: main_maxima's view (atomics) and main_tiles' (read through maxima.wgsl); one
// view an entry.
@group(0) @binding(6) var<storage, read_write> amax_acc: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> amax: array<u32>;

// The image's values for the shared unit (common/unfold_t.wgsl).
fn unfold_src(i: u32) -> f32 {
    return x[i];
}

fn unfold_src4(i: u32) -> vec4<f32> {
    return x4[i];
}

// tap_thread4's group maxima: read from x as the group is.
fn tap_group_max4(t: Tap, c0: u32, c1: u32) -> vec4<u32> {
    return group_max4(t, c0, c1);
}

// 8 rows per workgroup: one 8-lane SIMD piece each, so that L's few rows spread over a CPU's cores.
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tap_thread(flat_workgroup(wg, nwg) * 8u + lid);
}

// Four rows per thread, 8 threads per workgroup.
@compute @workgroup_size(8)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tap_thread4((flat_workgroup(wg, nwg) * 8u + lid) * 4u);
}

// Entries main_piece_maxima and main_pieces (CPU adapters, per-row scales, L's rows few and long:
// Im2colQuantizeTranspose::splits_rows, a first convolution's nine or 25 taps of one channel): a
// thread per piece of p.aux0 columns of a row (a multiple of the codes per word), piece k of row r
// thread k·rows + r, so that a workgroup's 8 threads take neighbouring taps of one piece, which
// read neighbouring pixels. Where a thread per row put 25 rows into 4 workgroups (the last of one
// row, as long as the others: two rounds of a 2-core CPU's), the pieces spread evenly over the
// cores. main_piece_maxima writes each piece's maximum (amax_bits, 0 for the padding's zeros)
// into amax[thread]; main_pieces takes its row's from its pieces' (a maximum in any grouping, so
// `main`'s), forms the scale (the row's first piece stores it) and packs its piece as `main`
// packs those columns: the same codes and scales. Threads past the pieces (their first column
// past the row's end) return.
@compute @workgroup_size(8)
fn main_piece_maxima(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = piece_of(wg, nwg, lid);
    if (t.z < p.cols) {
        amax[t.x] = group_max(tap_of(t.y), t.z, min(t.z + p.aux0, p.cols));
    }
}

@compute @workgroup_size(8)
fn main_pieces(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = piece_of(wg, nwg, lid);
    let row = t.y;
    let c0 = t.z;
    if (c0 >= p.cols) {
        return;
    }
    let pieces = (p.cols + p.aux0 - 1u) / p.aux0;
    var m = 0u;
    for (var k = 0u; k < pieces; k++) {
        m = max(m, amax[k * p.rows + row]);
    }
    let si = fmt_scale_for_amax(bitcast<f32>(m));
    if (c0 == 0u) {
        store_scale(row * p.row_mul, si.x);
    }
    pack_part(row, tap_of(row), c0, min(c0 + p.aux0, p.cols), si.y);
}

// A piece thread's index, row and first column (p.cols or more past the pieces).
fn piece_of(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec3<u32> {
    let i = flat_workgroup(wg, nwg) * 8u + lid;
    return vec3<u32>(i, i % p.rows, i / p.rows * p.aux0);
}

// Columns [c0, c1) of tap t's row `row` (c0 the first of a word), every sample, with inverse scale
// inv.
fn pack_part(row: u32, t: Tap, c0: u32, c1: u32, inv: f32) {
    for (var smp = 0u; smp < p.samples; smp++) {
        pack_start(row, smp, c0, vec4<f32>(inv));
        pack_cols(t, c0, c1);
        pack_flush();
    }
}

// The GPU entries' pieces: piece k of a row is its columns k·p.aux0 .. up to p.aux0 more (a
// multiple of the codes per word, so each starts a word).

// GPU layouts, per block, one launch: piece k of a row is its block k, its maximum and scale
// taken by the thread that packs it.
@compute @workgroup_size(256)
fn main_blocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rp = row_tile_thread(p, wg, nwg, lid);
    let c0 = rp.y * p.aux0;
    if (rp.x >= p.rows || c0 >= p.cols) {
        return;
    }
    let t = tap_of(rp.x);
    let c1 = min(c0 + p.aux0, p.cols);
    let si = fmt_scale_for_amax(bitcast<f32>(group_max(t, c0, c1)));
    store_scale(group_of(p, rp.x, c0), si.x);
    pack_part(rp.x, t, c0, c1, si.y);
}

// GPU layouts, per row, rows of L short enough for one workgroup (p.seg rows a workgroup, the
// launcher's): WG / p.seg lanes a row, lane j the pieces j, j + lanes, …; the lanes' maxima met
// in workgroup memory (lanes_max), then each lane packs its pieces, the row's first lane storing
// the scale.
@compute @workgroup_size(256)
fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wg, nwg) * p.seg + lid % p.seg;
    let lanes = WG / p.seg;
    let lane = lid / p.seg;
    let piece = p.aux0;
    let valid = row < p.rows;
    var t: Tap;
    var m = 0u;
    if (valid) {
        t = tap_of(row);
        for (var c0 = lane * piece; c0 < p.cols; c0 += lanes * piece) {
            m = max(m, group_max(t, c0, min(c0 + piece, p.cols)));
        }
    }
    m = lanes_max(lid, p.seg, m);
    if (!valid) {
        return;
    }
    let si = fmt_scale_for_amax(bitcast<f32>(m));
    if (lane == 0u) {
        store_scale(row * p.row_mul, si.x);
    }
    for (var c0 = lane * piece; c0 < p.cols; c0 += lanes * piece) {
        pack_part(row, t, c0, min(c0 + piece, p.cols), si.y);
    }
}

// GPU layouts, per row, long rows, first launch: the maxima of a row's pieces in the workgroup
// (its WG / p.seg lanes) are met in workgroup memory (lanes_max), and the row's first lane takes
// theirs to the row's slot (0, for the padding's or for zeros, left out).
@compute @workgroup_size(256)
fn main_maxima(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rp = row_tile_thread(p, wg, nwg, lid);
    let c0 = rp.y * p.aux0;
    var m = 0u;
    if (rp.x < p.rows && c0 < p.cols) {
        m = group_max(tap_of(rp.x), c0, min(c0 + p.aux0, p.cols));
    }
    m = lanes_max(lid, p.seg, m);
    if (lid >= p.seg || rp.x >= p.rows) {
        return;
    }
    if (m != 0u) {
        atomicMax(&amax_acc[group_of(p, rp.x, c0)], m);
    }
}

// GPU layouts, per row, long rows, second launch: each piece packed from x with the row's inverse
// scale (from main_maxima's maximum; the thread at the row's first word stores the scale).
@compute @workgroup_size(256)
fn main_tiles(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rp = row_tile_thread(p, wg, nwg, lid);
    let c0 = rp.y * p.aux0;
    if (rp.x >= p.rows || c0 >= p.cols) {
        return;
    }
    let c1 = min(c0 + p.aux0, p.cols);
    pack_part(rp.x, tap_of(rp.x), c0, c1, inv_scale_at(rp.x, c0));
}
