// quantize_fused: one-pass quantizer for per-block and per-row scales. Each workgroup owns whole
// scale groups, so the absmax reduction, the scale and the packing happen in one launch and x is
// read from memory once. Same output as absmax -> quantize (reference:
// src/reference/quantize_fused.rs).
// Entry `main`: per-block groups of `seg` words (seg a power of two <= 256); a tile takes p.aux0
// words of WG / p.aux0 rows (a power of two, a multiple of seg, at most WG: a row's words rounded
// up, so that rows shorter than a workgroup share one; WG for longer rows, as quantize's tiles).
// Entry `main_group`: the same groups, one thread per group, no workgroup memory or barriers (for
// CPU adapters, where a barrier splits the shader and costs more than the reduction it orders).
// Entry `main_row`: a team of p.seg threads per row (a power of two, at most WG; WG / p.seg rows a
// workgroup, row = flat workgroup index · (WG / p.seg) + lid / p.seg), for per-row scales: each
// thread the row's words lane, lane + p.seg, .., their maxima met in workgroup memory as `main`'s
// segments meet (a maximum in any order), then packed again. A whole workgroup per row (p.seg =
// WG) for long rows and on CPU adapters; on a GPU a power of two that leaves few threads idle
// (lowbit::kernels::balanced_team), so that short rows share a workgroup and neighbouring threads
// read neighbouring words. Entry `main_row_v4`: main_row reading x as vec4s, as the _v4 entries
// below (a GPU's load of 16 bytes where main_row's are 4).
// Entry `main_row_short`: one thread per row, for rows of few words (an im2col matrix of a
// first convolution has rows of kh·kw·c values), where a workgroup per row would idle.
// Entries `main_group_v4`, `main_row_short_v4`: `main_group` and `main_row_short` reading x as
// vec4s (binding 1 as x4), where the format's codes per word and the row length are multiples of
// 4: on a CPU adapter every load runs lane by lane, so a vec4 costs about what one f32 does.
// NVFP4, whose block scales depend on the tensor's maximum, reads it from tensor_amax[0] (written
// by an absmax launch before this one: two launches, as absmax -> quantize,
// same bits); other formats ignore that binding. Entry `main_whole` (NVFP4's blocks of a tensor
// small enough for one workgroup, a weight): the one launch reduces the tensor's maximum itself
// (absmax's value: the largest amax_bits of x), stores it to tensor_amax[0] for later quantizers
// of the same tensor, then quantizes a group per thread as main_group does (same bits);
// `main_whole_both` also quantizes xᵀ's blocks with that maximum (below), and `main_group_both`
// does both for a tensor of any size given its maximum (below); the other formats' both
// orientations in one launch are quantize_both's.
// Packing (pack_word, pack_word4) is shared with quantize (common/pack.wgsl), the stores of a
// row's words into every sample (store_words, common/pack_rows.wgsl) with im2col_quantize and
// quantize_both, the per-thread groups (common/row_groups.wgsl) with quantize_both, the segment
// tree of main, main_row and main_whole (common/segments.wgsl) with im2col_quantize, and the
// team's scale of main and main_row (common/team_scale.wgsl) with both of them. With
// p.samples > 1 every entry writes that many stochastic samples stacked (SMP,
// common/samples.wgsl): x's maximum is taken once, each sample packed with its own draws.
// Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED: no loop counter of naga's): every loop
// here and in the included units steps its counter by a positive constant (1, 4, WG; main_row by
// p.seg, at least 1) or halves it, towards a bound fixed before the loop (a params field, the
// format's codes per word, 24 in recip_rne); the bounds are buffer lengths, far below u32's end,
// so every loop ends.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 codes (read_write u32, words per sample),
// 3 scales (read_write f32, n_groups per sample), 4 step (StepState: the stream base of stochastic
// draws), 5 tensor_amax (read-write u32: the tensor's maximum as f32 bits, NVFP4 only; written by
// main_whole alone), 6 mask (read f32: with
// p.masked, x[i] counts as 0 unless mask[i] > 0: the quantized ReLU gradient without relu_backward's
// launch and its output); `main_whole_both` and `main_group_both` only: 7 codes_t, 8 scales_t
// (read_write: xᵀ's), 9 pt (QuantParams of xᵀ's layout).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// x again, as vec4s (the _v4 entries only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read_write> tensor_amax: array<u32>;
@group(0) @binding(6) var<storage, read> mask: array<f32>;
// mask again, as vec4s (the _v4 entries only).
@group(0) @binding(6) var<storage, read> mask4: array<vec4<f32>>;

