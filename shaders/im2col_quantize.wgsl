// im2col_quantize: im2col's unfold of a convolution's input and the one-pass per-row quantizer of
// the unfolded rows, in one launch: a thread per row of cols unfolds it (common/conv.wgsl), taking
// the row's maximum as it stores each value, then packs the row from what it just wrote (still in
// the cache), as quantize_fused's main_row_short packs a row it reads twice from memory (the same
// store_words, common/pack_rows.wgsl). Outputs:
// cols (f32, what im2col writes: the weight gradient's operand is quantized from it) and the
// codes and scales quantize_fused gives for cols, bit for bit. Per-row scales only, formats
// without a tensor-wide scale (not NVFP4); SMP's stacked samples as in quantize_fused. Entry main:
// scalar loads and stores; main_v4 (channels, and the format's codes per word, multiples of 4):
// all of them through the vec4 views of the same bindings (on a CPU adapter every load runs lane
// by lane, so a vec4 costs about what one f32 does; one entry may not reach both views).
// Entries main_codes and main_codes_v4 (channels a multiple of 4; any format): the same codes and
// scales without writing cols (where nothing else reads it: the weight gradient's Xᵀ taken from
// the input by im2col_quantize_transpose), the row unfolded twice from the input, once for its
// maximum and once (per sample) packing each value as the unfold visits it, in order.
// Entry main_rows (a GPU's layout): a team of threads per row, cols written or not (below).
// Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED: no loop counter of naga's), as in
// quantize_fused, whose packing this runs: every loop here and in the included units steps its
// counter by a positive constant (1, 4; main_rows by pa.seg, at least 1) or halves it, towards a
// bound fixed before the loop (a params field, a run's end computed before it, the format's codes
// per word, 24 in recip_rne); the bounds are buffer lengths, far below u32's end, so every loop
// ends.
// Reference: src/reference/im2col_quantize.rs (im2col, then quantize_fused).
// Bindings: 0 params (QuantParams of the [rows, kh·kw·c] layout), 1 cols (read_write f32: the
// unfold writes it, the packing reads it back through one_pass.wgsl's load_x), 2 codes, 3 scales,
// 4 step (StepState), 5 mask (read f32: unused, p.masked = 0), 6 conv (ConvParams), 7 img (x,
// read f32, NHWC); entry main_both_v4 also 8 codes_t, 9 scales_t (read_write: L = colsᵀ's, as
// im2col_quantize_transpose writes them) and 10 pt (QuantParams of L's layout). The codes entries
// leave binding 1 untouched. The shared units read p, a private copy of the params of the side
// this invocation packs, and store through common/stores_both.wgsl's put_code / put_scale.
// Entry main_both_v4: main_codes_v4 and im2col_quantize_transpose's main_v4 in one launch (below),
// with FROM_MAXIMA = 1 after entry main_maxima_v4 (bindings 11, 12: x's maxima per pixel and per
// tap column's run of an image row, which main_both_v4 reads instead of unfolding each row for its
// maximum). Their indices: main_maxima_v4's threads past batch·h return, its pixels lie in its
// image row and its runs inside the image (ox in [lo, hi): x = ox·stride + kx − pad in [0, w); an
// empty run's first index is formed, never read); main_both_v4 reads the pixel maxima of taps
// inside the image only (y checked, x in [x0 + kx_lo, x0 + kx_hi) ⊂ [0, w)) and the run maxima of b
// < batch, y inside the image, kx < kw, ch < c; the launcher sizes both buffers to batch·h·w and
// batch·h·kw·c.

@group(0) @binding(0) var<uniform> pa: QuantParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
// cols again, as vec4s (the _v4 entries only).
@group(0) @binding(1) var<storage, read_write> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> mask4: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> conv: ConvParams;
@group(0) @binding(7) var<storage, read> img: array<f32>;
// x again, as vec4s (the _v4 entries only).
@group(0) @binding(7) var<storage, read> img4: array<vec4<f32>>;

// Entry main_both_v4 only: L = colsᵀ's outputs and layout (im2col_quantize_transpose's).
@group(0) @binding(8) var<storage, read_write> codes_t: array<u32>;
@group(0) @binding(9) var<storage, read_write> scales_t: array<f32>;
@group(0) @binding(10) var<uniform> pt: QuantParams;

