// quantize_both: a tensor x ([rows, cols]) and L = xᵀ quantized in one launch, a thread per group,
// no workgroup memory or barriers (but entry main_given, below): a weight's W and Wᵀ, a dense
// layer's X and Xᵀ, or a layer's gradient dY (for dX = dY·W) and dYᵀ (for dW = dYᵀ·X) with ReLU's
// mask read inside, the bias gradient (L's row sums in col_sum's order) and SMP's stacked samples.
// L's workgroups quantize L's rows as quantize_transpose_fused's per-thread entries do
// (common/rows_t.wgsl), x's workgroups (L's spread evenly among them: both_workgroup) x's per-row
// or per-block groups as quantize_fused's per-thread entries do (common/row_groups.wgsl): every
// maximum, scale, draw, code and sum is the one those two kernels form, each side with its own
// params (rounding, stream, samples), so both outputs are theirs bit for bit, and x is read by one
// launch instead of two. The shared units read `p` and store through put_code / put_scale: here p
// is a private copy of the side's params (px or pt), and common/stores_both.wgsl picks the side's
// outputs.
// Formats without a tensor-wide scale (not NVFP4: quantize_fused's main_whole_both). Entry
// `main` reads x as f32s; `main_v4` (CPU adapters, where every load runs lane by lane, so a vec4
// costs about what one f32 does; x's rows a multiple of 4 values and the format's codes per word
// too) reads x and the mask only as vec4s, x's groups as quantize_fused's main_group_v4 and
// main_row_short_v4 do (store_group4) and quads of four adjacent rows of L per thread (pt.quads
// of them) as quantize_transpose_fused's main_thread_v4 and main_block_thread_v4 do (row_quads,
// block_quads): the same bits. (One entry never reaches both views of a binding.)
// Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED: no loop counter of naga's): every loop
// here and in the included units steps its counter by a positive constant (1, 8) or by a chunk or
// run of at least one column or word, towards a bound fixed before the loop (a params field or
// pipeline constant, the format's codes per word, 24 in recip_rne, the chunks of L's columns, a
// thread's quads); the bounds are buffer lengths, far below u32's end, so every loop ends.
// Entry `main_given` (a GPU's layouts; below) takes L's group maxima given instead of reducing
// them, as quantize_transpose does, and x's groups in teams of threads, as quantize_fused does on
// a GPU.
// Reference: src/reference/quantize_both.rs (quantize_fused and quantize_transpose_fused's;
// main_given's: quantize_fused and quantize_transpose's from the maxima).
// Bindings: 0 px (QuantParams of x's layout), 1 x (read f32), 2 codes, 3 scales (read_write:
// x's, SMP samples stacked), 4 step (StepState), 5 mask (read f32: with p.masked, x[i] counts as 0
// unless mask[i] > 0), 6 codes_t, 7 scales_t (read_write: L's), 8 pt (QuantParams of L's layout;
// pt.aux0 = 1: L's row sums asked, pt.aux1 col_sum's chunk_rows), 9 sums (read_write f32, L's
// rows), 10 parts (read_write: L's maxima and sums per chunk, entries main_parts_v4 and main_v4;
// L's given group maxima for main_given).
// Entry main_v4 with px.aux0 > 0 (px's aux fields are otherwise unread) splits L's rows into pieces
// of px.aux0 words, a thread per piece of four rows, after entry main_parts_v4 has taken the rows'
// maxima and sums per col_sum chunk (pt.aux1 columns; its chunk_pass4): where L's rows are few and
// long (a convolution's dYᵀ: 16 rows of batch·h·w columns), a thread per four whole rows put all of
// L's work on one or two of a CPU's threads. Each piece thread gathers its rows' maxima (any
// grouping of a maximum of amax_bits is the same) and the first piece their sums (the chunks added
// in order, as rows_t.wgsl's quads_pass adds them), so the same scales, sums and codes.

