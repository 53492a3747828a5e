enable f16;
enable wgpu_cooperative_matrix;

// gemm_int_coop: gemm_int's products on the cooperative-matrix unit (tensor cores), for adapters
// that offer f16 x f16 -> f32 cooperative matrices of 8x8x8 (entry main8; lavapipe from Mesa 25.1
// on) or 16x16x16 (entry main16; NVIDIA's), bit for bit what gemm_int's `main` tiles write.
// Why the bits hold: every lane value of gemm_int's formats (int8, int4, int3, int2 codes, log4
// levels ±2^(c-1), E2M1 values doubled; common/int_codes.wgsl's lanes_f32_of) is an integer of at
// most 128 in magnitude, exact in f16; a product of two is an integer of at most 2^14, exact in
// f32; so the unit's f32 sum of at most FLUSH = 1024 of them is an integer of at most 2^24, exact
// whatever order or grouping the unit adds in. Every FLUSH elements, and at the end of every scale
// chunk, each accumulator goes through workgroup memory into the lanes' i32 sums, so the i32 total
// of a chunk is gemm_int's exact sum (wrapping as its i32 sums wrap), folded as gemm_int's `main`
// folds it, chunk by chunk in order:
//   acc += (f32(isum_chunk) * lane_unit * sa(m, chunk)) * sb(n, chunk), from acc = 0,
// then c = epilogue(acc), and amax as gemm_int records it; FLAG_RAW writes the bits of the i32
// total over all chunks instead. One sample of A (no SMP); split along K as gemm_int splits (a
// split's folded values, without epilogue, to c at its base, p.splits > 1); p.batches products one
// after another as in gemm_int (a_row0, b_row0, c_off from split_tile). Scale chunks are whole K
// steps of the unit (p.chunk a multiple of S) or one chunk over all of K: the launcher checks.
// (Split ranges start at multiples of 32 elements, on K steps; a split folds its part of a scale
// chunk at its end, as gemm_int's splits do.)
// The loop, tiles and epilogue are common/gemm_coop.wgsl's; this file decodes the codes (load_step)
// and keeps the i32 sums (take, fold, raw_value).
// Rows past M, columns past N and K past its end read codes of 0 (common/int_codes.wgsl) and
// nothing is stored past M or N. Bindings: as gemm_int's: 0 params, 1 a codes, 2 a scales,
// 3 b codes, 4 b scales, 5 bias, 6 c (read-write), 7 amax (read-write atomic u32).
// Reference: src/reference/gemm_int_coop.rs (gemm_int's).

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

// Elements summed by the unit in f32 before the sums go to i32 (see above).
const FLUSH: u32 = 1024u;

// This lane's exact sums of the current chunk and its raw i32 totals, by accumulator q and value
// t at q * PER_MAX + t (as accf).
var<private> isum: array<i32, 32>;
var<private> raw_acc: array<i32, 32>;

fn clear_sums() {
    for (var i = 0u; i < 32u; i++) {
        isum[i] = 0;
        raw_acc[i] = 0;
    }
}

// The codes of K step k0 (elements k0 .. k0 + KT) of the tile's rows of A and B, as f16.
fn load_step(lid: u32, pl: Place, k0: u32) {
    for (var idx = lid; idx < TILE * KT / 4u; idx += WG) {
        let r = idx / (KT / 4u);
        let kw = k0 / 4u + idx % (KT / 4u);
        let va = lane_f32_a(pl.m0 + r, kw, 0u);
        let vb = lane_f32_b(pl.n0 + r, kw);
        let o = r * KT + (idx % (KT / 4u)) * 4u;
        As[o] = f16(va.x);
        As[o + 1u] = f16(va.y);
        As[o + 2u] = f16(va.z);
        As[o + 3u] = f16(va.w);
        Bs[o] = f16(vb.x);
        Bs[o + 1u] = f16(vb.y);
        Bs[o + 2u] = f16(vb.z);
        Bs[o + 3u] = f16(vb.w);
    }
}

// Accumulator q's exact f32 sums into this lane's i32 sums.
fn take(pl: Place, q: u32) {
    let per = pl.s * pl.s / SG;
    for (var t = 0u; t < per; t++) {
        isum[q * PER_MAX + t] += i32(staged(pl, t));
    }
}

// End of the scale chunk that ends at element `done`: its exact sums folded as gemm_int folds
// them (rows and columns clamped to the last for their scales).
fn fold(pl: Place, done: u32) {
    let kc = chunk_start(done);
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    let per = pl.s * pl.s / SG;
    for (var q = 0u; q < 4u; q++) {
        for (var t = 0u; t < per; t++) {
            let i = q * PER_MAX + t;
            let sa = scale_a(0u, min(out_row(pl, q, t), p.m - 1u), kc, a_groups);
            let sb = scale_b(min(out_col(pl, q, t), p.n - 1u), kc);
            raw_acc[i] += isum[i];
            accf[i] += (f32(isum[i]) * lane_unit() * sa) * sb;
            isum[i] = 0;
        }
    }
}

// FLAG_RAW's output: the bits of the i32 total.
fn raw_value(i: u32) -> f32 {
    return bitcast<f32>(raw_acc[i]);
}
