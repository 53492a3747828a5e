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
// pixels per output row; the group's scale (fmt_scale_for_amax, as the scale kernel's); then its
// values packed in column order (common/pack_stream.wgsl), per output row its zeros, its run of x
// and its zeros, so every value, draw index (row·cols + col) and code is the one
// quantize_transpose_fused forms.
// Formats without a tensor-wide scale (not NVFP4); SMP's stacked samples as the one-pass
// quantizers store them (common/samples.wgsl).
// Indices: rows past p.rows return; a run's first x index is formed from y and x clamped into the
// image (inside it, or an empty run's, unread), each step along a run stays inside, and the
// padding's zeros are never loaded, so every load is in range (the launcher checks x's length
// against the geometry, and codes and scales against the layout).
// Loops left unbounded (lowbit::shaders::LOOPS_UNBOUNDED: no loop counter of naga's): every loop
// here and in the included units steps its counter by a positive constant (1) or by a run of at
// least one column (the pixels left in the output row, or in the group, both at least 1 while the
// loop runs), towards a bound fixed before the loop (a params field, the group's end, the format's
// codes per word, 24 in recip_rne); the bounds are buffer lengths, far below u32's end, so every
// loop ends.
// Reference: src/reference/im2col_quantize_transpose.rs (im2col, then quantize_transpose_fused).
// Bindings: 0 params (QuantParams of L), 1 x (read f32, NHWC), 2 codes (read_write u32),
// 3 scales (read_write f32), 4 step (StepState), 5 conv (ConvParams).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// x again, as vec4s (main_v4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<uniform> conv: ConvParams;

// Row r of L: its tap's offsets from an output pixel's (oy·stride, ox·stride) into the image
// (dy = ky − pad, dx = kx − pad), its channel, and the run of output columns [ox_lo, ox_hi) whose
// x lies inside the image.
struct Tap {
    dy: i32,
    dx: i32,
    ch: u32,
    ox_lo: u32,
    ox_hi: u32,
}

fn tap_of(r: u32) -> Tap {
    let ch = r % conv.c;
    let kx = (r / conv.c) % conv.kw;
    let ky = r / (conv.c * conv.kw);
    let dx = i32(kx) - i32(conv.pad);
    let s = i32(conv.stride);
    // ox·s + dx ≥ 0 ⇔ ox ≥ ceil(−dx / s); ox·s + dx < w ⇔ ox < ceil((w − dx) / s) (numerators
    // divided only where not negative, or at most s − 1 when w ≤ dx: then the run is empty).
    let lo = min(select(0, (s - 1 - dx) / s, dx < 0), i32(conv.ow));
    let hi = clamp((i32(conv.w) - dx + s - 1) / s, lo, i32(conv.ow));
    return Tap(i32(ky) - i32(conv.pad), dx, ch, u32(lo), u32(hi));
}

// An output pixel: column (b·oh + oy)·ow + ox of L.
struct Pix {
    b: u32,
    oy: u32,
    ox: u32,
}

fn pix_of(j: u32) -> Pix {
    return Pix(j / (conv.oh * conv.ow), (j / conv.ow) % conv.oh, j % conv.ow);
}

// The first pixel of the output row after q's.
fn next_row(q: Pix) -> Pix {
    let last = q.oy + 1u == conv.oh;
    return Pix(q.b + u32(last), select(q.oy + 1u, 0u, last), 0u);
}

// Where tap t of pixel q reads x (an index in values; y and x clamped into the image, where the
// callers take a run's first pixel, inside it, or an empty run's, whose index goes unread).
fn x_index(t: Tap, q: Pix) -> u32 {
    let y = clamp(i32(q.oy * conv.stride) + t.dy, 0, i32(conv.h) - 1);
    let xx = clamp(i32(q.ox * conv.stride) + t.dx, 0, i32(conv.w) - 1);
    return ((q.b * conv.h + u32(y)) * conv.w + u32(xx)) * conv.c + t.ch;
}

// Where tap t reads along the output row of q (columns q.ox .. end): the run [lo, hi) inside
// the image (empty where the row's y is outside), zeros before and after it.
fn run_of(t: Tap, q: Pix, end: u32) -> vec2<u32> {
    let y = i32(q.oy * conv.stride) + t.dy;
    if (y < 0 || y >= i32(conv.h)) {
        return vec2<u32>(end, end);
    }
    let lo = clamp(t.ox_lo, q.ox, end);
    return vec2<u32>(lo, clamp(t.ox_hi, lo, end));
}

// The maximum (amax_bits) of tap t's row of L over columns [c0, c1), one output row's run of
// pixels inside the image at a time (main_v4's twin: group_max4).
fn group_max(t: Tap, c0: u32, c1: u32) -> u32 {
    var m = 0u;
    var q = pix_of(c0);
    let step = conv.stride * conv.c;
    for (var col = c0; col < c1;) {
        let n = min(conv.ow - q.ox, c1 - col);
        let run = run_of(t, q, q.ox + n);
        var i = x_index(t, Pix(q.b, q.oy, run.x));
        for (var ox = run.x; ox < run.y; ox++) {
            m = max(m, amax_bits(x[i]));
            i += step;
        }
        col += n;
        q = next_row(q);
    }
    return m;
}

