// softmax: attention's row softmax and its backward, one thread per row of a [rows, cols] tensor
// of scores (rows = batches · queries, cols = keys). Row r is query q = r % queries; with
// `causal`, keys k > q are masked (probability 0).
// forward:  p[k] = exp(scale·s[k] − m) / Σ exp(scale·s[j] − m), m the row's largest scale·s over
//           the unmasked keys (numerically stable); masked p[k] = 0.
// backward: ds[k] = scale · p[k] · (dp[k] − Σ_j p[j]·dp[j]) (the gradient of the scores).
// Entries forward_v4 and backward_v4 (cols a multiple of 4): the same arithmetic in the same order
// (maxima and sums still take one value at a time, masked keys skipped), each row read and
// written through the *4 views of the same bindings (a thread's loads are gathers across SIMD
// lanes on a CPU adapter, lane by lane on llvmpipe, so a vec4 costs about what one f32 does). One
// entry never reaches both views of a binding.
// Entries forward_rows and backward_rows (a GPU's layout, any cols; common/row_stage.wgsl): a
// workgroup per row, where a thread per row leaves most of a GPU idle (the GPT's 4,096 rows of
// scores: 16 workgroups) and loads a row apart. The row's maximum is each thread's over its keys,
// then the largest of those (the same in any order); thread 0 adds the staged values with the
// thread-per-row entries' expressions, in their order, so both layouts give the same bits; the
// exps and stores spread over the threads.
// exp is accurate to a few ulps in WGSL: the reference is compared within a stated bound.
// Reference: src/reference/softmax.rs. Bindings: 0 params {rows, cols, queries, causal, scale},
// 1 x (scores; the backward's p), 2 dp (backward), 3 out (p, or ds).

struct SoftmaxParams {
    rows: u32,
    cols: u32,
    queries: u32,
    causal: u32,
    scale: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: SoftmaxParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dp: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// The same buffers as vec4s (the _v4 entries only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dp4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

// Keys of row r that are not masked: [0, end).
fn row_end(r: u32) -> u32 {
    if (p.causal == 1u) {
        return min(r % p.queries + 1u, p.cols);
    }
    return p.cols;
}

// p at key k of the row at base: its exp over the sum (inv = 1/sum), 0 where masked (forward and
// forward_rows: one expression, the same bits).
fn store_p(base: u32, k: u32, end: u32, m: f32, inv: f32) {
    var v = 0.0;
    if (k < end) {
        v = exp(p.scale * x[base + k] - m) * inv;
    }
    out[base + k] = v;
}

// ds at key k of the row at base (backward and backward_rows: one expression, the same bits).
fn store_ds(base: u32, k: u32, dot: f32) {
    out[base + k] = p.scale * (x[base + k] * (dp[base + k] - dot));
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let end = row_end(r);
    var m = p.scale * x[base];
    for (var k = 1u; k < end; k++) {
        m = max(m, p.scale * x[base + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < end; k++) {
        s += exp(p.scale * x[base + k] - m);
    }
    let inv = 1.0 / s;
    for (var k = 0u; k < p.cols; k++) {
        store_p(base, k, end, m, inv);
    }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var dot = 0.0;
    for (var k = 0u; k < p.cols; k++) {
        dot += x[base + k] * dp[base + k];
    }
    for (var k = 0u; k < p.cols; k++) {
        store_ds(base, k, dot);
    }
}

// forward_v4's steps: m (max) or s (sum) taking v's components, keys k .. k + 3, in order, those
// below end only.
fn max4(m: f32, v: vec4<f32>, k: u32, end: u32) -> f32 {
    var r = m;
    if (k < end) {
        r = max(r, v.x);
    }
    if (k + 1u < end) {
        r = max(r, v.y);
    }
    if (k + 2u < end) {
        r = max(r, v.z);
    }
    if (k + 3u < end) {
        r = max(r, v.w);
    }
    return r;
}

fn sum4(s: f32, v: vec4<f32>, k: u32, end: u32) -> f32 {
    var r = s;
    if (k < end) {
        r += v.x;
    }
    if (k + 1u < end) {
        r += v.y;
    }
    if (k + 2u < end) {
        r += v.z;
    }
    if (k + 3u < end) {
        r += v.w;
    }
    return r;
}

@compute @workgroup_size(256)
fn forward_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let c4 = p.cols / 4u;
    let base = r * c4;
    let end = row_end(r);
    let used = (end + 3u) / 4u;
    // As forward: from key 0's scaled score (max with itself changes nothing).
    var m = p.scale * x4[base].x;
    for (var k = 0u; k < used; k++) {
        m = max4(m, p.scale * x4[base + k], 4u * k, end);
    }
    var s = 0.0;
    for (var k = 0u; k < used; k++) {
        s = sum4(s, exp(p.scale * x4[base + k] - m), 4u * k, end);
    }
    let inv = 1.0 / s;
    for (var k = 0u; k < c4; k++) {
        let keys = vec4<u32>(4u * k) + vec4<u32>(0u, 1u, 2u, 3u);
        out4[base + k] = select(vec4<f32>(), exp(p.scale * x4[base + k] - m) * inv, keys < vec4<u32>(end));
    }
}

@compute @workgroup_size(256)
fn backward_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.rows) {
        return;
    }
    let c4 = p.cols / 4u;
    let base = r * c4;
    // Whole rows (no masked keys): every component, in order.
    var dot = 0.0;
    for (var k = 0u; k < c4; k++) {
        let v = x4[base + k] * dp4[base + k];
        dot = dot + v.x + v.y + v.z + v.w;
    }
    for (var k = 0u; k < c4; k++) {
        out4[base + k] = p.scale * (x4[base + k] * (dp4[base + k] - dot));
    }
}