@group(0) @binding(0) var<uniform> px: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> mask4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> codes_t: array<u32>;
@group(0) @binding(7) var<storage, read_write> scales_t: array<f32>;
@group(0) @binding(8) var<uniform> pt: QuantParams;
@group(0) @binding(9) var<storage, read_write> sums: array<f32>;
// Per chunk c of L's columns (pt.aux1 each) and four adjacent rows of L (quad < pt.rows / 4): the
// rows' maxima (amax_bits) at (c·quads + quad)·2 and, with sums (pt.aux0 = 1), their sums over the
// chunk (f32 bits, chunk_pass4's) at the index after; main_parts_v4 writes them, main_v4 reads them
// where it splits L's rows.
@group(0) @binding(10) var<storage, read_write> parts: array<vec4<u32>>;
// Entry main_given's view of binding 10: L's group maxima, given (amax_bits of each group, as
// absmax writes them; read through common/maxima.wgsl). One view an entry.
@group(0) @binding(10) var<storage, read_write> amax: array<u32>;

// The params of the side this thread quantizes (what the shared units read as p; which outputs it
// writes is common/stores_both.wgsl's side).
var<private> p: QuantParams;

// A group's (scale, 1/scale) from its maximum (no tensor-wide scale here).
fn group_scale_of(m: f32) -> vec2<f32> {
    return fmt_scale_for_amax(m);
}

// Threads per workgroup: few, so that a small tensor's groups still spread over a CPU's cores.
const BOTH_WG: u32 = 64u;

// x's groups under params q: (groups a row, seg words each); a per-row group is the whole row.
fn x_groups(q: QuantParams) -> vec2<u32> {
    var seg = q.seg;
    if (q.block_div == 0xffffffffu) {
        seg = q.words_per_row;
    }
    return vec2<u32>((q.words_per_row + seg - 1u) / seg, seg);
}

// Workgroup w's side (1: L's rows, l_threads threads; 0: x's groups; 2: past both) and the index
// of its first thread within the side. L's workgroups are spread evenly among x's
// (spread_workgroup), not put first: llvmpipe hands each of its threads one contiguous run of
// workgroups, so L's long loops put first all ran on one core.
fn both_workgroup(w: u32, l_threads: u32) -> vec2<u32> {
    let lw = (l_threads + BOTH_WG - 1u) / BOTH_WG;
    let total = lw + (px.rows * x_groups(px).x + BOTH_WG - 1u) / BOTH_WG;
    if (w >= total) {
        return vec2<u32>(2u, 0u);
    }
    let s = spread_workgroup(w, lw, total);
    return vec2<u32>(s.x, s.y * BOTH_WG);
}

// A thread per row of L (common/rows_t.wgsl) or per group of x (common/row_groups.wgsl).
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = both_workgroup(flat_workgroup(wg, nwg), pt.rows);
    let t = b.y + lid;
    if (b.x == 1u) {
        if (t >= pt.rows) {
            return;
        }
        p = pt;
        side = 1u;
        if (p.block_div == 0xffffffffu) {
            row_thread(t);
        } else {
            block_thread(t);
        }
        return;
    }
    p = px;
    side = 0u;
    let xg = x_groups(p);
    if (b.x == 0u && t < p.rows * xg.x) {
        let g = group_span(t, xg.x, xg.y);
        store_group(g, group_scale_of(bitcast<f32>(span_amax(g))));
    }
}

// L's maxima and sums per chunk of its columns for main_v4's split rows (px.aux0 > 0): a thread
// per chunk and four adjacent rows of L (through the vec4 views), as quads_pass reads each chunk.
@compute @workgroup_size(64)
fn main_parts_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pt;
    let quads = p.rows / 4u;
    let chunk_cols = max(p.aux1, 1u);
    let t = flat_workgroup(wg, nwg) * BOTH_WG + lid;
    if (t >= quads * ((p.cols + chunk_cols - 1u) / chunk_cols)) {
        return;
    }
    let c0 = (t / quads) * chunk_cols;
    let end = min(c0 + chunk_cols, p.cols);
    let xr = x_row((t % quads) * 4u);
    let q = xr.y / 4u;
    let i0 = xr.x / 4u;
    var part = RowPass4(vec4<u32>(), vec4<f32>());
    if (p.aux0 == 1u) {
        part = chunk_pass4(q, i0, c0, end);
    } else {
        for (var col = c0; col < end; col++) {
            part.m = max(part.m, amax_bits4(load_x4(col * q + i0)));
        }
    }
    parts[t * 2u] = part.m;
    parts[t * 2u + 1u] = bitcast<vec4<u32>>(part.total);
}