// Threads per workgroup of the thread-per-group entries (main_row_short, main_group and their _v4
// forms): 256 as the others', 64 on a CPU adapter (QuantizeFused sets it there), where llvmpipe
// runs each workgroup on one of its threads: a tensor of 128 rows (the MLP's input batch) made one
// workgroup, one core, of 256. Only which thread takes which group changes, never a bit.
override THREAD_WG: u32 = 256u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = flat_workgroup(wg, nwg);
    let span = p.aux0;
    let row = (tile / p.tiles_per_row) * (WG / span) + lid / span;
    let word = (tile % p.tiles_per_row) * span + lid % span;
    let valid = tile < p.total_tiles && row < p.rows && word < p.words_per_row;
    var m = 0u;
    if (valid) {
        m = word_amax(row, word);
    }
    let inv = team_inv_scale(lid, p.seg, group_of(p, row, word * fmt_per_word()), valid, m);
    if (valid) {
        store_words(row, word, word + 1u, 1u, inv);
    }
}

// The largest of the workgroup's m (every thread's call, in uniform control flow; all get it).
fn workgroup_max(lid: u32, m: u32) -> u32 {
    segment_max(lid, WG, m);
    return seg_red[0];
}

@compute @workgroup_size(256)
fn main_row(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lane = lid % p.seg;
    let row = flat_workgroup(wg, nwg) * (WG / p.seg) + lid / p.seg;
    let valid = row < p.rows;
    var m = 0u;
    if (valid) {
        for (var word = lane; word < p.words_per_row; word += p.seg) {
            m = max(m, word_amax(row, word));
        }
    }
    let inv = team_inv_scale(lid, p.seg, row, valid, m);
    if (valid) {
        store_words(row, lane, p.words_per_row, p.seg, inv);
    }
}

// main_row reading x (and the mask) as vec4s: the format's codes per word and the row length
// multiples of 4.
@compute @workgroup_size(256)
fn main_row_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lane = lid % p.seg;
    let row = flat_workgroup(wg, nwg) * (WG / p.seg) + lid / p.seg;
    let valid = row < p.rows;
    var m = 0u;
    if (valid) {
        for (var word = lane; word < p.words_per_row; word += p.seg) {
            m = max(m, word_amax4(row, word));
        }
    }
    let inv = team_inv_scale(lid, p.seg, row, valid, m);
    if (valid) {
        store_words4(row, lane, p.words_per_row, p.seg, inv);
    }
}

@compute @workgroup_size(THREAD_WG)
fn main_row_short(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wg, nwg) * THREAD_WG + lid;
    if (row >= p.rows) {
        return;
    }
    var m = 0u;
    for (var word = 0u; word < p.words_per_row; word++) {
        m = max(m, word_amax(row, word));
    }
    let si = group_scale_of(bitcast<f32>(m));
    store_scale(row, si.x);
    store_words(row, 0u, p.words_per_row, 1u, si.y);
}

@compute @workgroup_size(THREAD_WG)
fn main_group(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let per_row = (p.words_per_row + p.seg - 1u) / p.seg;
    let t = flat_workgroup(wg, nwg) * THREAD_WG + lid;
    if (t >= p.rows * per_row) {
        return;
    }
    let g = group_span(t, per_row, p.seg);
    store_group(g, group_scale_of(bitcast<f32>(span_amax(g))));
}

@compute @workgroup_size(THREAD_WG)
fn main_row_short_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wg, nwg) * THREAD_WG + lid;
    if (row >= p.rows) {
        return;
    }
    store_group4(vec3<u32>(row, 0u, p.words_per_row));
}

@compute @workgroup_size(THREAD_WG)
fn main_group_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let per_row = (p.words_per_row + p.seg - 1u) / p.seg;
    let t = flat_workgroup(wg, nwg) * THREAD_WG + lid;
    if (t >= p.rows * per_row) {
        return;
    }
    store_group4(group_span(t, per_row, p.seg));
}

