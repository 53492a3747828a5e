// gemm_levels_lanes: gemm_levels for CPU adapters whose subgroup is one 8-wide SIMD vector
// (lavapipe): C = epilogue(A·op(B)ᵀ) with A in TinyScript codes (A_BITS bits, one scale per row)
// and B in f32 ([N, K], or [K, N] when p.trans_b) or, with B_CODES, in TinyScript codes (B_BITS
// bits, stored [N, K] or [K, N], one scale per stored row), as gemm_levels. Why a kernel of its
// own: gemm_levels runs gemm_f32's workgroup-memory tiles, which llvmpipe loads lane by lane, and
// divides by a run-time code width for every element it decodes; on the MNIST CNN's TinyScript
// step it took 1.5 s of 1.8. Here the code widths are pipeline constants (so a word's index and a
// code's shift are shifts and multiplies), every element is decoded by common/levels.wgsl's
// level_value, as gemm_levels decodes it (the same f32 operands), and the 16 x 32 tiles, k-by-k
// multiply-adds, broadcasts and stores of gemm_f32_lanes (common/lanes.wgsl) run on them: the same
// products added in the same order as gemm_levels' unsplit tiles, so on llvmpipe, which fuses no
// multiply-add, the same bits.
// With SWAP (a product narrower than the tile: common/lanes.wgsl's FLAG_SWAP, set with it) the
// launch computes Cᵀ = op(B)·Aᵀ: its rows are op(B)'s, its columns A's; p.m and p.n are the
// launch's (C's n and m), every other field is C's product's.
// Entry `main` (the launcher's `vectorized` shapes: f32 B with K a multiple of 4 and, stored
// [K, N], N too, not swapped) loads B as vec4s; `main_scalar` assembles them from scalar loads
// (coded B, every other shape), a coded B stored [K, N] (not swapped) four adjacent columns of a
// stored row at a time (cols_coded_t); `main_strip` and `main_band` (below) run these tiles
// several a workgroup, decoding one side of them once. Split along K as gemm_f32's tiles
// split (common/gemm.wgsl's split_tile: a split's partial sums, without epilogue, at
// c[split·M·N..], which the launcher adds); rows and columns past M and N read zeros and are not
// stored; elements past K read zeros.
// Bindings: as gemm_levels' (0 params, 1 a codes, 2 a scales, 3 levels, 4 b, 5 bias, 6 c,
// 7 amax, 8 b scales). Reference: src/reference/gemm_levels.rs (decode, then f64; compared within
// a stated bound).

override B_CODES: bool = false;
override A_BITS: u32 = 4u;
override B_BITS: u32 = 4u;
override SWAP: bool = false;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> levels: array<u32>;
@group(0) @binding(4) var<storage, read> b: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read> b_scales: array<f32>;
// Entry `main`'s view of an f32 B.
@group(0) @binding(4) var<storage, read> bv: array<vec4<f32>>;

// C's rows (A's) and columns (op(B)'s), whichever way the launch runs.
fn c_rows() -> u32 {
    return select(p.m, p.n, SWAP);
}

fn c_cols() -> u32 {
    return select(p.n, p.m, SWAP);
}

// Fills the register tables (common/levels_lanes.wgsl) of A and of a coded B.
fn load_tables() {
    table_a = fill_table(0u, p.aux1 & 0xffffu);
    if (B_CODES) {
        table_b = fill_table(p.aux1 & 0xffffu, p.aux1 >> 16u);
    }
}

// A's row `row` at elements k .. k + 3 (zeros past its rows and past K).
fn a_vals(row: u32, k: u32) -> vec4<f32> {
    if (row >= c_rows()) {
        return vec4<f32>(0.0);
    }
    let signed = (p.aux0 & 0x10000u) == 0u;
    let at = row * p.a_words;
    let w = step_words(k, k_hi, A_BITS);
    return row_codes(a_codes[at + w.x], a_codes[at + w.y], w, k, k_hi, table_a, A_BITS, signed, 0u,
                     p.aux1 & 0xffffu, a_scales[row]);
}