// Words [piece·px.aux0, (piece + 1)·px.aux0) of rows 4·quad .. 4·quad + 3 of L (t = piece·quads +
// quad), packed as row_quads packs them: the rows' maxima gathered from main_parts_v4's chunks,
// and by the first piece their sums (the chunks in order) and scales.
fn piece_thread4(t: u32) {
    let quads = p.rows / 4u;
    let quad = t % quads;
    let piece = t / quads;
    let r0 = quad * 4u;
    let chunk_cols = max(p.aux1, 1u);
    let chunks = (p.cols + chunk_cols - 1u) / chunk_cols;
    let sums_here = piece == 0u && p.aux0 == 1u;
    var m = vec4<u32>();
    var total = vec4<f32>();
    for (var c = 0u; c < chunks; c++) {
        let at = (c * quads + quad) * 2u;
        m = max(m, parts[at]);
        if (sums_here) {
            let s = bitcast<vec4<f32>>(parts[at + 1u]);
            total = select(total + s, s, c == 0u);
        }
    }
    var inv = vec4<f32>();
    for (var j = 0u; j < 4u; j++) {
        let si = group_scale_of(bitcast<f32>(m[j]));
        if (piece == 0u) {
            store_scale(r0 + j, si.x);
        }
        if (sums_here) {
            sums[r0 + j] = total[j];
        }
        inv[j] = si.y;
    }
    let xr = x_row(r0);
    let w0 = piece * px.aux0;
    pack_words4(r0, xr.y / 4u, xr.x / 4u, w0, min(w0 + px.aux0, p.words_per_row), inv);
}

// main through the vec4 views: a thread per four rows of L (per piece of them where px.aux0 > 0)
// or per group of x.
@compute @workgroup_size(64)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // L's threads: pt.quads quads of its rows each (one quad where its rows are split).
    var pieces = 1u;
    if (px.aux0 > 0u) {
        pieces = (pt.words_per_row + px.aux0 - 1u) / px.aux0;
    }
    let rows_per = 4u * max(pt.quads, 1u);
    let l_threads = (pt.rows + rows_per - 1u) / rows_per * pieces;
    let b = both_workgroup(flat_workgroup(wg, nwg), l_threads);
    let t = b.y + lid;
    if (b.x == 1u) {
        if (t >= l_threads) {
            return;
        }
        p = pt;
        side = 1u;
        if (px.aux0 > 0u) {
            piece_thread4(t);
        } else if (p.block_div == 0xffffffffu) {
            row_quads(t * rows_per);
        } else {
            block_quads(t * rows_per);
        }
        return;
    }
    p = px;
    side = 0u;
    let xg = x_groups(p);
    if (b.x == 0u && t < p.rows * xg.x) {
        if (X_ROW_V4 > 0u) {
            x_row_v4(t);
        } else {
            store_group4(group_span(t, xg.x, xg.y));
        }
    }
}

// main_v4's x side where x's groups are whole short rows of one sample (set by the launcher:
// per-row scales, one sample, X_ROW_V4 = cols / 4 of at most 16 and cols a multiple of the
// format's codes per word; 0 elsewhere), with x's rounding X_STOCHASTIC (its params' flag): a
// thread per row, through x_row_v4. On llvmpipe store_group4's loops over the group's words and
// samples, their tests and its branch on the rounding cost about a tenth of the launch on
// resnet20's 16-channel dY (MNIST, batch 128: 6.1-6.4 -> 5.5-5.7 ms, both sides).
override X_ROW_V4: u32 = 0u;
override X_STOCHASTIC: bool = false;

// The longest row X_ROW_V4 may be, in vec4s: lowbit::kernels::quantize_both::SHORT_ROW_VEC4S.
const SHORT_ROW_VEC4S: u32 = 16u;

