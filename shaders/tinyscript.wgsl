// tinyscript: TinyScript's non-uniform quantizer (spec: src/tinyscript.rs, which documents the
// format, signed and unsigned tables, and the integer arithmetic repeated here), and the moments
// its Weibull fit needs.
// moments_partial: workgroup w sums |x| and x² over elements [w·CHUNK, (w+1)·CHUNK) (thread t
//                  takes t, t + 256, …; then a tree over the threads) and takes their absmax;
//                  partial[3w..3w+3] = (Σ|x|, Σx², absmax bits). Non-finite and subnormal values
//                  count as 0, as in absmax.
// moments_finish:  one workgroup adds the partials in the same tree order: out = (Σ|x|, Σx², max).
// quantize_row:    one workgroup per row: absmax, scale = absmax (inv = recip_rne), codes. With
//                  `transposed`, x is stored [cols, rows] and its transpose is quantized (the
//                  random draw of element (row, col) still uses index row·cols + col).
// quantize_row_thread: quantize_row by one thread per row, no workgroup memory or barriers (CPU
//                  adapters, tensors of 128 rows or more, or of at most 2^18 values: on llvmpipe
//                  a barrier suspends every 8-lane piece of the workgroup in turn, and the tree
//                  takes nine); the same maximum, scale and codes.
// quantize_row_thread_v4: quantize_row_thread reading x (and the mask) as vec4s, for x in its own
//                  orientation with a multiple of 4 columns: llvmpipe loads lane by lane, so a vec4
//                  costs about what one f32 does. A row's codes are packed as they come
//                  (pack_next), the words of row_word.
// quantize_quad_t: for transposed x with a multiple of 4 rows, a thread per four rows (QUAD_WG a
//                  workgroup): column c of those rows is one vec4 of x, and their four codes are
//                  packed side by side, the same words as quantize_row_thread's.
// quantize_quad_team_t: for transposed x with a multiple of 4 rows, where a CPU adapter does not
//                  take threads (fewer than 128 rows, more than 2^18 values: a convolution's dYᵀ,
//                  a few rows of batch·h·w), a workgroup per four rows: quantize_row's tree on
//                  their four maxima at once, then a thread per word of the four rows, reading a
//                  column's four values as one vec4.
// dequantize:      one thread per element.
// Reference: src/reference/tinyscript.rs (codes and scales bit-exact; moments within a bound).
// Stochastic draws use key rng_key(seed, stream + StepState.stream_base).
// Bindings: 0 params, 1 x (read), 2 codes, 3 scales, 4 levels (read, fixed point), 5 out,
// 6 step (StepState), 7 mask (read; the quantize entries with `masked` quantize x where
// mask > 0 and 0 elsewhere: ReLU's backward on load, the bits of quantizing relu_backward's
// output, with y as the mask; unmasked, the launcher binds x again).

struct TsParams {
    rows: u32,
    cols: u32,
    words_per_row: u32,
    bits: u32,
    n_levels: u32,
    seed: u32,
    stochastic: u32,
    n: u32,
    transposed: u32,
    signed: u32,
    stream: u32,
    masked: u32,
}

@group(0) @binding(0) var<uniform> p: TsParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<storage, read> levels: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> st: StepState;
@group(0) @binding(7) var<storage, read> mask: array<f32>;
// x and mask again, as vec4s (quantize_row_thread_v4 and the quad entries: an entry touches x or
// x4, never both).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> mask4: array<vec4<f32>>;

const CHUNK: u32 = 4096u;
const ONE: u32 = 16777216u;
var<workgroup> s_abs: array<f32, 256>;
var<workgroup> s_sq: array<f32, 256>;
var<workgroup> s_max: array<u32, 256>;
var<workgroup> row_inv: f32;

