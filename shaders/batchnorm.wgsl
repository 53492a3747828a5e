// batchnorm: batch normalization over the rows of a channels-last [rows, channels] tensor
// (rows = batch·height·width), with learnable scale γ and shift β and an optional ReLU after it.
// training:   mean[c] = Σ_r x / R, var[c] = Σ_r (x − mean)² / R, invstd[c] = 1/sqrt(var + eps),
//             and the variance for the running statistics, var·R/(R−1), kept in stats[2C..3C];
// The running statistics, running = (1 − momentum)·running + momentum·(mean, var·R/(R−1)), are
//             batchnorm_commit.wgsl's (many layers a launch, after the step's check).
// eval_stats: mean, invstd from the running statistics (inference).
// forward:    y = γ·(x − mean)·invstd + β, then ReLU if asked.
// backward sums, per channel, with g = dy masked by y > 0 under ReLU and x̂ = (x − mean)·invstd:
//             sums = [Σ g·x̂ (= dγ), Σ g (= dβ)].
// backward:   dx = γ·invstd/R · (R·g − Σg − x̂·Σg·x̂).
// The per-channel sums are two-level reductions, as in col_sum: the rows are cut into `chunks`
// chunks of `chunk_rows`, a first pass writes per-chunk sums (32 channels × 8 row lanes per
// workgroup, lanes added in order), a `finish_*` pass adds the chunks in order. The statistics
// take one pass over x (`moments_main`): per chunk j of n_j rows, its sum S_j and, about its own
// mean m_j = S_j / n_j, the squared deviations M_j = Σ (x − m_j)² (the chunk is read twice, from
// cache); `finish_moments` takes mean = Σ_j S_j / R (the bits of summing x chunk by chunk) and
// var·R = Σ_j (M_j + n_j·(m_j − mean)²) (Chan et al.'s merge of the chunks' moments, as exact as
// two passes over x and free of the cancellation of Σx² − R·mean²). The backward's sums
// (`partial_main`, then `finish_grad`) are Σg·x̂ and Σg. The partial sums need scratch space of
// chunks·2C ≤ rows·C values (rows ≥ 2), and use a buffer the next pass overwrites anyway: y in
// the forward pass, dx in the backward. `moments_thread` and `partial_thread` (CPU adapters,
// where a barrier splits the shader and costs more than the sums it orders): the same partial
// sums from one thread per (chunk, channel), its eight interleaved row lanes held in registers
// and added in lane order. Elementwise passes take one thread per element; on CPU adapters, with
// channels a multiple of 4, `forward_v4` and `backward_v4` take a vec4 of channels over V4_ROWS
// rows (the *4 views of the same bindings; the statistics loaded once), the same arithmetic per
// component.
// Reference: src/reference/batchnorm.rs (within a stated tolerance: sqrt is not exact in WGSL).
// Bindings: 0 params, 1 x, 2 stats [mean(C), invstd(C), unbiased var(C)], 3 affine [γ(C), β(C)],
// 4 running [mean(C), var(C)], 5 y, 6 dy, 7 dx, 8 sums [Σg·x̂(C), Σg(C)].
// backward_maxima: backward's dx, and the largest finite, normal |dx| per channel (or over all of
// dx) as ordered f32 bits, atomicMax'd into binding 4 (dx_amax, cleared by the launcher; the
// backward has no use for the running statistics there): absmax's maxima of dxᵀ's rows (or of the
// tensor), so that a quantizer of dxᵀ (a convolution's dYᵀ for its weight gradient, where that
// takes the two-pass chain) needs no absmax launch over dx. A workgroup takes `seg` channels ×
// 256 / seg row lanes over a span of rows, as absmax's main_t takes dxᵀ's rows; a max does not
// depend on order, so the maxima are absmax's bits, and each dx is backward's arithmetic.
// backward_block_maxima: the same for dxᵀ's blocks along its rows, `span_rows` rows of one
// channel each: a thread per (channel, block), channels fastest, storing its block's maximum at
// dx_amax[channel · spans + block] (each written by one thread).