// forward_rows and backward_rows: common/row_stage.wgsl's layout.
@compute @workgroup_size(64)
fn forward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.x + wg.y * nwg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let end = row_end(r);
    // Each thread's maximum from key 0's (always unmasked; max with itself changes nothing).
    var mt = p.scale * x[base];
    for (var k = lid; k < end; k += ROW_WG) {
        mt = max(mt, p.scale * x[base + k]);
    }
    stage_a[lid] = mt;
    workgroupBarrier();
    if (lid == 0u) {
        var m = stage_a[0];
        for (var i = 1u; i < ROW_WG; i++) {
            m = max(m, stage_a[i]);
        }
        row_stats.x = m;
    }
    workgroupBarrier();
    let m = row_stats.x;
    var s = 0.0;
    for (var k0 = 0u; k0 < end; k0 += CHUNK) {
        let len = min(CHUNK, end - k0);
        for (var i = lid; i < len; i += ROW_WG) {
            stage_a[i] = exp(p.scale * x[base + k0 + i] - m);
        }
        s = staged_round(lid, s, len);
    }
    if (lid == 0u) {
        row_stats.y = 1.0 / s;
    }
    workgroupBarrier();
    let inv = row_stats.y;
    for (var k = lid; k < p.cols; k += ROW_WG) {
        store_p(base, k, end, m, inv);
    }
}

@compute @workgroup_size(64)
fn backward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.x + wg.y * nwg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    // Whole rows (no masked keys): every key, in order.
    var dot = 0.0;
    for (var k0 = 0u; k0 < p.cols; k0 += CHUNK) {
        let len = min(CHUNK, p.cols - k0);
        for (var i = lid; i < len; i += ROW_WG) {
            stage_a[i] = x[base + k0 + i];
            stage_b[i] = dp[base + k0 + i];
        }
        workgroupBarrier();
        if (lid == 0u) {
            for (var i = 0u; i < len; i++) {
                dot = dot + stage_a[i] * stage_b[i];
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        row_stats.x = dot;
    }
    workgroupBarrier();
    let d = row_stats.x;
    for (var k = lid; k < p.cols; k += ROW_WG) {
        store_ds(base, k, d);
    }
}