fn tree(lid: u32) {
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (lid < s) {
            s_abs[lid] = s_abs[lid] + s_abs[lid + s];
            s_sq[lid] = s_sq[lid] + s_sq[lid + s];
            s_max[lid] = max(s_max[lid], s_max[lid + s]);
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn moments_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let w = flat_workgroup(wg, nwg);
    let first = w * CHUNK;
    var a = 0.0;
    var q = 0.0;
    var m = 0u;
    for (var i = first + lid; i < min(first + CHUNK, p.n); i += 256u) {
        let b = amax_bits(x[i]);
        let v = bitcast<f32>(b);
        a = a + v;
        q = q + v * v;
        m = max(m, b);
    }
    s_abs[lid] = a;
    s_sq[lid] = q;
    s_max[lid] = m;
    workgroupBarrier();
    tree(lid);
    if (lid == 0u && first < p.n) {
        out[3u * w] = s_abs[0];
        out[3u * w + 1u] = s_sq[0];
        out[3u * w + 2u] = bitcast<f32>(s_max[0]);
    }
}

@compute @workgroup_size(256)
fn moments_finish(@builtin(local_invocation_index) lid: u32) {
    // p.n = number of partials; they sit in x (bound to the partial buffer).
    var a = 0.0;
    var q = 0.0;
    var m = 0u;
    for (var i = lid; i < p.n; i += 256u) {
        a = a + x[3u * i];
        q = q + x[3u * i + 1u];
        m = max(m, bitcast<u32>(x[3u * i + 2u]));
    }
    s_abs[lid] = a;
    s_sq[lid] = q;
    s_max[lid] = m;
    workgroupBarrier();
    tree(lid);
    if (lid == 0u) {
        out[0] = s_abs[0];
        out[1] = s_sq[0];
        out[2] = bitcast<f32>(s_max[0]);
    }
}

fn fixed24(abs_bits: u32) -> u32 {
    let e = abs_bits >> 23u;
    if (e >= 127u) {
        return ONE;
    }
    let shift = 126u - e;
    if (shift >= 32u) {
        return 0u;
    }
    return ((abs_bits & 0x007fffffu) | 0x00800000u) >> shift;
}

fn mul_hi24(a: u32, b: u32) -> u32 {
    let ah = a >> 12u;
    let al = a & 0xfffu;
    let bh = b >> 12u;
    let bl = b & 0xfffu;
    let mid = ah * bl + al * bh + ((al * bl) >> 12u);
    return ah * bh + (mid >> 12u);
}

// The code's sign bit; 0 for an unsigned table.
fn sign_bit() -> u32 {
    return select(0u, 1u << (p.bits - 1u), p.signed == 1u);
}

// The table's first 16 levels in registers (fill_levels, which each quantize entry calls first),
// those past its last level repeating it: tables of up to 16 levels are searched by comparisons
// rather than by loads from `levels` (on llvmpipe each a load per lane), which took two thirds of
// the CNN's largest TinyScript quantizer launch.
var<private> lv: array<vec4<u32>, 4>;

// The sums of neighbouring register levels, mids[i] = L_i + L_i+1 (fill_levels; past the table's
// last level, 0xffffffff).
var<private> mids: array<vec4<u32>, 4>;

// For 0 < u ≤ ONE and n < 16, rounding to nearest: the level nearest u, ties to the lower (as
// ts_encode's `2d > g`), counted as the midpoints below u: the i < n with L_i + L_i+1 < 2u
// (levels increase strictly, so these sums do too). A compare and an add a level, where
// bracket_level takes seven operations.
fn nearest_level(u: u32, n: u32) -> u32 {
    let u2 = 2u * u;
    var k = 0u;
    for (var i = 0u; i < 3u; i++) {
        k += select(0u, 1u, mids[i / 4u][i % 4u] < u2);
    }
    if (n >= 4u) {
        for (var i = 3u; i < 7u; i++) {
            k += select(0u, 1u, mids[i / 4u][i % 4u] < u2);
        }
        if (n >= 8u) {
            for (var i = 7u; i < 15u; i++) {
                k += select(0u, 1u, mids[i / 4u][i % 4u] < u2);
            }
        }
    }
    return min(k, n);
}

fn fill_levels() {
    draw_key = rng_key(p.seed, p.stream + st.stream_base);
    for (var i = 0u; i < 16u; i++) {
        lv[i / 4u][i % 4u] = levels[min(i, p.n_levels - 1u)];
    }
    for (var i = 0u; i < 15u; i++) {
        mids[i / 4u][i % 4u] = select(0xffffffffu, lv_at(i) + lv_at(i + 1u), i + 1u < p.n_levels);
    }
}

// Register level i, for i < 16 (a constant once the loops below unroll).
fn lv_at(i: u32) -> u32 {
    return lv[i / 4u][i % 4u];
}

// For u ≤ ONE: (k, L_k, L_k+1) with L_k the last level ≤ u (L_k+1 = L_k = ONE where k is the top
// level n).
fn level_bracket(u: u32) -> vec3<u32> {
    let n = p.n_levels - 1u;
    if (n >= 16u) {
        // By binary search over levels[0..=n].
        var lo = 0u;
        var hi = n;
        while (lo < hi) {
            let mid = (lo + hi + 1u) / 2u;
            if (levels[mid] <= u) {
                lo = mid;
            } else {
                hi = mid - 1u;
            }
        }
        return vec3<u32>(lo, levels[lo], levels[min(lo + 1u, n)]);
    }
    // Count the levels ≤ u (L_0 = 0 always is), keep the largest of them and the smallest above
    // u; the repeats of L_n = ONE past n count only where u = ONE, so k is capped at n. Levels
    // are compared up to the table's size, in fours, eights and sixteens (a uniform branch).
    var b = vec3<u32>(0u, 0u, ONE);
    for (var i = 1u; i < 4u; i++) {
        b = bracket_level(b, lv_at(i), u);
    }
    if (n >= 4u) {
        for (var i = 4u; i < 8u; i++) {
            b = bracket_level(b, lv_at(i), u);
        }
        if (n >= 8u) {
            for (var i = 8u; i < 16u; i++) {
                b = bracket_level(b, lv_at(i), u);
            }
        }
    }
    let k = min(b.x, n);
    return vec3<u32>(k, b.y, select(b.z, b.y, k == n));
}

// Level l counted into b = (levels ≤ u, the largest of them, the smallest above u).
fn bracket_level(b: vec3<u32>, l: u32, u: u32) -> vec3<u32> {
    return vec3<u32>(b.x + select(0u, 1u, l <= u), select(b.y, l, l <= u), min(b.z, select(ONE, l, l > u)));
}

// The stochastic draws' key, rng_key(p.seed, p.stream + st.stream_base), set once by fill_levels
// rather than hashed for every element.
var<private> draw_key: u32;

fn ts_encode(v: f32, inv: f32, idx: u32) -> u32 {
    let n = p.n_levels - 1u;
    let sign_bit = sign_bit();
    let xb = bitcast<u32>(v);
    // NaN, and for an unsigned table every negative value, encode as 0.
    if ((xb & 0x7fffffffu) > 0x7f800000u || (p.signed == 0u && (xb >> 31u) == 1u)) {
        return 0u;
    }
    if ((xb & 0x7fffffffu) == 0x7f800000u) {
        return select(n, sign_bit | n, (xb >> 31u) == 1u);
    }
    let y = ftz(ftz(v) * inv);
    let bits = bitcast<u32>(y);
    let abs = bits & 0x7fffffffu;
    if (abs == 0u) {
        return 0u;
    }
    let u = fixed24(abs);
    if (p.stochastic == 0u && n < 16u) {
        let k = nearest_level(u, n);
        if (k == 0u) {
            return 0u;
        }
        return select(k, sign_bit | k, (bits >> 31u) == 1u);
    }
    let b = level_bracket(u);
    var k = b.x;
    if (k < n) {
        let d = u - b.y;
        let g = b.z - b.y;
        var up = 2u * d > g;
        if (p.stochastic == 1u) {
            up = mul_hi24(rng_draw24(draw_key, idx), g) < d;
        }
        k = k + select(0u, 1u, up);
    }
    if (k == 0u) {
        return 0u;
    }
    return select(k, sign_bit | k, (bits >> 31u) == 1u);
}

// x's element i as the quantize entries read it: with `masked`, 0 unless mask[i] > 0.
fn x_at(i: u32) -> f32 {
    if (p.masked == 1u) {
        return select(0.0, x[i], mask[i] > 0.0);
    }
    return x[i];
}

fn src_index(row: u32, c: u32) -> u32 {
    if (p.transposed == 1u) {
        return c * p.rows + row;
    }
    return row * p.cols + c;
}

// A row's (scale, inverse scale) from its maximum's amax_bits m (both quantize entries): scale =
// the maximum, inverse by recip_rne; (0, 0) for a row without a normal value.
fn row_scale(m: u32) -> vec2<f32> {
    if (m >= MIN_NORMAL_BITS) {
        let amax = bitcast<f32>(m);
        return vec2<f32>(amax, recip_rne(amax));
    }
    return vec2<f32>(0.0);
}

// Word w of row `row`'s codes, with inverse scale inv (both quantize entries).
fn row_word(row: u32, w: u32, inv: f32) -> u32 {
    let per_word = 32u / p.bits;
    var packed = 0u;
    for (var i = 0u; i < per_word; i++) {
        let c = w * per_word + i;
        if (c < p.cols) {
            packed |= ts_encode(x_at(src_index(row, c)), inv, row * p.cols + c) << (i * p.bits);
        }
    }
    return packed;
}

@compute @workgroup_size(256)
fn quantize_row(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    fill_levels();
    let row = flat_workgroup(wg, nwg);
    let valid = row < p.rows;
    var m = 0u;
    if (valid) {
        for (var c = lid; c < p.cols; c += 256u) {
            m = max(m, amax_bits(x_at(src_index(row, c))));
        }
    }
    s_max[lid] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (lid < s) {
            s_max[lid] = max(s_max[lid], s_max[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let si = row_scale(s_max[0]);
        row_inv = si.y;
        if (valid) {
            scales[row] = si.x;
        }
    }
    workgroupBarrier();
    let inv = row_inv;
    if (valid) {
        for (var w = lid; w < p.words_per_row; w += 256u) {
            codes[row * p.words_per_row + w] = row_word(row, w, inv);
        }
    }
}

// Threads per workgroup of quantize_row_thread: few, so that a layer's few rows (a gradient's
// columns) still spread over a CPU adapter's cores.
const THREAD_WG: u32 = 64u;

@compute @workgroup_size(64)
fn quantize_row_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wg, nwg) * THREAD_WG + lid;
    if (row >= p.rows) {
        return;
    }
    fill_levels();
    var m = 0u;
    for (var c = 0u; c < p.cols; c++) {
        m = max(m, amax_bits(x_at(src_index(row, c))));
    }
    let si = row_scale(m);
    scales[row] = si.x;
    for (var w = 0u; w < p.words_per_row; w++) {
        codes[row * p.words_per_row + w] = row_word(row, w, si.y);
    }
}

// x's elements 4q..4q+3 as the vec4 entries read them (x_at's, four at a time).
fn x4_at(q: u32) -> vec4<f32> {
    if (p.masked == 1u) {
        return select(vec4<f32>(0.0), x4[q], mask4[q] > vec4<f32>(0.0));
    }
    return x4[q];
}

// The word being packed by quantize_row_thread_v4: its index, bits so far, codes in it.
var<private> pk_word: u32;
var<private> pk_bits: u32;
var<private> pk_n: u32;

// Adds `code` as the next code of the row (the words' layout of row_word), storing the word once
// it holds 32 / bits codes.
fn pack_next(code: u32) {
    pk_bits |= code << (pk_n * p.bits);
    pk_n++;
    if (pk_n == 32u / p.bits) {
        codes[pk_word] = pk_bits;
        pk_word++;
        pk_bits = 0u;
        pk_n = 0u;
    }
}

@compute @workgroup_size(64)
fn quantize_row_thread_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wg, nwg) * THREAD_WG + lid;
    if (row >= p.rows) {
        return;
    }
    fill_levels();
    let quads = p.cols / 4u;
    let q0 = row * quads;
    var m = vec4<u32>(0u);
    for (var q = 0u; q < quads; q++) {
        m = max(m, amax_bits4(x4_at(q0 + q)));
    }
    let si = row_scale(max(max(m.x, m.y), max(m.z, m.w)));
    scales[row] = si.x;
    pk_word = row * p.words_per_row;
    pk_bits = 0u;
    pk_n = 0u;
    for (var q = 0u; q < quads; q++) {
        let v = x4_at(q0 + q);
        let i = 4u * (q0 + q);
        pack_next(ts_encode(v.x, si.y, i));
        pack_next(ts_encode(v.y, si.y, i + 1u));
        pack_next(ts_encode(v.z, si.y, i + 2u));
        pack_next(ts_encode(v.w, si.y, i + 3u));
    }
    if (pk_n != 0u) {
        codes[pk_word] = pk_bits;
    }
}