// Entries main_maxima_v4 (writes them) and main_both_v4 (reads them) only: maxima of x as
// amax_bits. pixel_maxima[(b·h + y)·w + x]: over pixel (b, y, x)'s channels. run_maxima[((b·h +
// y)·kw + kx)·c/4 + q]: over the pixels of image row (b, y) that tap column kx reaches from an
// output column (x = ox·stride + kx − pad inside the image, 0 ≤ ox < ow), channels 4q .. 4q + 3.
@group(0) @binding(11) var<storage, read_write> pixel_maxima: array<u32>;
@group(0) @binding(12) var<storage, read_write> run_maxima: array<vec4<u32>>;

// main_both_v4: 1, the rows' maxima from main_maxima_v4's; 0, each row unfolded for its maximum
// (where taps share few pixels: a 1x1 convolution reads each pixel from one row of cols, so the
// maxima launch would read more of x than it saves; Im2colQuantize::takes_maxima).
override FROM_MAXIMA: u32 = 1u;

// The layout this invocation packs (what the shared units read as p): pa, or in main_both_v4 pt
// for L's rows (which outputs it writes is common/stores_both.wgsl's side).
var<private> p: QuantParams;

// The maximum magnitude (amax_bits) of the values this invocation's unfold has visited.
var<private> row_max: u32;

// What put_col and put_col4 do with each value of the row: 0 store it in cols and take its
// magnitude into row_max (entries main, main_v4); 1 only take its magnitude; 2 pack it
// (common/pack_stream.wgsl: the codes-only entries, main_codes and main_codes_v4, whose second
// unfold packs the row as it visits it, in order).
var<private> mode: u32;

fn unfold_src(i: u32) -> f32 {
    return img[i];
}

fn put_col(o: u32, v: f32) {
    if (mode == 2u) {
        pack_push(v);
        return;
    }
    if (mode == 0u) {
        x[o] = v;
    }
    row_max = max(row_max, amax_bits(v));
}

fn unfold_src4(i: u32) -> vec4<f32> {
    return img4[i];
}

fn put_col4(o: u32, v: vec4<f32>) {
    if (mode == 2u) {
        pack_push_vec4(v);
        return;
    }
    if (mode == 0u) {
        x4[o] = v;
    }
    let m = amax_bits4(v);
    row_max = max(row_max, max(max(m.x, m.y), max(m.z, m.w)));
}

// A row's (scale, 1/scale) from its maximum (no tensor-wide scale here; read by
// common/team_scale.wgsl too).
fn group_scale_of(m: f32) -> vec2<f32> {
    return fmt_scale_for_amax(m);
}

// Row `row`'s scale from the maximum its unfold took, into every sample; returns 1/scale.
fn store_row_scale(row: u32) -> f32 {
    let si = group_scale_of(bitcast<f32>(row_max));
    store_scale(row, si.x);
    return si.y;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    let row = flat_workgroup(wg, nwg) * WG + lid;
    if (row >= p.rows) {
        return;
    }
    mode = 0u;
    row_max = 0u;
    unfold_row(conv, row);
    store_words(row, 0u, p.words_per_row, 1u, store_row_scale(row));
}

// main through the vec4 views: channels a multiple of 4 and the format's codes per word too.
@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    let row = flat_workgroup(wg, nwg) * WG + lid;
    if (row >= p.rows) {
        return;
    }
    mode = 0u;
    row_max = 0u;
    unfold_row4(conv, row);
    store_words4(row, 0u, p.words_per_row, 1u, store_row_scale(row));
}

// The codes and scales of main, cols not written (where nothing reads it).
@compute @workgroup_size(256)
fn main_codes(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    let row = flat_workgroup(wg, nwg) * WG + lid;
    if (row >= p.rows) {
        return;
    }
    // One unfold for the row's maximum, then per sample one that packs it.
    mode = 1u;
    row_max = 0u;
    unfold_row(conv, row);
    let inv = vec4<f32>(store_row_scale(row));
    mode = 2u;
    for (var j = 0u; j < p.samples; j++) {
        pack_start(row, j, 0u, inv);
        unfold_row(conv, row);
        pack_flush();
    }
}

