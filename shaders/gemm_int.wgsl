// gemm_int: integer GEMM on packed operands with WGSL's dot4I8Packed (native where the adapter
// has integer dot products, emulated elsewhere) and a fused dequantization epilogue.
//
// A: codes [M, a_words] in format FMT_A, B: codes [N, b_words] in format FMT_B, both packed
// along K; formats int8 (0), int4 (1), log4 (4), int3 (5, in int4's nibbles), int2 (6, 16 per
// word) or the E2M1 formats fp4-e2m1, mxfp4, nvfp4 (7, 9, 10). Every operand is widened to int8
// lanes on its way into workgroup memory: int4/int3 nibbles and int2 pairs sign-extend, log4
// levels become ±2^(c-1) (at most 64), E2M1 values become twice their value (0, ±1, ±2, ±3, ±4,
// ±6, ±8, ±12), so every product is an exact integer product; an E2M1 operand's sums are scaled
// by its lane unit ½ when folded (exact: a power of two).
// Math: for each K chunk of `chunk` elements (a scale block; K itself for per-row/per-tensor
// scales) the i32 sum of products is formed exactly, then folded into f32 as
//   acc += (f32(isum) * unit * sa(m, chunk)) * sb(n, chunk),  unit = lane_unit(A) · lane_unit(B),
// and the epilogue adds bias, applies ReLU, optionally accumulates into C and records max |C|.
// FLAG_RAW writes the bits of the exact i32 total instead (tests compare it exactly).
// Split along K (p.splits > 1) two ways. One product of one sample with per-row or per-tensor
// scales (a weight gradient over a batch's pixels; one scale chunk over K, or several of an exact
// i32 run each where K is longer, the splits then cut at every chunk's end, split_tile's
// chunk_splits): the launcher sets FLAG_RAW, so split s writes its exact i32 sums over its K
// range, as bits, at s·M·N (c bound to scratch), and entry main_combine adds each chunk's splits'
// sums (i32, wrapping as the unsplit sums wrap: the same total in any order) and forms each
// output from them as the unsplit tiles do: the unsplit bits, whatever the split. Otherwise
// (SMP's samples, scale blocks along K, no epilogue) split s writes its folded f32 values at
// s·M·N, which col_sum adds in split order.
// With `samples` = S > 1 (SMP), A holds S stacked stochastic samples [S, M, a_words] with scales
// [S, groups]; the output is the mean of the S products, formed in the epilogue.
// With `batches` > 1 (one sample), batch b multiplies rows b·M.. of A by rows b·N.. of B (codes
// and scales) into C at b·M·N (a_row0, b_row0, c_off from split_tile).
// Tiles: TILE x TILE outputs (main: TPT = 4: 64, TPT = 2: 32; main_wide: 128, below; chosen by
// the launcher's tune), 16x16 threads with TPT x TPT outputs each, K in steps of 8 lane words
// (32 elements).
// Widening, lane words and scales: common/int_codes.wgsl (shared with gemm_int_lanes).
// Reference: src/reference/gemm_int.rs.
// Bindings: 0 params, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 bias, 6 c (read-write),
// 7 amax (read-write atomic u32); entry main_combine also 8 parts (read i32: the splits' sums).
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED): As/Bs[kk * TM + mm] with
// kk < TKW = 8 and mm < TM = 16 * TPT stay below 8 * 64 = 512 for TPT <= 4 (the launcher's 2 or
// 4), bw[j] and acci/accf/raw_acc[i * 4 + j] have i, j < TPT; main_wide indexes Aw/Bw as
// gemm_tiled's main_wide does (at most 511) and its accumulators by constants. Codes and scales
// are read only for rows < M, columns < N and lane words below k_end (words the launcher checked
// the buffers hold); scale rows are clamped to the last row/column. A raw split stores at its
// base (s·M·N) plus an output below M·N, in the splits' scratch; main_combine reads parts below
// p.splits·M·N (the launcher's scratch) and c, bias and scales of an output i < M·N only.

override FMT_A: u32 = 0u;
override FMT_B: u32 = 0u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> b_codes: array<u32>;
@group(0) @binding(4) var<storage, read> b_scales: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;
// Entry main_combine only: p.splits exact sums of M·N outputs each, split after split.
@group(0) @binding(8) var<storage, read> parts: array<i32>;

