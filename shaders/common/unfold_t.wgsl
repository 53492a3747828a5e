// The rows of L = colsᵀ ([kh·kw·c, batch·oh·ow], cols what im2col writes) by one thread each, read
// from a convolution's input itself, shared by the kernels that quantize a convolution's
// transposed unfolded input (im2col_quantize_transpose, and im2col_quantize's entry that also
// quantizes cols): row r of L is tap (ky, kx) of channel ch, r = (ky·kw + kx)·c + ch, its column j
// the output pixel (b, oy, ox), j = (b·oh + oy)·ow + ox, holding x[b][oy·stride + ky − pad][ox·stride
// + kx − pad][ch], or 0 in the padding. It reads the including kernel's `p: QuantParams` (L's
// layout) and `conv: ConvParams`, the input through its `unfold_src(i)` (value i) and
// `unfold_src4(i)` (values 4i .. 4i + 3), takes the maxima of tap_thread4's groups from its
// `tap_group_max4(t, c0, c1)` (group_max4's, or the same maxima formed otherwise), and packs
// through pack_stream.wgsl.

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
            m = max(m, amax_bits(unfold_src(i)));
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
            pack_push(unfold_src(i));
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
fn tap_thread(row: u32) {
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
            m = max(m, amax_bits4(unfold_src4(i)));
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
            pack_push4(unfold_src4(i));
            i += step;
        }
        for (var ox = run.y; ox < end; ox++) {
            pack_push4(vec4<f32>());
        }
        col += n;
        q = next_row(q);
    }
}

// Group blk's scales of rows r0 .. r0 + 3 of L from their maxima m (amax_bits), into every
// sample; returns their inverses.
fn store_quad_scales(r0: u32, blk: u32, m: vec4<u32>) -> vec4<f32> {
    var inv = vec4<f32>();
    for (var j = 0u; j < 4u; j++) {
        let si = fmt_scale_for_amax(bitcast<f32>(m[j]));
        store_scale((r0 + j) * p.row_mul + blk, si.x);
        inv[j] = si.y;
    }
    return inv;
}

// Rows r0 .. r0 + 3 of L by one thread (entry main_v4; channels, so L's rows, a multiple of 4).
fn tap_thread4(r0: u32) {
    if (r0 >= p.rows) {
        return;
    }
    let t = tap_of(r0);
    let len = group_len();
    let groups = (p.cols + len - 1u) / len;
    for (var blk = 0u; blk < groups; blk++) {
        let c0 = blk * len;
        let inv = store_quad_scales(r0, blk, tap_group_max4(t, c0, min(c0 + len, p.cols)));
        let c1 = min(c0 + len, p.cols);
        for (var smp = 0u; smp < p.samples; smp++) {
            pack_start(r0, smp, c0, inv);
            pack_cols4(t, c0, c1);
            pack_flush4();
        }
    }
}