// Row `row` of cols' codes and scale through the vec4 views (main_codes_v4's body; main_both_v4
// takes the row's maximum from pixel_maxima instead of unfolding the row for it).
fn codes_row4(row: u32, from_maxima: bool) {
    if (row >= p.rows) {
        return;
    }
    // The row's maximum (one unfold, or its taps' pixel maxima), then per sample an unfold that
    // packs it.
    mode = 1u;
    row_max = 0u;
    if (from_maxima) {
        row_max = cols_row_max(row);
    } else {
        unfold_row4(conv, row);
    }
    let inv = vec4<f32>(store_row_scale(row));
    mode = 2u;
    for (var j = 0u; j < p.samples; j++) {
        pack_start(row, j, 0u, inv);
        unfold_row4(conv, row);
        pack_flush();
    }
}

// main_codes through the vec4 view of x (channels a multiple of 4).
@compute @workgroup_size(256)
fn main_codes_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    codes_row4(flat_workgroup(wg, nwg) * WG + lid, false);
}

// Row `row` of cols' maximum (amax_bits) from pixel_maxima: over the pixels its taps read inside
// the image (the unfold's zeros change no maximum), as unfold_row4 visits them.
fn cols_row_max(row: u32) -> u32 {
    let t = row_taps(conv, row);
    var m = 0u;
    for (var ky = 0u; ky < conv.kh; ky++) {
        let y = t.y0 + i32(ky);
        if (y >= 0 && u32(y) < conv.h) {
            var at = (t.b * conv.h + u32(y)) * conv.w + u32(t.x0 + i32(t.kx_lo));
            for (var kx = t.kx_lo; kx < t.kx_hi; kx++) {
                m = max(m, pixel_maxima[at]);
                at++;
            }
        }
    }
    return m;
}

// tap_thread4's group maxima (common/unfold_t.wgsl) for four rows of L (tap t, channels t.ch ..
// t.ch + 3): for per-row scales (one group, the row) from run_maxima, over every image and output
// row whose tap row lies inside the image; per block, or without maxima, read from x as the group
// is.
fn tap_group_max4(t: Tap, c0: u32, c1: u32) -> vec4<u32> {
    if (FROM_MAXIMA == 0u || p.block_div != 0xffffffffu) {
        return group_max4(t, c0, c1);
    }
    let kx = u32(t.dx + i32(conv.pad));
    let cq = conv.c / 4u;
    var m = vec4<u32>();
    for (var b = 0u; b < conv.batch; b++) {
        for (var oy = 0u; oy < conv.oh; oy++) {
            let y = i32(oy * conv.stride) + t.dy;
            if (y >= 0 && u32(y) < conv.h) {
                m = max(m, run_maxima[((b * conv.h + u32(y)) * conv.kw + kx) * cq + t.ch / 4u]);
            }
        }
    }
    return m;
}

// The maxima main_both_v4 reads (channels a multiple of 4): a thread per image row (b, y), 8 a
// workgroup (as main_both_v4's). Its pixels' maxima over their channels, then per tap column kx
// and channel quad the maximum over the row's run of pixels that kx reaches (run_of's bounds).
@compute @workgroup_size(8)
fn main_maxima_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = flat_workgroup(wg, nwg) * BOTH_WG + lid;
    if (r >= conv.batch * conv.h) {
        return;
    }
    let cq = conv.c / 4u;
    let base = r * conv.w;
    for (var x = 0u; x < conv.w; x++) {
        var m = vec4<u32>();
        for (var q = 0u; q < cq; q++) {
            m = max(m, amax_bits4(img4[(base + x) * cq + q]));
        }
        pixel_maxima[base + x] = max(max(m.x, m.y), max(m.z, m.w));
    }
    let s = i32(conv.stride);
    for (var kx = 0u; kx < conv.kw; kx++) {
        // Output columns ox with ox·stride + dx inside the image: [lo, hi) (tap_of's bounds).
        let dx = i32(kx) - i32(conv.pad);
        let lo = min(select(0, (s - 1 - dx) / s, dx < 0), i32(conv.ow));
        let hi = clamp((i32(conv.w) - dx + s - 1) / s, lo, i32(conv.ow));
        for (var q = 0u; q < cq; q++) {
            var m = vec4<u32>();
            // (An empty run's first index is formed but never read.)
            var i = (base + u32(lo * s + dx)) * cq + q;
            for (var ox = lo; ox < hi; ox++) {
                m = max(m, amax_bits4(img4[i]));
                i += conv.stride * cq;
            }
            run_maxima[(r * conv.kw + kx) * cq + q] = m;
        }
    }
}