override TPT: u32 = 4u;
// main_wide only: one scale chunk over all of K and one sample (per-row or per-tensor scales,
// no SMP), so the integer sums are scaled once at the end and no f32 accumulators are kept.
override WHOLE_K: bool = false;
const TKW: u32 = 8u; // lane words (4 int8 lanes each) per K step

var<workgroup> As: array<u32, 512>; // [TKW][TM]
var<workgroup> Bs: array<u32, 512>; // [TKW][TN]
var<workgroup> wg_amax: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let TM = 16u * TPT;
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    let tile = st.tile;
    let valid_tile = st.valid;
    k_end = st.k_hi;
    let m0 = (tile / p.tiles_n) * TM;
    let n0 = (tile % p.tiles_n) * TM;
    let tx = lid % 16u;
    let ty = lid / 16u;
    if (lid == 0u) {
        atomicStore(&wg_amax, 0u);
    }
    // This workgroup's words of K (split ranges start at multiples of 32 elements).
    let kw_lo = st.k_lo / 4u;
    let kwords = (st.k_hi + 3u) / 4u;
    let chunk_words = p.chunk / 4u;
    // Scale groups per sample of A: rows * row_mul + groups within a row.
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    let raw = (p.flags & FLAG_RAW) != 0u;
    var accf: array<f32, 16>;
    var raw_acc: array<i32, 16>;
    for (var i = 0u; i < 16u; i++) {
        accf[i] = 0.0;
        raw_acc[i] = 0;
    }
    for (var s = 0u; s < p.samples; s++) {
        var acci: array<i32, 16>;
        for (var i = 0u; i < 16u; i++) {
            acci[i] = 0;
        }
        for (var k0 = kw_lo; k0 < kwords; k0 += TKW) {
            // TILE * TKW / 256 = TPT / 2 loads per thread and operand.
            for (var r = 0u; r < TPT / 2u; r++) {
                let idx = lid + r * 256u;
                let kk = idx % TKW;
                let mm = idx / TKW;
                As[kk * TM + mm] = lane_word_a(m0 + mm, k0 + kk, s);
                Bs[kk * TM + mm] = lane_word_b(n0 + mm, k0 + kk);
            }
            workgroupBarrier();
            for (var kk = 0u; kk < TKW; kk++) {
                let kw = k0 + kk;
                var bw: array<u32, 4>;
                for (var j = 0u; j < TPT; j++) {
                    bw[j] = Bs[kk * TM + tx * TPT + j];
                }
                for (var i = 0u; i < TPT; i++) {
                    let aw = As[kk * TM + ty * TPT + i];
                    for (var j = 0u; j < TPT; j++) {
                        acci[i * 4u + j] += dot4I8Packed(aw, bw[j]);
                    }
                }
                // End of a scale chunk (or of K): fold the exact integer sums into f32.
                if (kw < kwords && ((kw + 1u) % chunk_words == 0u || kw + 1u == kwords)) {
                    let kc = (kw / chunk_words) * p.chunk;
                    for (var i = 0u; i < TPT; i++) {
                        let row = min(m0 + ty * TPT + i, p.m - 1u);
                        let sa = scale_a(s, row, kc, a_groups);
                        for (var j = 0u; j < TPT; j++) {
                            let col = min(n0 + tx * TPT + j, p.n - 1u);
                            raw_acc[i * 4u + j] += acci[i * 4u + j];
                            accf[i * 4u + j] += (f32(acci[i * 4u + j]) * lane_unit() * sa) * scale_b(col, kc);
                            acci[i * 4u + j] = 0;
                        }
                    }
                }
            }
            workgroupBarrier();
        }
    }
    let inv_samples = 1.0 / f32(p.samples);
    var local_amax = 0u;
    if (valid_tile) {
        for (var i = 0u; i < TPT; i++) {
            let row = m0 + ty * TPT + i;
            for (var j = 0u; j < TPT; j++) {
                let col = n0 + tx * TPT + j;
                if (row < p.m && col < p.n && raw) {
                    // (A split's base is 0 unsplit, c_off 0 split: one product.)
                    c[st.base + c_off + row * p.n + col] = bitcast<f32>(raw_acc[i * 4u + j]);
                } else if (row < p.m && col < p.n && p.splits > 1u) {
                    c[st.base + row * p.n + col] = accf[i * 4u + j] * inv_samples;
                } else if (row < p.m && col < p.n) {
                    var bn = 0.0;
                    if ((p.flags & FLAG_BIAS) != 0u) {
                        bn = bias[col];
                    }
                    var v0 = accf[i * 4u + j];
                    if (p.samples > 1u) {
                        v0 = v0 * inv_samples;
                    }
                    let v = epilogue_value(p, v0, c[c_off + row * p.n + col], bn);
                    c[c_off + row * p.n + col] = v;
                    local_amax = max(local_amax, amax_bits(v));
                }
            }
        }
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&wg_amax, local_amax);
        workgroupBarrier();
        if (lid == 0u && valid_tile) {
            atomicMax(&amax[0], atomicLoad(&wg_amax));
        }
    }
}