// op(B)'s row `col` (C's column) at elements k .. k + 3 from scalar loads (zeros past C's columns
// and past K).
fn b_vals(col: u32, k: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    let n = c_cols();
    if (col >= n) {
        return v;
    }
    let signed = (p.aux0 & 0x20000u) == 0u;
    let first = p.aux1 & 0xffffu;
    let count = p.aux1 >> 16u;
    if (B_CODES && p.trans_b == 0u) {
        let at = col * p.b_words;
        let w = step_words(k, k_hi, B_BITS);
        return row_codes(b[at + w.x], b[at + w.y], w, k, k_hi, table_b, B_BITS, signed, first, count, b_scales[col]);
    }
    for (var j = 0u; j < 4u; j++) {
        let kk = k + j;
        if (kk < k_hi) {
            if (!B_CODES) {
                v[j] = bitcast<f32>(b[select(col * p.k + kk, kk * n + col, p.trans_b == 1u)]);
            } else {
                // Stored [K, N]: element (kk, col), scaled by stored row kk's scale.
                let word = b[kk * p.b_words + col / (32u / B_BITS)];
                v[j] = decode(table_b, word, col, B_BITS, signed, first, count, b_scales[kk]);
            }
        }
    }
    return v;
}

// This lane's column cc of the tile (the stores of common/lanes.wgsl): four adjacent columns
// where B is stored [K, N] (`main`'s vec4 loads of an f32 B; `main_scalar`'s coded B, not
// swapped), else every eighth.
var<private> adjacent: bool;

fn column(n0: u32, lane: u32, cc: u32) -> u32 {
    return select(n0 + 8u * cc + lane, n0 + 4u * lane + cc, adjacent);
}

// A coded B stored [K, N] (a weight gradient's Q(X)): this lane's four adjacent columns
// n0 + 4·lane .. + 3 of stored rows k .. k + 3, each row's four codes from one word or two
// (step_words, row_codes: decoded as level_value decodes them, zeros past N and past K) and its
// one scale, where a column's own loads took a word and a scale for each element.
fn cols_coded_t(n0: u32, k: u32, lane: u32) -> mat4x4<f32> {
    var t: mat4x4<f32>;
    let c0 = n0 + 4u * lane;
    let n = p.n;
    if (c0 >= n) {
        return t;
    }
    let signed = (p.aux0 & 0x20000u) == 0u;
    let first = p.aux1 & 0xffffu;
    let count = p.aux1 >> 16u;
    let w = step_words(c0, n, B_BITS);
    for (var kk = 0u; kk < 4u; kk++) {
        let r = k + kk;
        if (r < k_hi) {
            let at = r * p.b_words;
            t[kk] = row_codes(b[at + w.x], b[at + w.y], w, c0, n, table_b, B_BITS, signed, first, count, b_scales[r]);
        }
    }
    return t;
}

// The four column values of this lane at elements k .. k + 3 as the tile wants them: column kk
// of the result holds the four columns at k + kk.
fn cols_scalar(n0: u32, k: u32, lane: u32) -> mat4x4<f32> {
    if (adjacent) {
        return cols_coded_t(n0, k, lane);
    }
    if (SWAP) {
        return transpose(mat4x4<f32>(a_vals(n0 + lane, k), a_vals(n0 + 8u + lane, k), a_vals(n0 + 16u + lane, k),
                                     a_vals(n0 + 24u + lane, k)));
    }
    return transpose(mat4x4<f32>(b_vals(n0 + lane, k), b_vals(n0 + 8u + lane, k), b_vals(n0 + 16u + lane, k),
                                 b_vals(n0 + 24u + lane, k)));
}

// The launch's row m0 + 8 * half + lane at elements k .. k + 3.
fn row_vals(m0: u32, k: u32, lane: u32, half: u32) -> vec4<f32> {
    let row = m0 + 8u * half + lane;
    if (SWAP) {
        return b_vals(row, k);
    }
    return a_vals(row, k);
}