// Threads per workgroup of main_both_v4: 8, as im2col_quantize_transpose's, so that L's few long
// rows spread over a CPU adapter's cores (llvmpipe, resnet20's int8 step: about the GPU time of
// the two launches with 8 or 32; each SIMD piece of 8 all L's or all cols').
const BOTH_WG: u32 = 8u;

// main_codes_v4 and, in the same launch, im2col_quantize_transpose's main_v4 (channels a multiple
// of 4), after main_maxima_v4 (FROM_MAXIMA = 1): L's workgroups four rows of L = colsᵀ a thread
// (common/unfold_t.wgsl), spread evenly among cols' workgroups, a row of cols a thread
// (spread_workgroup: on llvmpipe, L's long workgroups put first all ran on one of its threads, and
// the launch took 1.2–1.6× the two it replaces on the MNIST CNN's second convolution). The rows'
// maxima come from main_maxima_v4's (cols_row_max; tap_group_max4 for per-row scales of L), not
// from an unfold of each row: the same maxima (a maximum of amax_bits in any grouping), so the bits
// of those two launches.
@compute @workgroup_size(8)
fn main_both_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let w = flat_workgroup(wg, nwg);
    let l_groups = ((pt.rows + 3u) / 4u + BOTH_WG - 1u) / BOTH_WG;
    let total = l_groups + (pa.rows + BOTH_WG - 1u) / BOTH_WG;
    if (w >= total) {
        return;
    }
    let s = spread_workgroup(w, l_groups, total);
    if (s.x == 1u) {
        p = pt;
        side = 1u;
        tap_thread4((s.y * BOTH_WG + lid) * 4u);
        return;
    }
    p = pa;
    side = 0u;
    codes_row4(s.y * BOTH_WG + lid, FROM_MAXIMA == 1u);
}

// Entry main_rows (a GPU's layout; Im2colQuantize builds it where the adapter takes the GPU
// layouts): a team of pa.seg threads per row of cols (a power of two, at most WG, that leaves few
// threads idle: lowbit::kernels::balanced_team; WG / pa.seg rows a workgroup; entry main_rows_v4
// through vec4s where channels come in fours), thread `lane` of a team taking the row's words lane,
// lane + pa.seg, ..: where a thread per row reads x a row of cols apart from its neighbours' and a
// few hundred rows leave a GPU's multiprocessors idle, a team's loads are side by side. Each thread
// unfolds its words' values from x (into cols too where TEAM_COLS is 1) and takes their maximum;
// the team's maxima meet in workgroup memory (common/segments.wgsl: a maximum of amax_bits in any
// order), its first thread forms the row's scale (common/team_scale.wgsl); then each thread packs
// its words again from x, in the cache (common/pack_stream.wgsl: the codes, draws and shifts of
// pack_word). So quantize_fused's codes and scales of cols, bit for bit, and im2col's cols.
override TEAM_COLS: u32 = 1u;

// A position in a row of cols as main_rows walks a word's values: the tap (ky, kx) and channel of
// the next column. Formed by division once a word, then moved by adds (integer division costs a
// GPU some twenty instructions: per value, it would cost more than the memory traffic it saves).
struct TeamCursor {
    ky: u32,
    kx: u32,
    ch: u32,
}

fn team_cursor(col: u32) -> TeamCursor {
    let tap = col / conv.c;
    return TeamCursor(tap / conv.kw, tap % conv.kw, col % conv.c);
}

// x's index of the cursor's value in the row of taps t (channel ch of pixel (iy, ix)), or OUTSIDE
// outside the image (a 0 of the unfold); the cursor then moves n channels on (1, or main_rows_v4's
// 4: channels a multiple of 4, so a quad never straddles taps).
const OUTSIDE: u32 = 0xffffffffu;