// Wide tile: 128x128 outputs per workgroup, 8x8 per thread as 16 vec4 accumulators, rows
// {4ty..4ty+3, 64+4ty..64+4ty+3} and columns likewise with tx, so every K step reads four
// vec4<u32> of workgroup memory and issues 64 dot4I8Packed. K runs in steps of 8 lane words;
// the launcher picks this tile only when scale chunks are whole steps (chunk % 32 == 0 or one
// chunk over all of K), so the integer sums are folded into f32 between steps, not inside one.
// FLAG_RAW keeps the exact i32 sums over all chunks and samples instead of folding them.
// K steps go through two workgroup buffers, the next step's words already loaded into registers
// while the current one is multiplied out (one barrier per step).
var<workgroup> Aw: array<vec4<u32>, 512>; // [2][TKW][128 / 4]
var<workgroup> Bw: array<vec4<u32>, 512>;

// This thread's four lane words of a K step of A (sample s) or B: word kw0 + idx % TKW of row
// idx / TKW, idx = lid + 256 r.
fn fetch_int_a(lid: u32, m0: u32, kw0: u32, s: u32) -> vec4<u32> {
    return vec4<u32>(lane_word_a(m0 + lid / TKW, kw0 + lid % TKW, s),
                     lane_word_a(m0 + 32u + lid / TKW, kw0 + lid % TKW, s),
                     lane_word_a(m0 + 64u + lid / TKW, kw0 + lid % TKW, s),
                     lane_word_a(m0 + 96u + lid / TKW, kw0 + lid % TKW, s));
}

fn fetch_int_b(lid: u32, n0: u32, kw0: u32) -> vec4<u32> {
    return vec4<u32>(lane_word_b(n0 + lid / TKW, kw0 + lid % TKW),
                     lane_word_b(n0 + 32u + lid / TKW, kw0 + lid % TKW),
                     lane_word_b(n0 + 64u + lid / TKW, kw0 + lid % TKW),
                     lane_word_b(n0 + 96u + lid / TKW, kw0 + lid % TKW));
}

fn put_int(buf: u32, lid: u32, va: vec4<u32>, vb: vec4<u32>) {
    for (var r = 0u; r < 4u; r++) {
        let f = buf * 1024u + (lid % TKW) * 128u + lid / TKW + 32u * r;
        Aw[f / 4u][f % 4u] = va[r];
        Bw[f / 4u][f % 4u] = vb[r];
    }
}

fn dot4x4(a: u32, b: vec4<u32>) -> vec4<i32> {
    return vec4<i32>(dot4I8Packed(a, b.x), dot4I8Packed(a, b.y), dot4I8Packed(a, b.z), dot4I8Packed(a, b.w));
}

fn fold_wide(accf: vec4<f32>, acci: vec4<i32>, sa: f32, col0: u32, kc: u32) -> vec4<f32> {
    let last = p.n - 1u;
    let sb = vec4<f32>(scale_b(min(col0, last), kc), scale_b(min(col0 + 1u, last), kc),
                       scale_b(min(col0 + 2u, last), kc), scale_b(min(col0 + 3u, last), kc));
    return fma(vec4<f32>(acci) * lane_unit() * sa, sb, accf);
}

