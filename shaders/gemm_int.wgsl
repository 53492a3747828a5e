// gemm_int: integer GEMM on packed operands with WGSL's dot4I8Packed (native where the adapter
// has integer dot products, emulated elsewhere) and a fused dequantization epilogue.
//
// A: codes [M, a_words] in format FMT_A, B: codes [N, b_words] in format FMT_B, both packed
// along K; formats int8 (0), int4 (1) or log4 (4). Every operand is widened to int8 lanes on its
// way into workgroup memory: int4 nibbles sign-extend, log4 levels become ±2^(c-1) (at most 64),
// so log4 × int products are exact integer (shift) products.
// Math: for each K chunk of `chunk` elements (a scale block; K itself for per-row/per-tensor
// scales) the i32 sum of products is formed exactly, then folded into f32 as
//   acc += f32(isum) * sa(m, chunk) * sb(n, chunk),
// and the epilogue adds bias, applies ReLU, optionally accumulates into C and records max |C|.
// FLAG_RAW writes the bits of the exact i32 total instead (tests compare it exactly).
// With `samples` = S > 1 (SMP), A holds S stacked stochastic samples [S, M, a_words] with scales
// [S, groups]; the output is the mean of the S products, formed in the epilogue.
// Tiles: TILE x TILE outputs (TPT = 4: 64, TPT = 2: 32; chosen by the launcher's tune), 16x16
// threads with TPT x TPT outputs each, K in steps of 8 lane words (32 elements).
// Reference: src/reference/gemm_int.rs.
// Bindings: 0 params, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 bias, 6 c (read-write),
// 7 amax (read-write atomic u32).

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

override TPT: u32 = 4u;
const TKW: u32 = 8u; // lane words (4 int8 lanes each) per K step

var<workgroup> As: array<u32, 512>; // [TKW][TM]
var<workgroup> Bs: array<u32, 512>; // [TKW][TN]
var<workgroup> wg_amax: atomic<u32>;
// End of this workgroup's K range (split-K).
var<private> k_end: u32;

// Four codes (4 or 8 bits each) as four int8 lanes.
fn widen4(nibbles: u32, fmt: u32) -> u32 {
    var out = 0u;
    for (var i = 0u; i < 4u; i++) {
        let code = (nibbles >> (4u * i)) & 0xfu;
        var v = 0;
        if (fmt == 1u) {
            v = (i32(code) ^ 8) - 8;
        } else {
            let lvl = code & 7u;
            if (lvl != 0u) {
                v = i32(1u << (lvl - 1u));
                if ((code & 8u) != 0u) {
                    v = -v;
                }
            }
        }
        out |= (bitcast<u32>(v) & 0xffu) << (8u * i);
    }
    return out;
}

// Lane word kw (elements 4kw .. 4kw+3) of row `row` of an operand with `words` words per row.
fn lane_word_a(row: u32, kw: u32, sample: u32) -> u32 {
    if (row >= p.m || kw * 4u >= k_end) {
        return 0u;
    }
    let base = (sample * p.m + row) * p.a_words;
    if (FMT_A == 0u) {
        return a_codes[base + kw];
    }
    let w = a_codes[base + kw / 2u];
    return widen4((w >> (16u * (kw % 2u))) & 0xffffu, FMT_A);
}

fn lane_word_b(col: u32, kw: u32) -> u32 {
    if (col >= p.n || kw * 4u >= k_end) {
        return 0u;
    }
    let base = col * p.b_words;
    if (FMT_B == 0u) {
        return b_codes[base + kw];
    }
    let w = b_codes[base + kw / 2u];
    return widen4((w >> (16u * (kw % 2u))) & 0xffffu, FMT_B);
}

fn scale_a(sample: u32, row: u32, k: u32, groups: u32) -> f32 {
    return a_scales[sample * groups + row * p.a_row_mul + k / p.a_block_div];
}

fn scale_b(col: u32, k: u32) -> f32 {
    return b_scales[col * p.b_row_mul + k / p.b_block_div];
}

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
    // This workgroup's words of K (k_split is a multiple of 64 elements).
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
                            accf[i * 4u + j] += (f32(acci[i * 4u + j]) * sa) * scale_b(col, kc);
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
                if (row < p.m && col < p.n && p.splits > 1u) {
                    c[st.base + row * p.n + col] = accf[i * 4u + j] * inv_samples;
                } else if (row < p.m && col < p.n) {
                    if (raw) {
                        c[row * p.n + col] = bitcast<f32>(raw_acc[i * 4u + j]);
                    } else {
                        var bn = 0.0;
                        if ((p.flags & FLAG_BIAS) != 0u) {
                            bn = bias[col];
                        }
                        var v0 = accf[i * 4u + j];
                        if (p.samples > 1u) {
                            v0 = v0 * inv_samples;
                        }
                        let v = epilogue_value(p, v0, c[row * p.n + col], bn);
                        c[row * p.n + col] = v;
                        local_amax = max(local_amax, amax_bits(v));
                    }
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
