// quantize_fused: one-pass quantizer for per-block and per-row scales. Each workgroup owns whole
// scale groups, so the absmax reduction, the scale and the packing happen in one launch. Same
// output as absmax -> scale -> quantize (reference: src/reference/quantize_fused.rs).
// Loads are coalesced: a workgroup stages up to 2048 consecutive elements in workgroup memory
// (thread t loads elements t, t + 256, …), and each thread then packs whole words from there.
// Entry `main`: per-block groups of `seg` words (seg a power of two <= 256); tiles as in quantize.
// Entry `main_row`: one workgroup per row (flat workgroup index = row), for per-row scales.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 codes (read_write u32),
// 3 scales (read_write f32, n_groups).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;

var<workgroup> red: array<u32, 256>;
var<workgroup> seg_inv: array<f32, 256>;
// Staged input: STAGE consecutive elements (256 words of int8, 256 of 4-bit codes).
const STAGE: u32 = 2048u;
var<workgroup> stage: array<f32, 2048>;

// Stages elements [first, first + count) of x (count <= STAGE); zeros past count.
fn stage_load(first: u32, count: u32, lid: u32) {
    for (var j = 0u; j < STAGE / WG; j++) {
        let i = j * WG + lid;
        var v = 0.0;
        if (i < count) {
            v = x[first + i];
        }
        stage[i] = v;
    }
}

// Packs staged word `w` (elements w·per_word … of the stage, column col0 + w·per_word of `row`).
fn pack_staged(row: u32, col0: u32, w: u32, s_inv: f32) -> u32 {
    let per_word = fmt_per_word();
    let b = fmt_bits();
    let stochastic = p.stochastic == 1u;
    var packed = 0u;
    for (var i = 0u; i < per_word; i++) {
        let col = col0 + w * per_word + i;
        if (col < p.cols) {
            var r = 0u;
            if (stochastic) {
                r = rng_draw24(p.key, row * p.cols + col);
            }
            packed |= fmt_quantize(stage[w * per_word + i], s_inv, stochastic, r) << (i * b);
        }
    }
    return packed;
}

fn staged_amax(col0: u32, w: u32) -> u32 {
    let per_word = fmt_per_word();
    var m = 0u;
    for (var i = 0u; i < per_word; i++) {
        if (col0 + w * per_word + i < p.cols) {
            m = max(m, amax_bits(stage[w * per_word + i]));
        }
    }
    return m;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = flat_workgroup(wg, nwg);
    let in_range = tile < p.total_tiles;
    let row = tile / p.tiles_per_row;
    let word0 = (tile % p.tiles_per_row) * WG;
    let word = word0 + lid;
    let valid = in_range && word < p.words_per_row;
    let col0 = word0 * fmt_per_word();
    var count = 0u;
    if (in_range) {
        count = min(WG * fmt_per_word(), p.cols - col0);
    }
    stage_load(row * p.cols + col0, count, lid);
    workgroupBarrier();
    var m = 0u;
    if (valid) {
        m = staged_amax(col0, lid);
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = p.seg / 2u; s > 0u; s = s / 2u) {
        if ((lid & (p.seg - 1u)) < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let leader = (lid & (p.seg - 1u)) == 0u;
    if (leader) {
        let si = fmt_scale_for_amax(bitcast<f32>(red[lid]));
        seg_inv[lid / p.seg] = si.y;
        if (valid) {
            scales[group_of(p, row, word * fmt_per_word())] = si.x;
        }
    }
    workgroupBarrier();
    if (valid) {
        codes[row * p.words_per_row + word] = pack_staged(row, col0, lid, seg_inv[lid / p.seg]);
    }
}

@compute @workgroup_size(256)
fn main_row(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wg, nwg);
    let valid = row < p.rows;
    // Absmax: thread t reads elements t, t + 256, … (coalesced).
    var m = 0u;
    if (valid) {
        for (var i = lid; i < p.cols; i += WG) {
            m = max(m, amax_bits(x[row * p.cols + i]));
        }
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let si = fmt_scale_for_amax(bitcast<f32>(red[0]));
        seg_inv[0] = si.y;
        if (valid) {
            scales[row] = si.x;
        }
    }
    workgroupBarrier();
    let s_inv = seg_inv[0];
    // Pack: the row again (from cache, mostly), STAGE elements at a time.
    let words_per_stage = STAGE / fmt_per_word();
    for (var col0 = 0u; col0 < p.cols; col0 += STAGE) {
        var count = 0u;
        if (valid) {
            count = min(STAGE, p.cols - col0);
        }
        stage_load(row * p.cols + col0, count, lid);
        workgroupBarrier();
        for (var w = lid; w < words_per_stage; w += WG) {
            let word = col0 / fmt_per_word() + w;
            if (valid && word < p.words_per_row) {
                codes[row * p.words_per_row + word] = pack_staged(row, col0, w, s_inv);
            }
        }
        workgroupBarrier();
    }
}