// Columns [c0, c1) of tap t's row of L through pack_push, one output row at a time: its zeros, its
// run of x (a step of stride·c values per column), its zeros.
fn pack_cols(t: Tap, c0: u32, c1: u32) {
    var q = pix_of(c0);
    let step = conv.stride * conv.c;
    for (var col = c0; col < c1;) {
        let n = min(conv.ow - q.ox, c1 - col);
        let end = q.ox + n;
        let run = run_of(t, q, end);
        for (var ox = q.ox; ox < run.x; ox++) {
            pack_push(0.0);
        }
        var i = x_index(t, Pix(q.b, q.oy, run.x));
        for (var ox = run.x; ox < run.y; ox++) {
            pack_push(x[i]);
            i += step;
        }
        for (var ox = run.y; ox < end; ox++) {
            pack_push(0.0);
        }
        col += n;
        q = next_row(q);
    }
}

// The groups of L along a row: p.block_div columns each (per row: one group, the row).
fn group_len() -> u32 {
    return min(p.block_div, p.cols);
}

// Row `row` of L by one thread (entry main).
fn row_thread(row: u32) {
    if (row >= p.rows) {
        return;
    }
    let t = tap_of(row);
    let len = group_len();
    let groups = (p.cols + len - 1u) / len;
    for (var blk = 0u; blk < groups; blk++) {
        let c0 = blk * len;
        let si = fmt_scale_for_amax(bitcast<f32>(group_max(t, c0, min(c0 + len, p.cols))));
        store_scale(row * p.row_mul + blk, si.x);
        let c1 = min(c0 + len, p.cols);
        for (var smp = 0u; smp < p.samples; smp++) {
            pack_start(row, smp, c0, vec4<f32>(si.y));
            pack_cols(t, c0, c1);
            pack_flush();
        }
    }
}

// group_max for rows r0 .. r0 + 3 (tap t, channels t.ch .. t.ch + 3), x read as vec4s.
fn group_max4(t: Tap, c0: u32, c1: u32) -> vec4<u32> {
    var m = vec4<u32>();
    var q = pix_of(c0);
    let step = conv.stride * conv.c / 4u;
    for (var col = c0; col < c1;) {
        let n = min(conv.ow - q.ox, c1 - col);
        let run = run_of(t, q, q.ox + n);
        var i = x_index(t, Pix(q.b, q.oy, run.x)) / 4u;
        for (var ox = run.x; ox < run.y; ox++) {
            m = max(m, amax_bits4(x4[i]));
            i += step;
        }
        col += n;
        q = next_row(q);
    }
    return m;
}

// pack_cols for rows r0 .. r0 + 3 (tap t, channels t.ch .. t.ch + 3), x read as vec4s.
fn pack_cols4(t: Tap, c0: u32, c1: u32) {
    var q = pix_of(c0);
    let step = conv.stride * conv.c / 4u;
    for (var col = c0; col < c1;) {
        let n = min(conv.ow - q.ox, c1 - col);
        let end = q.ox + n;
        let run = run_of(t, q, end);
        for (var ox = q.ox; ox < run.x; ox++) {
            pack_push4(vec4<f32>());
        }
        var i = x_index(t, Pix(q.b, q.oy, run.x)) / 4u;
        for (var ox = run.x; ox < run.y; ox++) {
            pack_push4(x4[i]);
            i += step;
        }
        for (var ox = run.y; ox < end; ox++) {
            pack_push4(vec4<f32>());
        }
        col += n;
        q = next_row(q);
    }
}

// Rows r0 .. r0 + 3 of L by one thread (entry main_v4; channels, so L's rows, a multiple of 4).
fn row_thread4(r0: u32) {
    if (r0 >= p.rows) {
        return;
    }
    let t = tap_of(r0);
    let len = group_len();
    let groups = (p.cols + len - 1u) / len;
    for (var blk = 0u; blk < groups; blk++) {
        let c0 = blk * len;
        let m = group_max4(t, c0, min(c0 + len, p.cols));
        var inv = vec4<f32>();
        for (var j = 0u; j < 4u; j++) {
            let si = fmt_scale_for_amax(bitcast<f32>(m[j]));
            store_scale((r0 + j) * p.row_mul + blk, si.x);
            inv[j] = si.y;
        }
        let c1 = min(c0 + len, p.cols);
        for (var smp = 0u; smp < p.samples; smp++) {
            pack_start(r0, smp, c0, inv);
            pack_cols4(t, c0, c1);
            pack_flush4();
        }
    }
}

// 8 rows per workgroup: one 8-lane SIMD piece each, so that L's few rows spread over a CPU's cores.
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    row_thread(flat_workgroup(wg, nwg) * 8u + lid);
}

// Four rows per thread, 8 threads per workgroup.
@compute @workgroup_size(8)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    row_thread4((flat_workgroup(wg, nwg) * 8u + lid) * 4u);
}