struct NormParams {
    rows: u32,
    channels: u32,
    eps: f32,
    relu: u32,
    chunk_rows: u32,
    chunks: u32,
    // backward_maxima only: channels a workgroup (a power of two, 8 to 32), 1 for a maximum per
    // channel and 0 for one over all, and the rows of each of its `spans` spans (and of
    // backward_block_maxima's blocks).
    seg: u32,
    row_mul: u32,
    span_rows: u32,
    spans: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> affine: array<f32>;
@group(0) @binding(4) var<storage, read_write> running: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> sums: array<f32>;
// The same buffers as vec4s (forward_v4, backward_v4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> stats4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> affine4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dy4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> sums4: array<vec4<f32>>;
// Binding 4 as backward_maxima's and backward_block_maxima's maxima (no entry reaches both views).
@group(0) @binding(4) var<storage, read_write> dx_amax: array<atomic<u32>>;

fn flat(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 256u + lid;
}

const COLS: u32 = 32u;
const LANES: u32 = 8u;
var<workgroup> acc: array<f32, 512>;

// dy[i], 0 under ReLU unless y[i] > 0. Both loaded and one selected, as relu_backward and the
// quantizers' masks do: returning before the load of dy, in a branch that varies lane by lane,
// made the partial sums with ReLU 2-2.5x as slow as those without on llvmpipe.
fn masked_dy(i: u32) -> f32 {
    let g = dy[i];
    if (p.relu == 1u) {
        return select(0.0, g, y[i] > 0.0);
    }
    return g;
}

// Value i's (channel c's) terms of the backward's partial sums: (g·x̂, g).
fn partial_terms(i: u32, c: u32) -> vec2<f32> {
    return partial_terms_with(i, stats[c], stats[p.channels + c]);
}

// partial_terms given the channel's mean and 1/std.
fn partial_terms_with(i: u32, mean: f32, invstd: f32) -> vec2<f32> {
    let g = masked_dy(i);
    return vec2<f32>(g * ((x[i] - mean) * invstd), g);
}

@compute @workgroup_size(256)
fn partial_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tiles = (p.channels + COLS - 1u) / COLS;
    let wid = wg.x + wg.y * nwg.x;
    if (wid >= tiles * p.chunks) {
        return;
    }
    let chunk = wid / tiles;
    let c = (wid % tiles) * COLS + lid % COLS;
    let lane = lid / COLS;
    let start = chunk * p.chunk_rows;
    let end = min(start + p.chunk_rows, p.rows);
    var s0 = 0.0;
    var s1 = 0.0;
    if (c < p.channels) {
        for (var r = start + lane; r < end; r += LANES) {
            let t = partial_terms(r * p.channels + c, c);
            s0 += t.x;
            s1 += t.y;
        }
    }
    acc[lid] = s0;
    acc[256u + lid] = s1;
    workgroupBarrier();
    if (lane == 0u && c < p.channels) {
        var t0 = acc[lid];
        var t1 = acc[256u + lid];
        for (var l = 1u; l < LANES; l++) {
            t0 += acc[l * COLS + lid];
            t1 += acc[256u + l * COLS + lid];
        }
        let o = chunk * 2u * p.channels + c;
        dx[o] = t0;
        dx[o + p.channels] = t1;
    }
}

// Row r's terms of channel c for partial_thread, or +0 for a row past `end` (adding +0 leaves a
// sum that started at +0 unchanged: such a sum is never −0). Without a branch: a row past the end
// reads row end − 1 and its terms are dropped.
fn row_terms(r: u32, end: u32, c: u32, mean: f32, invstd: f32) -> vec2<f32> {
    let t = partial_terms_with(min(r, end - 1u) * p.channels + c, mean, invstd);
    return select(vec2<f32>(), t, r < end);
}