fn team_next_at(t: RowTaps, cur: ptr<function, TeamCursor>, n: u32) -> u32 {
    let iy = t.y0 + i32((*cur).ky);
    let ix = t.x0 + i32((*cur).kx);
    var at = OUTSIDE;
    if (iy >= 0 && u32(iy) < conv.h && ix >= 0 && u32(ix) < conv.w) {
        at = ((t.b * conv.h + u32(iy)) * conv.w + u32(ix)) * conv.c + (*cur).ch;
    }
    (*cur).ch += n;
    if ((*cur).ch == conv.c) {
        (*cur).ch = 0u;
        (*cur).kx += 1u;
        if ((*cur).kx == conv.kw) {
            (*cur).kx = 0u;
            (*cur).ky += 1u;
        }
    }
    return at;
}

// The value at the cursor (0 outside the image); the cursor then moves to the next column.
fn team_next(t: RowTaps, cur: ptr<function, TeamCursor>) -> f32 {
    let at = team_next_at(t, cur, 1u);
    if (at == OUTSIDE) {
        return 0.0;
    }
    return img[at];
}

// The four values at the cursor (channels ch .. ch + 3 of one tap), through x's vec4 view; the
// cursor then moves four columns on.
fn team_next4(t: RowTaps, cur: ptr<function, TeamCursor>) -> vec4<f32> {
    let at = team_next_at(t, cur, 4u);
    if (at == OUTSIDE) {
        return vec4<f32>();
    }
    return img4[at / 4u];
}

@compute @workgroup_size(256)
fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    let lane = lid % pa.seg;
    let row = flat_workgroup(wg, nwg) * (WG / pa.seg) + lid / pa.seg;
    let valid = row < pa.rows;
    let per_word = fmt_per_word();
    var t: RowTaps;
    var m = 0u;
    if (valid) {
        t = row_taps(conv, row);
        for (var w = lane; w < pa.words_per_row; w += pa.seg) {
            let c1 = min(w * per_word + per_word, pa.cols);
            var cur = team_cursor(w * per_word);
            for (var c = w * per_word; c < c1; c++) {
                let v = team_next(t, &cur);
                if (TEAM_COLS == 1u) {
                    x[row * pa.cols + c] = v;
                }
                m = max(m, amax_bits(v));
            }
        }
    }
    let inv = vec4<f32>(team_inv_scale(lid, pa.seg, row, valid, m));
    if (!valid) {
        return;
    }
    for (var j = 0u; j < p.samples; j++) {
        for (var w = lane; w < pa.words_per_row; w += pa.seg) {
            let c0 = w * per_word;
            pack_start(row, j, c0, inv);
            var cur = team_cursor(c0);
            for (var c = c0; c < min(c0 + per_word, pa.cols); c++) {
                pack_push(team_next(t, &cur));
            }
            pack_flush();
        }
    }
}

// main_rows through the vec4 views of x and cols (channels a multiple of 4, and the format's codes
// per word too, so a word is whole quads of one tap or of taps in turn, and the row's last, short
// word whole quads): a load of four values where main_rows takes one.
@compute @workgroup_size(256)
fn main_rows_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    let lane = lid % pa.seg;
    let row = flat_workgroup(wg, nwg) * (WG / pa.seg) + lid / pa.seg;
    let valid = row < pa.rows;
    let per_word = fmt_per_word();
    var t: RowTaps;
    var m = 0u;
    if (valid) {
        t = row_taps(conv, row);
        for (var w = lane; w < pa.words_per_row; w += pa.seg) {
            let c1 = min(w * per_word + per_word, pa.cols);
            var cur = team_cursor(w * per_word);
            for (var c = w * per_word; c < c1; c += 4u) {
                let v = team_next4(t, &cur);
                if (TEAM_COLS == 1u) {
                    x4[(row * pa.cols + c) / 4u] = v;
                }
                let a = amax_bits4(v);
                m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
            }
        }
    }
    let inv = vec4<f32>(team_inv_scale(lid, pa.seg, row, valid, m));
    if (!valid) {
        return;
    }
    for (var j = 0u; j < p.samples; j++) {
        for (var w = lane; w < pa.words_per_row; w += pa.seg) {
            let c0 = w * per_word;
            pack_start(row, j, c0, inv);
            var cur = team_cursor(c0);
            for (var c = c0; c < min(c0 + per_word, pa.cols); c += 4u) {
                pack_push_vec4(team_next4(t, &cur));
            }
            pack_flush();
        }
    }
}