// Threads per workgroup of quantize_quad_t: a quarter of THREAD_WG, as each takes four rows.
const QUAD_WG: u32 = 16u;

@compute @workgroup_size(16)
fn quantize_quad_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let quad = flat_workgroup(wg, nwg) * QUAD_WG + lid;
    let r0 = 4u * quad;
    if (r0 >= p.rows) {
        return;
    }
    fill_levels();
    // x is stored [cols, rows]: column c of rows r0..r0+3 is one vec4.
    let stride = p.rows / 4u;
    var m = vec4<u32>(0u);
    for (var c = 0u; c < p.cols; c++) {
        m = max(m, amax_bits4(x4_at(c * stride + quad)));
    }
    let inv = quad_scales(r0, m);
    let per_word = 32u / p.bits;
    var acc = vec4<u32>(0u);
    var n = 0u;
    var w = r0 * p.words_per_row;
    for (var c = 0u; c < p.cols; c++) {
        acc |= quad_codes(x4_at(c * stride + quad), inv, r0 * p.cols + c) << vec4<u32>(n * p.bits);
        n++;
        if (n == per_word) {
            store_quad(w, acc);
            w++;
            acc = vec4<u32>(0u);
            n = 0u;
        }
    }
    if (n != 0u) {
        store_quad(w, acc);
    }
}