@compute @workgroup_size(256)
fn partial_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat(wg, nwg, lid);
    if (t >= p.chunks * p.channels) {
        return;
    }
    let chunk = t / p.channels;
    let c = t % p.channels;
    let start = chunk * p.chunk_rows;
    let end = min(start + p.chunk_rows, p.rows);
    // Lane l of partial_main sums rows start + l, start + l + 8, ...: component l of (a0_lo,
    // a0_hi) and (a1_lo, a1_hi) here, in registers (a private array indexed by a loop counter
    // is memory on a CPU adapter, each access lane by lane).
    var a0_lo = vec4<f32>();
    var a0_hi = vec4<f32>();
    var a1_lo = vec4<f32>();
    var a1_hi = vec4<f32>();
    let mean = stats[c];
    let invstd = stats[p.channels + c];
    for (var r0 = start; r0 < end; r0 += LANES) {
        let t0 = row_terms(r0, end, c, mean, invstd);
        let t1 = row_terms(r0 + 1u, end, c, mean, invstd);
        let t2 = row_terms(r0 + 2u, end, c, mean, invstd);
        let t3 = row_terms(r0 + 3u, end, c, mean, invstd);
        let t4 = row_terms(r0 + 4u, end, c, mean, invstd);
        let t5 = row_terms(r0 + 5u, end, c, mean, invstd);
        let t6 = row_terms(r0 + 6u, end, c, mean, invstd);
        let t7 = row_terms(r0 + 7u, end, c, mean, invstd);
        a0_lo += vec4<f32>(t0.x, t1.x, t2.x, t3.x);
        a0_hi += vec4<f32>(t4.x, t5.x, t6.x, t7.x);
        a1_lo += vec4<f32>(t0.y, t1.y, t2.y, t3.y);
        a1_hi += vec4<f32>(t4.y, t5.y, t6.y, t7.y);
    }
    // The lanes added in lane order, as partial_main adds them.
    let t0 = a0_lo.x + a0_lo.y + a0_lo.z + a0_lo.w + a0_hi.x + a0_hi.y + a0_hi.z + a0_hi.w;
    let t1 = a1_lo.x + a1_lo.y + a1_lo.z + a1_lo.w + a1_hi.x + a1_hi.y + a1_hi.z + a1_hi.w;
    let o = chunk * 2u * p.channels + c;
    dx[o] = t0;
    dx[o + p.channels] = t1;
}

// The rows of chunk `chunk`: (start, end).
fn chunk_rows(chunk: u32) -> vec2<u32> {
    let start = chunk * p.chunk_rows;
    return vec2<u32>(start, min(start + p.chunk_rows, p.rows));
}

// The chunk's two sums at y[chunk·2C + c] (S_j) and y[chunk·2C + C + c] (M_j).
fn store_moments(chunk: u32, c: u32, s: f32, m2: f32) {
    let o = chunk * 2u * p.channels + c;
    y[o] = s;
    y[o + p.channels] = m2;
}

@compute @workgroup_size(256)
fn moments_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tiles = (p.channels + COLS - 1u) / COLS;
    let wid = wg.x + wg.y * nwg.x;
    if (wid >= tiles * p.chunks) {
        return;
    }
    let chunk = wid / tiles;
    let col = lid % COLS;
    let c = (wid % tiles) * COLS + col;
    let lane = lid / COLS;
    let span = chunk_rows(chunk);
    var s = 0.0;
    if (c < p.channels) {
        for (var r = span.x + lane; r < span.y; r += LANES) {
            s += x[r * p.channels + c];
        }
    }
    acc[lid] = s;
    workgroupBarrier();
    // Every lane adds the chunk's lanes in order: the chunk's sum and mean, the same on each.
    var t = acc[col];
    for (var l = 1u; l < LANES; l++) {
        t += acc[l * COLS + col];
    }
    let mean = t / f32(span.y - span.x);
    var q = 0.0;
    if (c < p.channels) {
        for (var r = span.x + lane; r < span.y; r += LANES) {
            let d = x[r * p.channels + c] - mean;
            q += d * d;
        }
    }
    workgroupBarrier();
    acc[lid] = q;
    workgroupBarrier();
    if (lane == 0u && c < p.channels) {
        for (var l = 1u; l < LANES; l++) {
            q += acc[l * COLS + col];
        }
        store_moments(chunk, c, t, q);
    }
}

// Row r's value of channel c for moments_thread, or +0 past `end` (read from row end − 1 and
// dropped, without a branch; see row_terms).
fn row_x(r: u32, end: u32, c: u32) -> f32 {
    return select(0.0, x[min(r, end - 1u) * p.channels + c], r < end);
}

// Row r's (x − mean)² of channel c, or +0 past `end`.
fn row_dev2(r: u32, end: u32, c: u32, mean: f32) -> f32 {
    let d = x[min(r, end - 1u) * p.channels + c] - mean;
    return select(0.0, d * d, r < end);
}