// The f32 result of a 4-output row segment: the folded sums, or with WHOLE_K the one scaling.
fn whole_k(accf: vec4<f32>, acci: vec4<i32>, row: u32, col0: u32) -> vec4<f32> {
    if (!WHOLE_K || (p.flags & FLAG_RAW) != 0u) {
        return accf;
    }
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    return fold_wide(vec4<f32>(0.0), acci, scale_a(0u, min(row, p.m - 1u), 0u, a_groups), col0, 0u);
}

fn store_int_wide(accf: vec4<f32>, acci: vec4<i32>, row: u32, col0: u32, st: SplitTile, amax_in: u32) -> u32 {
    var local_amax = amax_in;
    let inv_samples = 1.0 / f32(p.samples);
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + j;
        if (row >= p.m || col >= p.n) {
            continue;
        }
        if ((p.flags & FLAG_RAW) != 0u) {
            c[st.base + c_off + row * p.n + col] = bitcast<f32>(acci[j]);
        } else if (p.splits > 1u) {
            c[st.base + row * p.n + col] = accf[j] * inv_samples;
        } else {
            var bn = 0.0;
            if ((p.flags & FLAG_BIAS) != 0u) {
                bn = bias[col];
            }
            var v0 = accf[j];
            if (p.samples > 1u) {
                v0 = v0 * inv_samples;
            }
            let v = epilogue_value(p, v0, c[c_off + row * p.n + col], bn);
            c[c_off + row * p.n + col] = v;
            local_amax = max(local_amax, amax_bits(v));
        }
    }
    return local_amax;
}

