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
// Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED: no loop counter of naga's), as in
// quantize_fused, whose packing this runs: every loop here and in the included units steps its
// counter by a positive constant (1, 4) or halves it, towards a bound fixed before the loop (a
// params field, a run's end computed before it, the format's codes per word, 24 in recip_rne);
// the bounds are buffer lengths, far below u32's end, so every loop ends.
// Reference: src/reference/im2col_quantize.rs (im2col, then quantize_fused).
// Bindings: 0 params (QuantParams of the [rows, kh·kw·c] layout), 1 cols (read_write f32: the
// unfold writes it, the packing reads it back through one_pass.wgsl's load_x), 2 codes, 3 scales,
// 4 step (StepState), 5 mask (read f32: unused, p.masked = 0), 6 conv (ConvParams), 7 img (x,
// read f32, NHWC); entry main_both_v4 also 8 codes_t, 9 scales_t (read_write: L = colsᵀ's, as
// im2col_quantize_transpose writes them) and 10 pt (QuantParams of L's layout). The codes entries
// leave binding 1 untouched. The shared units read p, a private copy of the params of the side
// this invocation packs, and store through common/stores_both.wgsl's put_code / put_scale.
// Entry main_both_v4: main_codes_v4 and im2col_quantize_transpose's main_v4 in one launch (below).

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
        pack_push(v.x);
        pack_push(v.y);
        pack_push(v.z);
        pack_push(v.w);
        return;
    }
    if (mode == 0u) {
        x4[o] = v;
    }
    let m = amax_bits4(v);
    row_max = max(row_max, max(max(m.x, m.y), max(m.z, m.w)));
}

// Row `row`'s scale from the maximum its unfold took, into every sample; returns 1/scale.
fn store_row_scale(row: u32) -> f32 {
    let si = fmt_scale_for_amax(bitcast<f32>(row_max));
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

// Row `row` of cols' codes and scale through the vec4 views (main_codes_v4's body).
fn codes_row4(row: u32) {
    if (row >= p.rows) {
        return;
    }
    // One unfold for the row's maximum, then per sample one that packs it.
    mode = 1u;
    row_max = 0u;
    unfold_row4(conv, row);
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
    codes_row4(flat_workgroup(wg, nwg) * WG + lid);
}

// Threads per workgroup of main_both_v4: 8, as im2col_quantize_transpose's, so that L's few long
// rows spread over a CPU adapter's cores (llvmpipe, resnet20's int8 step: about the GPU time of
// the two launches with 8 or 32; each SIMD piece of 8 all L's or all cols').
const BOTH_WG: u32 = 8u;

// main_codes_v4 and, in the same launch, im2col_quantize_transpose's main_v4 (channels a multiple
// of 4): L's workgroups four rows of L = colsᵀ a thread (common/unfold_t.wgsl), spread evenly among
// cols' workgroups, a row of cols a thread (spread_workgroup: on llvmpipe, L's long workgroups
// put first all ran on one of its threads, and the launch took 1.2–1.6× the two it replaces on the
// MNIST CNN's second convolution). The bits of those two launches.
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
    codes_row4(s.y * BOTH_WG + lid);
}