// Row `row` of x (one sample, per-row scale): its maximum, scale and codes, as store_group4 forms
// them (the same bits), every loop over the constant X_ROW_V4. The row is read once, into an array
// local to this function: reading it again for the codes took resnet20's six stage-1 dY launches
// (int8, MNIST, batch 128) 29-38 ms a step against 26-27 ms read once.
fn x_row_v4(row: u32) {
    var xs: array<vec4<f32>, SHORT_ROW_VEC4S>;
    var m = vec4<u32>();
    for (var k = 0u; k < X_ROW_V4; k++) {
        xs[k] = load_x4(row * X_ROW_V4 + k);
        m = max(m, amax_bits4(xs[k]));
    }
    let si = group_scale_of(bitcast<f32>(max(max(m.x, m.y), max(m.z, m.w))));
    put_scale(row, si.x);
    let key = sample_key(0u);
    let quads = fmt_per_word() / 4u;
    for (var w = 0u; w < X_ROW_V4 / quads; w++) {
        var word = 0u;
        for (var q = 0u; q < quads; q++) {
            let k = w * quads + q;
            word |= codes4(xs[k], si.y, X_STOCHASTIC, key, (row * X_ROW_V4 + k) * 4u, 4u * q * fmt_bits());
        }
        put_code(code_at(0u, row, w), word);
    }
}

// Word rw.y of row rw.x of L packed with its group's scale from the given maxima, into every
// sample: quantize_transpose's `main` (its thread per word of L in row tiles).
fn given_word_t(rw: vec2<u32>) {
    if (rw.x >= p.rows || rw.y >= p.words_per_row) {
        return;
    }
    let s_inv = inv_scale_at(rw.x, rw.y * fmt_per_word());
    let xr = x_row(rw.x);
    for (var j = 0u; j < p.samples; j++) {
        put_code(code_at(j, rw.x, rw.y), pack_word_t(rw.x, xr, rw.y, s_inv, sample_key(j)));
    }
}

// Entry main_given (a GPU's layouts, where x's producer has written L's group maxima: batch norm's
// backward for a convolution's dY): L packed from those maxima as quantize_transpose packs it, and
// x's groups as quantize_fused packs them on a GPU (per row: main_row's teams; per block: main's
// segments), in one launch, each side with its own params (px, pt), rounding, stream and samples.
// pt.total_tiles workgroups are L's row tiles (pt.seg rows of L by WG / pt.seg words, a thread per
// word, as quantize_transpose's); px.aux0 take x's groups, a team of px.aux1 threads a group (a
// power of two: per row lowbit::kernels::balanced_team's, per block the block's words), WG /
// px.aux1 groups a workgroup; the team's maxima meet in workgroup memory (segments.wgsl) and its
// first thread forms the group's scale (team_scale.wgsl), then each thread packs the group's words
// lane, lane + px.aux1, ... L's tiles are spread evenly among x's workgroups (spread_workgroup: on
// llvmpipe, with L's first, one core took all of x's, and the launch took 1.5× the two kernels').
// Every workgroup takes one side, so its barriers are reached by all its threads. The same codes
// and scales as the two kernels.
@compute @workgroup_size(256)
fn main_given(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = spread_workgroup(flat_workgroup(wg, nwg), pt.total_tiles, pt.total_tiles + px.aux0);
    if (b.x == 1u) {
        p = pt;
        side = 1u;
        given_word_t(row_tile_thread_at(pt, b.y, lid));
        return;
    }
    p = px;
    side = 0u;
    let team = px.aux1;
    let lane = lid % team;
    let xg = x_groups(px);
    let t = b.y * (WG / team) + lid / team;
    let valid = t < px.rows * xg.x;
    var g = vec3<u32>();
    var m = 0u;
    if (valid) {
        g = group_span(t, xg.x, xg.y);
        for (var word = g.y + lane; word < g.z; word += team) {
            m = max(m, word_amax(g.x, word));
        }
    }
    let inv = team_inv_scale(lid, team, group_of(px, g.x, g.y * fmt_per_word()), valid, m);
    if (valid) {
        store_words(g.x, g.y + lane, g.z, team, inv);
    }
}
