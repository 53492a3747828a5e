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
// read f32, NHWC); entries main_both_v4, main_scales_t_v4 and main_tiles_v4 also 8 codes_t, 9
// scales_t (read_write: L = colsᵀ's, as im2col_quantize_transpose writes them) and 10 pt
// (QuantParams of L's layout). The codes entries leave binding 1 untouched. The shared units read
// p, a private copy of the params of the side this invocation packs, and store through
// common/stores_both.wgsl's put_code / put_scale.
// Entry main_both_v4: main_codes_v4 and im2col_quantize_transpose's main_v4 in one launch (below),
// with FROM_MAXIMA = 1 after entry main_maxima_v4 (bindings 11, 12: x's maxima per pixel and per
// tap column's run of an image row, which main_both_v4 reads instead of unfolding each row for its
// maximum). Their indices: main_maxima_v4's threads past batch·h return, its pixels lie in its
// image row and its runs inside the image (ox in [lo, hi): x = ox·stride + kx − pad in [0, w); an
// empty run's first index is formed, never read); main_both_v4 reads the pixel maxima of taps
// inside the image only (y checked, x in [x0 + kx_lo, x0 + kx_hi) ⊂ [0, w)) and the run maxima of b
// < batch, y inside the image, kx < kw, ch < c; the launcher sizes both buffers to batch·h·w and
// batch·h·kw·c (and kh·kw·c more for L's inverse scales where main_scales_t_v4 writes them: one
// per row of L, its threads past L's rows return); main_tiles_v4's threads past cols' rows
// return, each reads the pixel maxima of rows it clamps below cols' rows and x at taps inside the
// image, and writes rows of cols below their count and, of L, rows below kh·kw·c at its own word,
// below L's words a row. main_codes_short's threads past cols' rows return; each loads x at a pixel
// clamped into the image, and its row's values sit at indices below kh·kw·c, at most SHORT_MAX
// (the launcher's Im2colQuantize::short_rows).

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

// Entry main_codes_short: main_codes for rows of cols of at most SHORT_MAX values (a first
// convolution's few input channels: MNIST's 1, CIFAR's 3), its kernel's height, width and channels
// the pipeline constants SHORT_KH, SHORT_KW and SHORT_C (set by the launcher; one sample). A thread
// per row loads its values once into registers, every loop bounded by those constants, then takes
// the maximum and packs the codes from there: the same values, draws (index row·cols + col) and
// shifts as main_codes, whose two unfolds branch per value on their mode and on the padding.
override SHORT_KH: u32 = 1u;
override SHORT_KW: u32 = 1u;
override SHORT_C: u32 = 1u;
const SHORT_MAX: u32 = 32u;

