enable f16;
enable wgpu_cooperative_matrix;

// gemm_fp8_coop: gemm_fp8's products on the cooperative-matrix unit (tensor cores), for adapters
// that offer f16 x f16 -> f32 cooperative matrices of 8x8x8 (entry main8) or 16x16x16 (main16):
// C = epilogue(deq(A)·deq(B)ᵀ) within the f32 bound below, not gemm_fp8's bits (the unit adds in
// its own order). FMT_A, FMT_B: 2 = E4M3, 3 = E5M2, 8 = MXFP8 (E4M3 values, a scale per 32 along
// K), as gemm_fp8's.
// Why it is exact up to f32 sums: every E4M3 value (at most 448, at least 2^-9 apart from 0, three
// mantissa bits) and every E5M2 value (an f16's top byte: the same exponent field and bias, two
// mantissa bits) is exact in f16, non-finite codes included (E4M3's NaN, E5M2's infinities and
// NaNs); the product of two f16 values is exact in f32 (22 significant bits, exponents within
// f32's), so the unit's only roundings are its f32 additions. Scales are not applied to the f16
// values (an MXFP8 scale of 2^-40 would leave f16's range): at the end of every scale chunk the
// unit's sums go through workgroup memory into the lanes' f32 chunk sums, folded chunk by chunk:
//   acc += (sum_chunk * sa(m, chunk)) * sb(n, chunk), from acc = 0,
// then c = epilogue(acc), and amax as gemm_fp8 records it. Against the exact product of the
// dequantized operands (gemm_fp8's reference) that is within (K + 3 chunks + 6)·2^-24·Σ|terms|:
// K - 1 additions in the unit and the chunk sums, two multiplies and one add per chunk, and the
// reference's own rounding of code × scale into f32 (the deq values; a subnormal deq value, which
// dequantize flushes to 0 where the unit keeps code × scale, differs by less than 2^-126·|b|).
// A non-finite code gives a non-finite output, as in gemm_fp8, except through a scale of 0.
// No FLAG_RAW; one sample of A; split along K and batches as gemm_fp8's tiles (the launcher
// checks). The loop, tiles and epilogue are common/gemm_coop.wgsl's; this file decodes the codes
// (load_step) and keeps the f32 chunk sums (take, fold).
// Bindings: as gemm_fp8's: 0 params, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 bias,
// 6 c (read-write), 7 amax (read-write atomic u32).
// Reference: src/reference/gemm_fp8_coop.rs (gemm_fp8's, compared within the bound above).

override FMT_A: u32 = 2u;
override FMT_B: u32 = 2u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> b_codes: array<u32>;
@group(0) @binding(4) var<storage, read> b_scales: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;

// The unit's sums leave it only at a chunk's end (f32 sums need no flush; `since` counts from 8).
const FLUSH: u32 = 0u;

// End of this workgroup's K range (split-K); words at or past it read as codes of 0.
var<private> k_end: u32;
// This lane's sums of the current chunk, by accumulator q and value t at q * PER_MAX + t.
var<private> fsum: array<f32, 32>;

fn clear_sums() {
    for (var i = 0u; i < 32u; i++) {
        fsum[i] = 0.0;
    }
}

// The four codes of word `w` in format `fmt` as f16 values (exact; see above), through
// common/fp8.wgsl's branchless decode (naga rejects a bitcast to vec2<f16>, and unpack2x16float
// needs a capability beyond f16).
fn fp8_f16x4(w: u32, fmt: u32) -> vec4<f16> {
    return vec4<f16>(vec4<f32>(fp8_value(w & 0xffu, fmt), fp8_value((w >> 8u) & 0xffu, fmt),
                               fp8_value((w >> 16u) & 0xffu, fmt), fp8_value(w >> 24u, fmt)));
}

// Word kw (elements 4kw .. 4kw+3) of A's row `row` (B's column `col`); 0 past M (N) or K.
fn word_a(row: u32, kw: u32) -> u32 {
    if (row >= p.m || kw * 4u >= k_end) {
        return 0u;
    }
    return a_codes[(a_row0 + row) * p.a_words + kw];
}

fn word_b(col: u32, kw: u32) -> u32 {
    if (col >= p.n || kw * 4u >= k_end) {
        return 0u;
    }
    return b_codes[(b_row0 + col) * p.b_words + kw];
}

// The codes of K step k0 (elements k0 .. k0 + KT) of the tile's rows of A and B, as f16.
fn load_step(lid: u32, pl: Place, k0: u32) {
    for (var idx = lid; idx < TILE * KT / 4u; idx += WG) {
        let r = idx / (KT / 4u);
        let kw = k0 / 4u + idx % (KT / 4u);
        let va = fp8_f16x4(word_a(pl.m0 + r, kw), FMT_A);
        let vb = fp8_f16x4(word_b(pl.n0 + r, kw), FMT_B);
        let o = r * KT + (idx % (KT / 4u)) * 4u;
        As[o] = va.x;
        As[o + 1u] = va.y;
        As[o + 2u] = va.z;
        As[o + 3u] = va.w;
        Bs[o] = vb.x;
        Bs[o + 1u] = vb.y;
        Bs[o + 2u] = vb.z;
        Bs[o + 3u] = vb.w;
    }
}

// Accumulator q's sums into this lane's chunk sums.
fn take(pl: Place, q: u32) {
    let per = pl.s * pl.s / SG;
    for (var t = 0u; t < per; t++) {
        fsum[q * PER_MAX + t] += staged(pl, t);
    }
}

// End of the scale chunk that ends at element `done`: its sums scaled and added (rows and
// columns clamped to the last for their scales).
fn fold(pl: Place, done: u32) {
    let kc = chunk_start(done);
    let per = pl.s * pl.s / SG;
    for (var q = 0u; q < 4u; q++) {
        for (var t = 0u; t < per; t++) {
            let i = q * PER_MAX + t;
            let row = min(out_row(pl, q, t), p.m - 1u);
            let col = min(out_col(pl, q, t), p.n - 1u);
            let sa = a_scales[(a_row0 + row) * p.a_row_mul + (kc >> block_shift(p.a_block_div))];
            let sb = b_scales[(b_row0 + col) * p.b_row_mul + (kc >> block_shift(p.b_block_div))];
            accf[i] += (fsum[i] * sa) * sb;
            fsum[i] = 0.0;
        }
    }
}

// (No FLAG_RAW here: the launcher refuses it.)
fn raw_value(i: u32) -> f32 {
    return accf[i];
}