@compute @workgroup_size(256)
fn main_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    k_end = st.k_hi;
    let m0 = (st.tile / p.tiles_n) * 128u;
    let n0 = (st.tile % p.tiles_n) * 128u;
    let tx = lid % 16u;
    let ty = lid / 16u;
    if (lid == 0u) {
        atomicStore(&wg_amax, 0u);
    }
    let kw_lo = st.k_lo / 4u;
    let kwords = (st.k_hi + 3u) / 4u;
    let chunk_words = p.chunk / 4u;
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    let raw = (p.flags & FLAG_RAW) != 0u;
    let last_row = p.m - 1u;
    // Indexed by constants only (a dynamic index could push the accumulators out of registers).
    var accf: array<vec4<f32>, 16>;
    var acci: array<vec4<i32>, 16>;
    for (var s = 0u; s < p.samples; s++) {
        var ra = fetch_int_a(lid, m0, kw_lo, s);
        var rb = fetch_int_b(lid, n0, kw_lo);
        // (Every step ends with a barrier, so the previous sample is done with both buffers.)
        put_int(0u, lid, ra, rb);
        workgroupBarrier();
        var buf = 0u;
        for (var k0 = kw_lo; k0 < kwords; k0 += TKW) {
            let more = k0 + TKW < kwords;
            if (more) {
                ra = fetch_int_a(lid, m0, k0 + TKW, s);
                rb = fetch_int_b(lid, n0, k0 + TKW);
            }
            let base = buf * 256u;
            for (var kk = 0u; kk < TKW; kk++) {
                let a0 = Aw[base + kk * 32u + ty];
                let a1 = Aw[base + kk * 32u + 16u + ty];
                let b0 = Bw[base + kk * 32u + tx];
                let b1 = Bw[base + kk * 32u + 16u + tx];
                acci[0] += dot4x4(a0.x, b0);
                acci[1] += dot4x4(a0.x, b1);
                acci[2] += dot4x4(a0.y, b0);
                acci[3] += dot4x4(a0.y, b1);
                acci[4] += dot4x4(a0.z, b0);
                acci[5] += dot4x4(a0.z, b1);
                acci[6] += dot4x4(a0.w, b0);
                acci[7] += dot4x4(a0.w, b1);
                acci[8] += dot4x4(a1.x, b0);
                acci[9] += dot4x4(a1.x, b1);
                acci[10] += dot4x4(a1.y, b0);
                acci[11] += dot4x4(a1.y, b1);
                acci[12] += dot4x4(a1.z, b0);
                acci[13] += dot4x4(a1.z, b1);
                acci[14] += dot4x4(a1.w, b0);
                acci[15] += dot4x4(a1.w, b1);
            }
            if (more) {
                put_int(buf ^ 1u, lid, ra, rb);
            }
            workgroupBarrier();
            buf ^= 1u;
            // End of a scale chunk (or of K): fold the exact integer sums into f32.
            let next = k0 + TKW;
            if (!WHOLE_K && !raw && (next % chunk_words == 0u || next >= kwords)) {
                let kc = (k0 / chunk_words) * p.chunk;
                let c0 = n0 + tx * 4u;
                let c1 = n0 + 64u + tx * 4u;
                let sa0 = scale_a(s, min(m0 + 0u + ty * 4u, last_row), kc, a_groups);
                accf[0] = fold_wide(accf[0], acci[0], sa0, c0, kc);
                acci[0] = vec4<i32>(0);
                accf[1] = fold_wide(accf[1], acci[1], sa0, c1, kc);
                acci[1] = vec4<i32>(0);
                let sa1 = scale_a(s, min(m0 + 1u + ty * 4u, last_row), kc, a_groups);
                accf[2] = fold_wide(accf[2], acci[2], sa1, c0, kc);
                acci[2] = vec4<i32>(0);
                accf[3] = fold_wide(accf[3], acci[3], sa1, c1, kc);
                acci[3] = vec4<i32>(0);
                let sa2 = scale_a(s, min(m0 + 2u + ty * 4u, last_row), kc, a_groups);
                accf[4] = fold_wide(accf[4], acci[4], sa2, c0, kc);
                acci[4] = vec4<i32>(0);
                accf[5] = fold_wide(accf[5], acci[5], sa2, c1, kc);
                acci[5] = vec4<i32>(0);
                let sa3 = scale_a(s, min(m0 + 3u + ty * 4u, last_row), kc, a_groups);
                accf[6] = fold_wide(accf[6], acci[6], sa3, c0, kc);
                acci[6] = vec4<i32>(0);
                accf[7] = fold_wide(accf[7], acci[7], sa3, c1, kc);
                acci[7] = vec4<i32>(0);
                let sa4 = scale_a(s, min(m0 + 64u + ty * 4u, last_row), kc, a_groups);
                accf[8] = fold_wide(accf[8], acci[8], sa4, c0, kc);
                acci[8] = vec4<i32>(0);
                accf[9] = fold_wide(accf[9], acci[9], sa4, c1, kc);
                acci[9] = vec4<i32>(0);
                let sa5 = scale_a(s, min(m0 + 65u + ty * 4u, last_row), kc, a_groups);
                accf[10] = fold_wide(accf[10], acci[10], sa5, c0, kc);
                acci[10] = vec4<i32>(0);
                accf[11] = fold_wide(accf[11], acci[11], sa5, c1, kc);
                acci[11] = vec4<i32>(0);
                let sa6 = scale_a(s, min(m0 + 66u + ty * 4u, last_row), kc, a_groups);
                accf[12] = fold_wide(accf[12], acci[12], sa6, c0, kc);
                acci[12] = vec4<i32>(0);
                accf[13] = fold_wide(accf[13], acci[13], sa6, c1, kc);
                acci[13] = vec4<i32>(0);
                let sa7 = scale_a(s, min(m0 + 67u + ty * 4u, last_row), kc, a_groups);
                accf[14] = fold_wide(accf[14], acci[14], sa7, c0, kc);
                acci[14] = vec4<i32>(0);
                accf[15] = fold_wide(accf[15], acci[15], sa7, c1, kc);
                acci[15] = vec4<i32>(0);
            }
        }
    }
    var local_amax = 0u;
    if (st.valid) {
        local_amax = store_int_wide(whole_k(accf[0], acci[0], m0 + 0u + ty * 4u, n0 + tx * 4u), acci[0], m0 + 0u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[1], acci[1], m0 + 0u + ty * 4u, n0 + 64u + tx * 4u), acci[1], m0 + 0u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[2], acci[2], m0 + 1u + ty * 4u, n0 + tx * 4u), acci[2], m0 + 1u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[3], acci[3], m0 + 1u + ty * 4u, n0 + 64u + tx * 4u), acci[3], m0 + 1u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[4], acci[4], m0 + 2u + ty * 4u, n0 + tx * 4u), acci[4], m0 + 2u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[5], acci[5], m0 + 2u + ty * 4u, n0 + 64u + tx * 4u), acci[5], m0 + 2u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[6], acci[6], m0 + 3u + ty * 4u, n0 + tx * 4u), acci[6], m0 + 3u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[7], acci[7], m0 + 3u + ty * 4u, n0 + 64u + tx * 4u), acci[7], m0 + 3u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[8], acci[8], m0 + 64u + ty * 4u, n0 + tx * 4u), acci[8], m0 + 64u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[9], acci[9], m0 + 64u + ty * 4u, n0 + 64u + tx * 4u), acci[9], m0 + 64u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[10], acci[10], m0 + 65u + ty * 4u, n0 + tx * 4u), acci[10], m0 + 65u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[11], acci[11], m0 + 65u + ty * 4u, n0 + 64u + tx * 4u), acci[11], m0 + 65u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[12], acci[12], m0 + 66u + ty * 4u, n0 + tx * 4u), acci[12], m0 + 66u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[13], acci[13], m0 + 66u + ty * 4u, n0 + 64u + tx * 4u), acci[13], m0 + 66u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[14], acci[14], m0 + 67u + ty * 4u, n0 + tx * 4u), acci[14], m0 + 67u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_int_wide(whole_k(accf[15], acci[15], m0 + 67u + ty * 4u, n0 + 64u + tx * 4u), acci[15], m0 + 67u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&wg_amax, local_amax);
        workgroupBarrier();
        if (lid == 0u && st.valid) {
            atomicMax(&amax[0], atomicLoad(&wg_amax));
        }
    }
}