@compute @workgroup_size(256)
fn main_codes_short(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    let row = flat_workgroup(wg, nwg) * WG + lid;
    if (row >= p.rows) {
        return;
    }
    let t = row_taps(conv, row);
    var v: array<f32, SHORT_MAX>;
    var m = 0u;
    for (var ky = 0u; ky < SHORT_KH; ky++) {
        let y = t.y0 + i32(ky);
        for (var kx = 0u; kx < SHORT_KW; kx++) {
            let xx = t.x0 + i32(kx);
            let inside = y >= 0 && y < i32(conv.h) && xx >= 0 && xx < i32(conv.w);
            // Outside the image a pixel clamped into it is loaded and the unfold's 0 kept.
            let cy = u32(clamp(y, 0, i32(conv.h) - 1));
            let cx = u32(clamp(xx, 0, i32(conv.w) - 1));
            let at = ((t.b * conv.h + cy) * conv.w + cx) * SHORT_C;
            for (var ch = 0u; ch < SHORT_C; ch++) {
                let val = select(0.0, img[at + ch], inside);
                v[(ky * SHORT_KW + kx) * SHORT_C + ch] = val;
                m = max(m, amax_bits(val));
            }
        }
    }
    row_max = m;
    let inv = store_row_scale(row);
    let cols = SHORT_KH * SHORT_KW * SHORT_C;
    let per_word = fmt_per_word();
    let bits = fmt_bits();
    let stochastic = p.stochastic == 1u;
    let key = sample_key(0u);
    for (var w = 0u; w < (cols + per_word - 1u) / per_word; w++) {
        var word = 0u;
        for (var e = 0u; e < per_word; e++) {
            let k = w * per_word + e;
            if (k < cols) {
                var r = 0u;
                if (stochastic) {
                    r = rng_draw24(key, row * cols + k);
                }
                word |= fmt_quantize(v[k], inv, stochastic, r) << (e * bits);
            }
        }
        put_code(code_at(0u, row, w), word);
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

// At stride 1, the pixels [lo + dx, hi + dx) of an image row that tap column kx reaches from
// output columns [lo, hi) (main_maxima_v4's run bounds; an empty run where none does).
fn run_pixels1(kx: u32) -> vec2<i32> {
    let dx = i32(kx) - i32(conv.pad);
    let lo = min(select(0, -dx, dx < 0), i32(conv.ow));
    let hi = clamp(i32(conv.w) - dx, lo, i32(conv.ow));
    return vec2<i32>(lo + dx, hi + dx);
}

// The maxima main_both_v4 reads (channels a multiple of 4): a thread per image row (b, y), 8 a
// workgroup (as main_both_v4's). Its pixels' maxima over their channels, then per tap column kx
// and channel quad the maximum over the row's run of pixels that kx reaches (run_of's bounds). At
// stride 1 the runs are intervals that share a core (all but a pixel or two at each end where the
// padding is the kernel's half): per quad the core's maximum is taken once and each run adds its
// own ends, where each run loaded all its pixels (on llvmpipe, resnet20's int8 step at batch 128:
// the first stage's launches 2.1 -> 1.35 ms); where the core is empty, each run loads its pixels.
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
    // Stride 1: the core [core.x, core.y) of the runs, from the latest start to the earliest end
    // (any maximum over a run is the same in any grouping of its pixels).
    var core = vec2<i32>(0, i32(conv.w));
    for (var kx = 0u; kx < conv.kw; kx++) {
        let run = run_pixels1(kx);
        core = vec2<i32>(max(core.x, run.x), min(core.y, run.y));
    }
    if (s == 1 && core.x < core.y) {
        for (var q = 0u; q < cq; q++) {
            var mc = vec4<u32>();
            for (var x = core.x; x < core.y; x++) {
                mc = max(mc, amax_bits4(img4[(base + u32(x)) * cq + q]));
            }
            for (var kx = 0u; kx < conv.kw; kx++) {
                let run = run_pixels1(kx);
                var m = mc;
                for (var x = run.x; x < core.x; x++) {
                    m = max(m, amax_bits4(img4[(base + u32(x)) * cq + q]));
                }
                for (var x = core.y; x < run.y; x++) {
                    m = max(m, amax_bits4(img4[(base + u32(x)) * cq + q]));
                }
                run_maxima[(r * conv.kw + kx) * cq + q] = m;
            }
        }
        return;
    }
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
// the two launches with 8 or 32; each SIMD piece of 8 all L's or all cols'); and of
// main_scales_t_v4 and main_tiles_v4.
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

// Entries main_scales_t_v4 and main_tiles_v4: main_both_v4's outputs after main_maxima_v4 (per-row
// scales of L too, one sample a side) in two launches that load each value of x once for both
// sides, for the formats of 4 or 8 codes a word that Im2colQuantize::tiles_take and channels a
// multiple of the codes a word (Im2colQuantize::takes_tiles). main_scales_t_v4 forms L's scales (a
// thread per four rows of L, from the run maxima as tap_group_max4 takes them) and leaves their
// inverses after the run maxima in the same buffer (run_maxima[t_inv_at() + quad]: L's rows
// 4·quad .. 4·quad + 3). main_tiles_v4 runs a thread per tile of per_word output pixels (rows of
// cols; columns of L, one word of each of L's rows), which walks every tap and the tap's channels
// per_word at a time, loads blocks of four pixels by four channels (a vec4 a pixel, zeros outside
// the image) and packs from each block a quarter, half or whole word of the four pixels' rows of
// cols and of the four channels' rows of L. The same maxima, scales, draws (indexed by each side's
// row and column), codes and shifts as main_both_v4, so its bits. main_both_v4 loads every value
// twice, in two loops that each keep a packing word a value, and on a CPU adapter every load is a
// gather; the tiles load once and pack whole words (on llvmpipe, resnet20's int8 step at batch
// 128: the unfolding quantizers 281–284 → 183 ms a step, README, "Since c66fb25").

// Where main_scales_t_v4 leaves L's inverse scales in run_maxima: after the run maxima
// (batch·h·kw·c values, main_maxima_v4's).
fn t_inv_at() -> u32 {
    return conv.batch * conv.h * conv.kw * conv.c / 4u;
}

// L's per-row scales and their inverses: a thread per four rows of L, 8 a workgroup.
@compute @workgroup_size(8)
fn main_scales_t_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pt;
    side = 1u;
    let quad = flat_workgroup(wg, nwg) * BOTH_WG + lid;
    let r0 = quad * 4u;
    if (r0 >= p.rows) {
        return;
    }
    let inv = store_quad_scales(r0, 0u, tap_group_max4(tap_of(r0), 0u, p.cols));
    run_maxima[t_inv_at() + quad] = bitcast<vec4<u32>>(inv);
}

// Pixels (and channels) of a tile at most: the widest codes per word main_tiles_v4 takes.
const TILE_MAX: u32 = 8u;

// main_tiles_v4's rounding, a constant so that the draws of a side that rounds to nearest cost
// nothing (on a CPU adapter a branch on a value runs both ways): bit 0 cols' stochastic, bit 1 L's.
// The launcher sets it from the sides' params (whose stochastic fields the entry does not read).
override TILE_STOCHASTIC: u32 = 0u;

// The tile's first pixel (row of cols, column of L) and pixels (per_word, fewer in the last
// tile); for pixels 4·g + i (g < 2) their rows of cols, the image, first tap row and column of
// their taps and the inverse scales of their rows in component i of tile_row[g], tile_b[g],
// tile_y0[g], tile_x0[g] and tile_inv[g] (pixels past tile_n are the last one again: they
// compute its words and store them again, the same bits, so that no store waits on a test);
// tile_mask[g], the bits of the pixels of group g that L's words keep (pixels past tile_n give
// 0 bits, as pack_flush4 leaves a short word); the two sides' draw keys (one sample). Vectors,
// not arrays of pixels: a component written at a computed index stays in registers, where an
// array element might not.
var<private> tile_j0: u32;
var<private> tile_n: u32;
var<private> tile_row: array<vec4<u32>, 2>;
var<private> tile_mask: vec2<u32>;
var<private> tile_b: array<vec4<u32>, 2>;
var<private> tile_y0: array<vec4<i32>, 2>;
var<private> tile_x0: array<vec4<i32>, 2>;
var<private> tile_inv: array<vec4<f32>, 2>;
var<private> tile_keys: vec2<u32>;

// Pixels 4·g .. 4·g + 3 of the tile, tap (ky, kx): where each one's first channels of the tap
// lie in x (as vec4s), or OUTSIDE outside the image.
fn block_at(g: u32, ky: u32, kx: u32) -> vec4<u32> {
    let iy = tile_y0[g] + vec4<i32>(i32(ky));
    let ix = tile_x0[g] + vec4<i32>(i32(kx));
    let zero = vec4<i32>(0);
    let h = vec4<i32>(i32(conv.h));
    let w = vec4<i32>(i32(conv.w));
    let inside = (iy >= zero) & (iy < h) & (ix >= zero) & (ix < w);
    let at = ((tile_b[g] * conv.h + bitcast<vec4<u32>>(iy)) * conv.w + bitcast<vec4<u32>>(ix)) * (conv.c / 4u);
    return select(vec4<u32>(OUTSIDE), at, inside);
}

// A block of four pixels by four channels, both sides' codes: .c[i], pixel 4·g + i's codes of
// columns col .. col + 3 of its row of cols (code e at shift e·bits); .t[e], channel e's codes of
// its row of L (row col + e) at columns j0 + 4·g .. j0 + 4·g + 3 (pixel i at shift i·bits; 0 past
// the tile's pixels, as pack_flush4 leaves a short word).
struct BlockCodes {
    c: vec4<u32>,
    t: vec4<u32>,
}

fn block_codes(g: u32, at: vec4<u32>, quad: u32, col: u32, inv_t: vec4<f32>) -> BlockCodes {
    var v: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        if (at[i] != OUTSIDE) {
            v[i] = img4[at[i] + quad];
        }
    }
    let inv = tile_inv[g];
    let bits = fmt_bits();
    let st_c = (TILE_STOCHASTIC & 1u) != 0u;
    let st_t = (TILE_STOCHASTIC & 2u) != 0u;
    let rows = tile_row[g];
    var out = BlockCodes(vec4<u32>(), vec4<u32>());
    for (var i = 0u; i < 4u; i++) {
        for (var e = 0u; e < 4u; e++) {
            var r = 0u;
            if (st_c) {
                r = rng_draw24(tile_keys.x, rows[i] * pa.cols + col + e);
            }
            out.c[i] |= fmt_quantize(v[i][e], inv[i], st_c, r) << (e * bits);
        }
    }
    for (var e = 0u; e < 4u; e++) {
        for (var i = 0u; i < 4u; i++) {
            let k = 4u * g + i;
            var r = 0u;
            if (st_t) {
                r = rng_draw24(tile_keys.y, (col + e) * pt.cols + tile_j0 + k);
            }
            let code = fmt_quantize(v[i][e], inv_t[e], st_t, r);
            out.t[e] |= code << (i * bits);
        }
    }
    out.t &= vec4<u32>(tile_mask[g]);
    return out;
}