// main_whole's first part: the tensor's maximum reduced by the one workgroup (stored to
// tensor_amax[0] for later quantizers of the same tensor), then x's blocks quantized with it.
fn whole_blocks(lid: u32) -> u32 {
    var m = 0u;
    for (var i = lid; i < p.rows * p.cols; i += WG) {
        m = max(m, amax_bits(load_x(i)));
    }
    let whole = workgroup_max(lid, m);
    if (lid == 0u) {
        tensor_amax[0] = whole;
    }
    let per_row = (p.words_per_row + p.seg - 1u) / p.seg;
    for (var t = lid; t < p.rows * per_row; t += WG) {
        let g = group_span(t, per_row, p.seg);
        store_group(g, fmt_group_scale(bitcast<f32>(span_amax(g)), bitcast<f32>(whole)));
    }
    return whole;
}

@compute @workgroup_size(256)
fn main_whole(@builtin(local_invocation_index) lid: u32) {
    whole_blocks(lid);
}

// Entry `main_whole_both` (NVFP4, a weight W that the forward packs along its rows and the input
// gradient along its columns): main_whole, and in the same launch the blocks of L = xᵀ
// ([p.cols, p.rows], laid out as pt says, round to nearest) with the same maximum: the codes and
// scales quantize_transpose_fused writes for xᵀ given that maximum (each block's maximum, scale
// and codes as it computes them), into codes_t and scales_t (bindings 7, 8; pt at binding 9).
@group(0) @binding(7) var<storage, read_write> codes_t: array<u32>;
@group(0) @binding(8) var<storage, read_write> scales_t: array<f32>;
@group(0) @binding(9) var<uniform> pt: QuantParams;

// Block t of L = xᵀ (block t % blocks of row t / blocks), quantized with the tensor's maximum
// `whole`: x[c·p.cols + r] for c in [b·B, b·B + B).
fn store_t_block(t: u32, blocks: u32, whole: f32) {
    let per_word = fmt_per_word();
    let bits = fmt_bits();
    let r = t / blocks;
    let c0 = (t % blocks) * pt.block_div;
    let c1 = min(c0 + pt.block_div, pt.cols);
    var m = 0u;
    for (var c = c0; c < c1; c++) {
        m = max(m, amax_bits(x[c * p.cols + r]));
    }
    let si = fmt_group_scale(bitcast<f32>(m), whole);
    scales_t[r * pt.row_mul + t % blocks] = si.x;
    for (var w = c0 / per_word; w < (c1 + per_word - 1u) / per_word; w++) {
        var packed = 0u;
        for (var i = 0u; i < per_word; i++) {
            let c = w * per_word + i;
            if (c < pt.cols) {
                packed |= fmt_quantize(x[c * p.cols + r], si.y, false, 0u) << (i * bits);
            }
        }
        codes_t[r * pt.words_per_row + w] = packed;
    }
}

@compute @workgroup_size(256)
fn main_whole_both(@builtin(local_invocation_index) lid: u32) {
    let whole = bitcast<f32>(whole_blocks(lid));
    let blocks = (pt.cols + pt.block_div - 1u) / pt.block_div;
    for (var t = lid; t < pt.rows * blocks; t += WG) {
        store_t_block(t, blocks, whole);
    }
}

// Entry `main_group_both` (NVFP4, a weight too large for one workgroup): both orientations with
// the maximum in tensor_amax[0] (written by an absmax launch before this one), a thread per
// block: the blocks of x as main_group quantizes them (threads below rows · blocks per row), then
// those of L = xᵀ as main_whole_both does. The bits of main_group and quantize_transpose_fused
// given that maximum, in one launch where they take two.
@compute @workgroup_size(THREAD_WG)
fn main_group_both(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let per_row = (p.words_per_row + p.seg - 1u) / p.seg;
    let t = flat_workgroup(wg, nwg) * THREAD_WG + lid;
    let own = p.rows * per_row;
    if (t < own) {
        let g = group_span(t, per_row, p.seg);
        store_group(g, group_scale_of(bitcast<f32>(span_amax(g))));
        return;
    }
    let blocks = (pt.cols + pt.block_div - 1u) / pt.block_div;
    if (t - own < pt.rows * blocks) {
        store_t_block(t - own, blocks, bitcast<f32>(tensor_amax[0]));
    }
}