// `main`'s B columns: vec4 loads of an f32 B ([N, K] along K, or [K, N] four adjacent columns
// a row), columns past N clamped to the last (not stored).
fn cols_vec4(n0: u32, k: u32, lane: u32) -> mat4x4<f32> {
    let last = p.n - 1u;
    if (p.trans_b == 1u) {
        let quads = p.n / 4u;
        let base = k * quads + min(n0 / 4u + lane, quads - 1u);
        return mat4x4<f32>(bv[base], bv[base + quads], bv[base + 2u * quads], bv[base + 3u * quads]);
    }
    let k4 = k / 4u;
    let w = p.k / 4u;
    return transpose(mat4x4<f32>(bv[min(n0 + lane, last) * w + k4], bv[min(n0 + 8u + lane, last) * w + k4],
                                 bv[min(n0 + 16u + lane, last) * w + k4], bv[min(n0 + 24u + lane, last) * w + k4]));
}

// This workgroup's split of K: elements k_lo .. k_hi (all of K unless split).
var<private> k_lo: u32;
var<private> k_hi: u32;

// This workgroup's first row and column, and whether it has a tile; sets k_lo and k_hi, and with
// splits c_off to the split's partial sums.
fn origin(wg: vec3<u32>, nwg: vec3<u32>) -> vec3<u32> {
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    k_lo = st.k_lo;
    k_hi = st.k_hi;
    c_off = st.base;
    return vec3<u32>((st.tile / p.tiles_n) * 16u, (st.tile % p.tiles_n) * 32u, u32(st.valid));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let o = origin(wg, nwg);
    if (o.z == 0u) {
        return;
    }
    adjacent = p.trans_b == 1u;
    load_tables();
    var acc: Acc;
    for (var k = k_lo; k < k_hi; k += 4u) {
        let lo = a_vals(o.x + lane, k);
        let hi = a_vals(o.x + 8u + lane, k);
        let bt = cols_vec4(o.y, k, lane);
        acc = mac_quads(acc, bt, rows_nt(lo, 0u), rows_nt(lo, 1u), rows_nt(hi, 0u), rows_nt(hi, 1u));
    }
    lanes_finish(acc, o.x, o.y, lane);
}

@compute @workgroup_size(8)
fn main_scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let o = origin(wg, nwg);
    if (o.z == 0u) {
        return;
    }
    adjacent = B_CODES && p.trans_b == 1u && !SWAP;
    load_tables();
    var acc: Acc;
    for (var k = k_lo; k < k_hi; k += 4u) {
        let lo = row_vals(o.x, k, lane, 0u);
        let hi = row_vals(o.x, k, lane, 1u);
        let bt = cols_scalar(o.y, k, lane);
        acc = mac_quads(acc, bt, rows_nt(lo, 0u), rows_nt(lo, 1u), rows_nt(hi, 0u), rows_nt(hi, 1u));
    }
    lanes_finish(acc, o.x, o.y, lane);
}

// Entries `main_strip` and `main_band` (not swapped, no split, K ≤ 4 · PANEL_STEPS; the
// launcher's `panel`): a workgroup takes one tile's side of the launch for all of K and TILES
// tiles along it, in turn. `main_strip` (a coded B) takes a 32-column strip and TILES row tiles:
// each lane decodes its columns of the strip once, into `strip`, where main_scalar decodes a
// tile's columns again for every row tile (16 of a lane's 24 decodes a K step, both operands
// coded). `main_band` (an f32 B) takes a 16-row band and TILES column tiles: each lane decodes its
// two rows of A once, into `band`, where main and main_scalar decode them again for every column
// tile (a lane's 8 decodes a K step); `main_band_v4` loads B as `main` does. Each tile's products
// are those of the entry the launch would take otherwise, added in the same order: the same bits.
// PANEL_STEPS is src/kernels/gemm_levels_lanes.rs's PANEL_K / 4.
override TILES: u32 = 1u;
const PANEL_STEPS: u32 = 256u;
var<private> strip: array<mat4x4<f32>, PANEL_STEPS>;
var<private> band: array<mat2x4<f32>, PANEL_STEPS>;