// Pixel 4·g + i's word w[i] of its row of cols at column col.
fn store_block_c(g: u32, w: vec4<u32>, col: u32) {
    for (var i = 0u; i < 4u; i++) {
        codes[tile_row[g][i] * pa.words_per_row + col / fmt_per_word()] = w[i];
    }
}

// Channel e's word w[e] of its row of L (row row0 + e), the tile's word of it.
fn store_block_t(tile: u32, w: vec4<u32>, row0: u32) {
    for (var e = 0u; e < 4u; e++) {
        codes_t[(row0 + e) * pt.words_per_row + tile] = w[e];
    }
}

// One sample a side (encode_both's; the entry reads neither side's samples). Every loop over a
// block's pixels or channels runs four times, so that a compiler can unroll it and keep the block
// in registers.
@compute @workgroup_size(8)
fn main_tiles_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    p = pa;
    side = 0u;
    let per_word = fmt_per_word();
    let tile = flat_workgroup(wg, nwg) * BOTH_WG + lid;
    tile_j0 = tile * per_word;
    if (tile_j0 >= pa.rows) {
        return;
    }
    tile_n = min(per_word, pa.rows - tile_j0);
    tile_keys = vec2<u32>(sample_key_of(pa, 0u), sample_key_of(pt, 0u));
    // Each pixel's taps, and its row's scale from the pixel maxima (stored) and inverse.
    let bits = fmt_bits();
    for (var g = 0u; g < per_word / 4u; g++) {
        for (var i = 0u; i < 4u; i++) {
            let row = tile_j0 + min(4u * g + i, tile_n - 1u);
            let t = row_taps(conv, row);
            tile_row[g][i] = row;
            tile_b[g][i] = t.b;
            tile_y0[g][i] = t.y0;
            tile_x0[g][i] = t.x0;
            row_max = cols_row_max(row);
            tile_inv[g][i] = store_row_scale(row);
        }
        // (4 codes of 8 bits fill the word: no shift by 32.)
        let valid = clamp(i32(tile_n) - 4 * i32(g), 0, 4);
        tile_mask[g] = select((1u << (u32(valid) * bits)) - 1u, 0xffffffffu, u32(valid) * bits == 32u);
    }
    let half = vec4<u32>(4u * bits);
    for (var ky = 0u; ky < conv.kh; ky++) {
        for (var kx = 0u; kx < conv.kw; kx++) {
            let tap_col = (ky * conv.kw + kx) * conv.c;
            let at0 = block_at(0u, ky, kx);
            let at1 = block_at(1u, ky, kx);
            for (var c0 = 0u; c0 < conv.c; c0 += per_word) {
                let col = tap_col + c0;
                let q0 = c0 / 4u;
                let inv_t0 = bitcast<vec4<f32>>(run_maxima[t_inv_at() + col / 4u]);
                if (per_word == 4u) {
                    // One block: a whole word of each side.
                    let b = block_codes(0u, at0, q0, col, inv_t0);
                    store_block_c(0u, b.c, col);
                    store_block_t(tile, b.t, col);
                } else {
                    // Four blocks, pixels 0–3 and 4–7 by the tap's channels c0 .. c0 + 3 and
                    // c0 + 4 .. c0 + 7: half words, the second channels' codes at shift 4·bits in
                    // cols' words and the second pixels' in L's. Each word is stored once both
                    // its blocks are coded, so that fewer codes are held at once (on llvmpipe,
                    // coding all four blocks first made resnet20's int4 launches ~12% slower).
                    let inv_t1 = bitcast<vec4<f32>>(run_maxima[t_inv_at() + col / 4u + 1u]);
                    let b00 = block_codes(0u, at0, q0, col, inv_t0);
                    let b01 = block_codes(0u, at0, q0 + 1u, col + 4u, inv_t1);
                    store_block_c(0u, b00.c | (b01.c << half), col);
                    let b10 = block_codes(1u, at1, q0, col, inv_t0);
                    store_block_t(tile, b00.t | (b10.t << half), col);
                    let b11 = block_codes(1u, at1, q0 + 1u, col + 4u, inv_t1);
                    store_block_c(1u, b10.c | (b11.c << half), col);
                    store_block_t(tile, b01.t | (b11.t << half), col + 4u);
                }
            }
        }
    }
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