@compute @workgroup_size(256)
fn moments_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat(wg, nwg, lid);
    if (t >= p.chunks * p.channels) {
        return;
    }
    let chunk = t / p.channels;
    let c = t % p.channels;
    let span = chunk_rows(chunk);
    let end = span.y;
    // moments_main's lane l: component l of (lo, hi), as in partial_thread.
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    for (var r = span.x; r < end; r += LANES) {
        lo += vec4<f32>(row_x(r, end, c), row_x(r + 1u, end, c), row_x(r + 2u, end, c), row_x(r + 3u, end, c));
        hi += vec4<f32>(row_x(r + 4u, end, c), row_x(r + 5u, end, c), row_x(r + 6u, end, c), row_x(r + 7u, end, c));
    }
    let s = lo.x + lo.y + lo.z + lo.w + hi.x + hi.y + hi.z + hi.w;
    let mean = s / f32(end - span.x);
    lo = vec4<f32>();
    hi = vec4<f32>();
    for (var r = span.x; r < end; r += LANES) {
        lo += vec4<f32>(row_dev2(r, end, c, mean), row_dev2(r + 1u, end, c, mean), row_dev2(r + 2u, end, c, mean),
                        row_dev2(r + 3u, end, c, mean));
        hi += vec4<f32>(row_dev2(r + 4u, end, c, mean), row_dev2(r + 5u, end, c, mean),
                        row_dev2(r + 6u, end, c, mean), row_dev2(r + 7u, end, c, mean));
    }
    store_moments(chunk, c, s, lo.x + lo.y + lo.z + lo.w + hi.x + hi.y + hi.z + hi.w);
}