// Rows r0..r0 + 3's scales from their maxima m (amax_bits), stored; returns their inverses
// (both quad entries).
fn quad_scales(r0: u32, m: vec4<u32>) -> vec4<f32> {
    let s0 = row_scale(m.x);
    let s1 = row_scale(m.y);
    let s2 = row_scale(m.z);
    let s3 = row_scale(m.w);
    scales[r0] = s0.x;
    scales[r0 + 1u] = s1.x;
    scales[r0 + 2u] = s2.x;
    scales[r0 + 3u] = s3.x;
    return vec4<f32>(s0.y, s1.y, s2.y, s3.y);
}

// The codes of v, one column's values in four rows at inverse scales inv, the first row's draw at
// index i and the next rows' a row (p.cols) apart (both quad entries).
fn quad_codes(v: vec4<f32>, inv: vec4<f32>, i: u32) -> vec4<u32> {
    return vec4<u32>(ts_encode(v.x, inv.x, i), ts_encode(v.y, inv.y, i + p.cols),
                     ts_encode(v.z, inv.z, i + 2u * p.cols), ts_encode(v.w, inv.w, i + 3u * p.cols));
}

// Maxima of four rows, reduced over the workgroup (quantize_quad_team_t), and their inverse scales.
var<workgroup> s_max4: array<vec4<u32>, 256>;
var<workgroup> quad_inv: vec4<f32>;