// A panel's set-up: the whole of K, one product (no split), the register tables.
fn panel_start() {
    k_lo = 0u;
    k_hi = p.k;
    c_off = 0u;
    load_tables();
}

@compute @workgroup_size(8)
fn main_strip(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let id = wg.x + wg.y * nwg.x;
    let groups = (p.total_tiles / p.tiles_n + TILES - 1u) / TILES;
    if (id >= groups * p.tiles_n) {
        return;
    }
    let n0 = (id % p.tiles_n) * 32u;
    let first = (id / p.tiles_n) * TILES;
    panel_start();
    adjacent = B_CODES && p.trans_b == 1u && !SWAP;
    let steps = (p.k + 3u) / 4u;
    for (var s = 0u; s < steps; s++) {
        strip[s] = cols_scalar(n0, 4u * s, lane);
    }
    for (var t = first; t < first + TILES; t++) {
        let m0 = t * 16u;
        if (m0 >= p.m) {
            break;
        }
        var acc: Acc;
        for (var s = 0u; s < steps; s++) {
            let lo = row_vals(m0, 4u * s, lane, 0u);
            let hi = row_vals(m0, 4u * s, lane, 1u);
            acc = mac_quads(acc, strip[s], rows_nt(lo, 0u), rows_nt(lo, 1u), rows_nt(hi, 0u), rows_nt(hi, 1u));
        }
        lanes_finish(acc, m0, n0, lane);
    }
}

// main_band's workgroup (never swapped): its band's first row and first column tile, and whether
// it has tiles; fills `band` with this lane's two rows of A for all of K, as `main` takes them
// (a_vals alone: main_band_v4 may not touch `b`, which `bv` aliases).
fn band_origin(wg: vec3<u32>, nwg: vec3<u32>, lane: u32) -> vec3<u32> {
    let id = wg.x + wg.y * nwg.x;
    let tiles_m = p.total_tiles / p.tiles_n;
    if (id >= (p.tiles_n + TILES - 1u) / TILES * tiles_m) {
        return vec3<u32>(0u);
    }
    let m0 = (id % tiles_m) * 16u;
    panel_start();
    for (var s = 0u; s < (p.k + 3u) / 4u; s++) {
        band[s] = mat2x4<f32>(a_vals(m0 + lane, 4u * s), a_vals(m0 + 8u + lane, 4u * s));
    }
    return vec3<u32>(m0, (id / tiles_m) * TILES, 1u);
}

// One K step of a band's tile: acc plus the products of its columns `bt` with band step s.
fn band_step(acc: Acc, bt: mat4x4<f32>, s: u32) -> Acc {
    let r = band[s];
    return mac_quads(acc, bt, rows_nt(r[0], 0u), rows_nt(r[0], 1u), rows_nt(r[1], 0u), rows_nt(r[1], 1u));
}

// main_band with an f32 B in `main_scalar`'s shapes: B's columns from scalar loads.
@compute @workgroup_size(8)
fn main_band(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let o = band_origin(wg, nwg, lane);
    adjacent = false;
    for (var t = o.y; o.z == 1u && t < o.y + TILES && t * 32u < p.n; t++) {
        var acc: Acc;
        for (var s = 0u; s < (p.k + 3u) / 4u; s++) {
            acc = band_step(acc, cols_scalar(t * 32u, 4u * s, lane), s);
        }
        lanes_finish(acc, o.x, t * 32u, lane);
    }
}

// main_band with an f32 B in `main`'s shapes: B's columns as vec4s.
@compute @workgroup_size(8)
fn main_band_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let o = band_origin(wg, nwg, lane);
    adjacent = p.trans_b == 1u;
    for (var t = o.y; o.z == 1u && t < o.y + TILES && t * 32u < p.n; t++) {
        var acc: Acc;
        for (var s = 0u; s < (p.k + 3u) / 4u; s++) {
            acc = band_step(acc, cols_vec4(t * 32u, 4u * s, lane), s);
        }
        lanes_finish(acc, o.x, t * 32u, lane);
    }
}