@compute @workgroup_size(256)
fn finish_moments(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = flat(wg, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    var s = y[c];
    for (var k = 1u; k < p.chunks; k++) {
        s += y[k * 2u * p.channels + c];
    }
    let mean = s / f32(p.rows);
    var v = 0.0;
    for (var k = 0u; k < p.chunks; k++) {
        let span = chunk_rows(k);
        let n = f32(span.y - span.x);
        let o = k * 2u * p.channels + c;
        let d = y[o] / n - mean;
        v += y[o + p.channels] + n * d * d;
    }
    stats[c] = mean;
    stats[p.channels + c] = 1.0 / sqrt(v / f32(p.rows) + p.eps);
    stats[2u * p.channels + c] = v / f32(max(p.rows, 2u) - 1u);
}

@compute @workgroup_size(256)
fn finish_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = flat(wg, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    var t0 = dx[c];
    var t1 = dx[p.channels + c];
    for (var k = 1u; k < p.chunks; k++) {
        t0 += dx[k * 2u * p.channels + c];
        t1 += dx[k * 2u * p.channels + p.channels + c];
    }
    sums[c] = t0;
    sums[p.channels + c] = t1;
}

@compute @workgroup_size(256)
fn eval_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = flat(wg, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    stats[c] = running[c];
    stats[p.channels + c] = 1.0 / sqrt(running[p.channels + c] + p.eps);
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if (i >= p.rows * p.channels) {
        return;
    }
    let c = i % p.channels;
    var v = affine[c] * ((x[i] - stats[c]) * stats[p.channels + c]) + affine[p.channels + c];
    if (p.relu == 1u) {
        v = select(0.0, v, v > 0.0); // NaN becomes 0, as in every lowbit ReLU
    }
    y[i] = v;
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat(wg, nwg, lid);
    if (i >= p.rows * p.channels) {
        return;
    }
    dx[i] = dx_value(i, i % p.channels);
}

// Value i's (channel c's) dx.
fn dx_value(i: u32, c: u32) -> f32 {
    let g = masked_dy(i);
    let xh = (x[i] - stats[c]) * stats[p.channels + c];
    let n = f32(p.rows);
    return affine[c] * stats[p.channels + c] / n * (n * g - sums[p.channels + c] - xh * sums[c]);
}

@compute @workgroup_size(256)
fn backward_maxima(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tiles = (p.channels + p.seg - 1u) / p.seg;
    let wid = wg.x + wg.y * nwg.x;
    if (wid >= tiles * p.spans) {
        return;
    }
    let span = wid / tiles;
    let c = (wid % tiles) * p.seg + lid % p.seg;
    let lane = lid / p.seg;
    let start = span * p.span_rows;
    let end = min(start + p.span_rows, p.rows);
    var m = 0u;
    if (c < p.channels) {
        for (var r = start + lane; r < end; r += 256u / p.seg) {
            let i = r * p.channels + c;
            let v = dx_value(i, c);
            dx[i] = v;
            m = max(m, amax_bits(v));
        }
    }
    // The channel's maximum on each of its lanes, or over all channels the workgroup's on
    // thread 0 (p.row_mul is uniform, so every thread takes the same branch to the barriers).
    if (p.row_mul == 1u) {
        let t = lanes_max(lid, p.seg, m);
        if (lane == 0u && c < p.channels) {
            atomicMax(&dx_amax[c], t);
        }
    } else {
        let w = segment_max(lid, 256u, m);
        if (lid == 0u) {
            atomicMax(&dx_amax[0], w);
        }
    }
}

@compute @workgroup_size(256)
fn backward_block_maxima(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat(wg, nwg, lid);
    if (t >= p.channels * p.spans) {
        return;
    }
    let c = t % p.channels;
    let block = t / p.channels;
    let start = block * p.span_rows;
    let end = min(start + p.span_rows, p.rows);
    var m = 0u;
    for (var r = start; r < end; r++) {
        let i = r * p.channels + c;
        let v = dx_value(i, c);
        dx[i] = v;
        m = max(m, amax_bits(v));
    }
    atomicStore(&dx_amax[c * p.spans + block], m);
}

// Rows per thread of forward_v4 and backward_v4 (set by the launcher, `batchnorm::V4_ROWS`).
override V4_ROWS: u32;

// Thread t of forward_v4 / backward_v4: the vec4 of channels 4c .. 4c + 3 (c = t mod C/4) of
// rows V4_ROWS·(t div C/4) .. (channels a multiple of 4), the channel's statistics loaded once for
// all its rows (on a CPU adapter every load runs lane by lane, and loading them per vec4 of x
// took more than x's own loads and stores); `forward`'s and `backward`'s arithmetic per
// component.
fn v4_span(t: u32) -> vec3<u32> {
    let cq = p.channels / 4u;
    let r0 = (t / cq) * V4_ROWS;
    return vec3<u32>(t % cq, r0, min(r0 + V4_ROWS, p.rows));
}

@compute @workgroup_size(256)
fn forward_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat(wg, nwg, lid);
    let cq = p.channels / 4u;
    if (t >= (p.rows + V4_ROWS - 1u) / V4_ROWS * cq) {
        return;
    }
    let span = v4_span(t);
    let c = span.x;
    let gamma = affine4[c];
    let beta = affine4[cq + c];
    let mean = stats4[c];
    let invstd = stats4[cq + c];
    for (var r = span.y; r < span.z; r++) {
        let q = r * cq + c;
        var v = gamma * ((x4[q] - mean) * invstd) + beta;
        if (p.relu == 1u) {
            v = select(vec4<f32>(), v, v > vec4<f32>());
        }
        y4[q] = v;
    }
}

@compute @workgroup_size(256)
fn backward_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat(wg, nwg, lid);
    let cq = p.channels / 4u;
    if (t >= (p.rows + V4_ROWS - 1u) / V4_ROWS * cq) {
        return;
    }
    let span = v4_span(t);
    let c = span.x;
    let mean = stats4[c];
    let invstd = stats4[cq + c];
    let sum_gx = sums4[c];
    let sum_g = sums4[cq + c];
    let n = f32(p.rows);
    // backward's affine·invstd/n, evaluated as there (left to right) once.
    let k = affine4[c] * invstd / n;
    for (var r = span.y; r < span.z; r++) {
        let q = r * cq + c;
        var g = dy4[q];
        if (p.relu == 1u) {
            g = select(vec4<f32>(), g, y4[q] > vec4<f32>());
        }
        let xh = (x4[q] - mean) * invstd;
        dx4[q] = k * (n * g - sum_g - xh * sum_gx);
    }
}