@compute @workgroup_size(256)
fn quantize_quad_team_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    fill_levels();
    let quad = flat_workgroup(wg, nwg);
    let r0 = 4u * quad;
    let valid = r0 < p.rows;
    let stride = p.rows / 4u;
    var m = vec4<u32>(0u);
    if (valid) {
        for (var c = lid; c < p.cols; c += 256u) {
            m = max(m, amax_bits4(x4_at(c * stride + quad)));
        }
    }
    s_max4[lid] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (lid < s) {
            s_max4[lid] = max(s_max4[lid], s_max4[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u && valid) {
        quad_inv = quad_scales(r0, s_max4[0]);
    }
    workgroupBarrier();
    let inv = quad_inv;
    if (valid) {
        let per_word = 32u / p.bits;
        for (var w = lid; w < p.words_per_row; w += 256u) {
            var acc = vec4<u32>(0u);
            for (var i = 0u; i < per_word; i++) {
                let c = w * per_word + i;
                if (c < p.cols) {
                    acc |= quad_codes(x4_at(c * stride + quad), inv, r0 * p.cols + c) << vec4<u32>(i * p.bits);
                }
            }
            store_quad(r0 * p.words_per_row + w, acc);
        }
    }
}

// Word w of row r0's codes and the same word of rows r0 + 1..r0 + 3 (both quad entries).
fn store_quad(w: u32, words: vec4<u32>) {
    codes[w] = words.x;
    codes[w + p.words_per_row] = words.y;
    codes[w + 2u * p.words_per_row] = words.z;
    codes[w + 3u * p.words_per_row] = words.w;
}

@compute @workgroup_size(256)
fn dequantize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_workgroup(wg, nwg) * 256u + lid;
    if (i >= p.rows * p.cols) {
        return;
    }
    let row = i / p.cols;
    let c = i % p.cols;
    let per_word = 32u / p.bits;
    let word = codes[row * p.words_per_row + c / per_word];
    let code = (word >> ((c % per_word) * p.bits)) & ((1u << p.bits) - 1u);
    let sign_bit = sign_bit();
    let k = min(code & ~sign_bit, p.n_levels - 1u);
    let v = f32(levels[k]) * (1.0 / 16777216.0) * scales[row];
    out[i] = select(v, -v, (code & sign_bit) != 0u);
}