// Entry main_combine: a product split along K with exact sums (the launcher's FLAG_RAW splits,
// above), a thread per output i = row·N + col: each scale chunk's splits' i32 sums added
// (wrapping as `main`'s i32 sums wrap: the same total in any order; p.chunk_splits splits per
// chunk, split_tile's, or all of them for one chunk over K), then the output formed as `main`
// forms it from the chunks' sums, acc = 0, acc += (f32(isum) · lane_unit · sa(row, chunk)) ·
// sb(col, chunk) chunk by chunk in order (a fused multiply-add where main_wide split: p.aux0 = 1,
// as fold_wide adds), through the epilogue, and max |C| where asked: the unsplit tiles' bits.
@compute @workgroup_size(256)
fn main_combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&wg_amax, 0u);
    }
    let mn = p.m * p.n;
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    var local_amax = 0u;
    if (i < mn) {
        let row = i / p.n;
        let col = i % p.n;
        let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
        // Splits per scale chunk: all of them for one chunk over K.
        let per = select(p.splits, p.chunk_splits, p.chunk_splits != 0u);
        var acc = 0.0;
        for (var s0 = 0u; s0 < p.splits; s0 += per) {
            var isum = 0;
            for (var s = s0; s < min(s0 + per, p.splits); s++) {
                isum += parts[s * mn + i];
            }
            let kc = (s0 / per) * p.chunk;
            let x = f32(isum) * lane_unit() * scale_a(0u, row, kc, a_groups);
            // As the kernel that split folds: main_wide with fused multiply-adds (p.aux0 = 1).
            if (p.aux0 != 0u) {
                acc = fma(x, scale_b(col, kc), acc);
            } else {
                acc += x * scale_b(col, kc);
            }
        }
        var bn = 0.0;
        if ((p.flags & FLAG_BIAS) != 0u) {
            bn = bias[col];
        }
        let v = epilogue_value(p, acc, c[i], bn);
        c[i] = v;
        local_amax = amax_bits(v);
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        workgroupBarrier();
        atomicMax(&wg_amax, local_amax);
        workgroupBarrier();
        if (lid == 0u) {
            atomicMax(&amax[0], atomicLoad(&wg_amax));
        }
    }
}
