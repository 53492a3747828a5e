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
// (Split ranges start at multiples of 64 elements, on K steps; a split folds its part of a scale
// chunk at its end, as gemm_int's splits do.)
// Layout: TILE x TILE = 64 x 64 outputs per workgroup; K in steps of KT = 32 elements, each step's
// codes decoded to f16 in workgroup memory (As: A's 64 rows, row-major; Bs: B's 64 rows, i.e. the
// product's columns, each a column of the K x N operand). The workgroup is (TILE / 2S)^2
// subgroups of SG lanes (override WG = that many invocations; the launcher builds it only where
// the adapter's subgroups have one size, SG, with S * S / SG at most 8); subgroup g owns the
// 2S x 2S block (2S (g / (TILE / 2S)), 2S (g % (TILE / 2S))) as four S x S accumulators (q = 2 i
// + j: rows i S .., columns j S .. of the block). In the i32 sums and the folded f32 values lane
// l holds, of accumulator q, the elements e = l + SG t (t < S * S / SG), at row e / S and column
// e % S of it.
// Rows past M, columns past N and K past its end read codes of 0 (common/int_codes.wgsl) and
// nothing is stored past M or N. Bindings: as gemm_int's: 0 params, 1 a codes, 2 a scales,
// 3 b codes, 4 b scales, 5 bias, 6 c (read-write), 7 amax (read-write atomic u32).
// Reference: src/reference/gemm_int_coop.rs (gemm_int's).

override FMT_A: u32 = 0u;
override FMT_B: u32 = 0u;
// Lanes per subgroup (the adapter's one subgroup size) and invocations per workgroup,
// (TILE / 2S)^2 * SG.
override SG: u32 = 8u;
override WG: u32 = 128u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> b_codes: array<u32>;
@group(0) @binding(4) var<storage, read> b_scales: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;

const TILE: u32 = 64u;
const KT: u32 = 32u;
// Elements summed by the unit in f32 before the sums go to i32 (see above).
const FLUSH: u32 = 1024u;
// Values per lane and accumulator at most (S * S / SG), and so per lane 4 * PER_MAX.
const PER_MAX: u32 = 8u;

var<workgroup> As: array<f16, 2048>; // [TILE][KT]
var<workgroup> Bs: array<f16, 2048>; // [TILE][KT]
// Each subgroup's S x S staging, row-major: subgroup g at g * S * S (TILE^2 / 4 in all).
var<workgroup> Cs: array<f32, 1024>;
var<workgroup> wg_amax: atomic<u32>;

// This lane's exact sums of the current chunk, its folded values and its raw i32 totals, by
// accumulator q and value t at q * PER_MAX + t.
var<private> isum: array<i32, 32>;
var<private> accf: array<f32, 32>;
var<private> raw_acc: array<i32, 32>;

// This workgroup's tile and this subgroup's block, lane and size.
struct Place {
    k_lo: u32,
    k_hi: u32,
    base: u32,
    m0: u32,
    n0: u32,
    bm: u32,
    bn: u32,
    sg: u32,
    lane: u32,
    s: u32,
    valid: bool,
}

fn place(flat: u32, sg: u32, lane: u32, s: u32, lid: u32) -> Place {
    let st = split_tile(p, flat);
    k_end = st.k_hi;
    let blocks = TILE / (2u * s);
    for (var i = 0u; i < 32u; i++) {
        isum[i] = 0;
        accf[i] = 0.0;
        raw_acc[i] = 0;
    }
    if (lid == 0u) {
        atomicStore(&wg_amax, 0u);
    }
    return Place(st.k_lo, st.k_hi, st.base, (st.tile / p.tiles_n) * TILE, (st.tile % p.tiles_n) * TILE, (sg / blocks) * 2u * s,
                 (sg % blocks) * 2u * s, sg, lane, s, st.valid);
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

// After accumulator q was staged in Cs: its exact f32 sums into this lane's i32 sums.
fn take(pl: Place, q: u32) {
    workgroupBarrier();
    let per = pl.s * pl.s / SG;
    for (var t = 0u; t < per; t++) {
        isum[q * PER_MAX + t] += i32(Cs[pl.sg * pl.s * pl.s + pl.lane + SG * t]);
    }
    workgroupBarrier();
}

// This lane's value t of accumulator q: its output row and column.
fn out_row(pl: Place, q: u32, t: u32) -> u32 {
    return pl.m0 + pl.bm + (q / 2u) * pl.s + (pl.lane + SG * t) / pl.s;
}

fn out_col(pl: Place, q: u32, t: u32) -> u32 {
    return pl.n0 + pl.bn + (q % 2u) * pl.s + (pl.lane + SG * t) % pl.s;
}

// End of the scale chunk that ends at element `done`: its exact sums folded as gemm_int folds
// them (rows and columns clamped to the last for their scales).
fn fold(pl: Place, done: u32) {
    let kc = ((done - 1u) / p.chunk) * p.chunk;
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

// Whether the unit's step ending at element `done` ends a scale chunk (or this split's K range).
fn chunk_ends(pl: Place, done: u32) -> bool {
    return done % p.chunk == 0u || done == pl.k_hi;
}

// The epilogue and stores of this lane's values, and the tile's amax.
fn finish(pl: Place, lid: u32) {
    let raw = (p.flags & FLAG_RAW) != 0u;
    let per = pl.s * pl.s / SG;
    var local_amax = 0u;
    if (pl.valid) {
        for (var q = 0u; q < 4u; q++) {
            for (var t = 0u; t < per; t++) {
                let row = out_row(pl, q, t);
                let col = out_col(pl, q, t);
                if (row < p.m && col < p.n && p.splits > 1u) {
                    c[pl.base + row * p.n + col] = accf[q * PER_MAX + t];
                } else if (row < p.m && col < p.n) {
                    let at = c_off + row * p.n + col;
                    if (raw) {
                        c[at] = bitcast<f32>(raw_acc[q * PER_MAX + t]);
                    } else {
                        var bn = 0.0;
                        if ((p.flags & FLAG_BIAS) != 0u) {
                            bn = bias[col];
                        }
                        let v = epilogue_value(p, accf[q * PER_MAX + t], c[at], bn);
                        c[at] = v;
                        local_amax = max(local_amax, amax_bits(v));
                    }
                }
            }
        }
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&wg_amax, local_amax);
        workgroupBarrier();
        if (lid == 0u && pl.valid) {
            atomicMax(&amax[0], atomicLoad(&wg_amax));
        }
    }
}

@compute @workgroup_size(WG)
fn main8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32,
         @builtin(subgroup_invocation_id) lane: u32) {
    let pl = place(wg.x + wg.y * nwg.x, sg, lane, 8u, lid);
    var x0 = coop_mat8x8<f32, C>();
    var x1 = coop_mat8x8<f32, C>();
    var x2 = coop_mat8x8<f32, C>();
    var x3 = coop_mat8x8<f32, C>();
    var since = 0u;
    for (var k0 = pl.k_lo; k0 < pl.k_hi; k0 += KT) {
        load_step(lid, pl, k0);
        workgroupBarrier();
        for (var kk = 0u; kk < KT && k0 + kk < pl.k_hi; kk += 8u) {
            let a0 = coopLoadT<coop_mat8x8<f16, A>>(&As[pl.bm * KT + kk], KT);
            let a1 = coopLoadT<coop_mat8x8<f16, A>>(&As[(pl.bm + 8u) * KT + kk], KT);
            let b0 = coopLoad<coop_mat8x8<f16, B>>(&Bs[pl.bn * KT + kk], KT);
            let b1 = coopLoad<coop_mat8x8<f16, B>>(&Bs[(pl.bn + 8u) * KT + kk], KT);
            x0 = coopMultiplyAdd(a0, b0, x0);
            x1 = coopMultiplyAdd(a0, b1, x1);
            x2 = coopMultiplyAdd(a1, b0, x2);
            x3 = coopMultiplyAdd(a1, b1, x3);
            let done = min(k0 + kk + 8u, pl.k_hi);
            since += 8u;
            let ends = chunk_ends(pl, done);
            if (ends || since == FLUSH) {
                let base = pl.sg * 64u;
                coopStoreT(x0, &Cs[base], 8u);
                take(pl, 0u);
                coopStoreT(x1, &Cs[base], 8u);
                take(pl, 1u);
                coopStoreT(x2, &Cs[base], 8u);
                take(pl, 2u);
                coopStoreT(x3, &Cs[base], 8u);
                take(pl, 3u);
                x0 = coop_mat8x8<f32, C>();
                x1 = coop_mat8x8<f32, C>();
                x2 = coop_mat8x8<f32, C>();
                x3 = coop_mat8x8<f32, C>();
                since = 0u;
                if (ends) {
                    fold(pl, done);
                }
            }
        }
        workgroupBarrier();
    }
    finish(pl, lid);
}

// main8 with 16x16x16 matrices.
@compute @workgroup_size(WG)
fn main16(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32,
          @builtin(subgroup_invocation_id) lane: u32) {
    let pl = place(wg.x + wg.y * nwg.x, sg, lane, 16u, lid);
    var x0 = coop_mat16x16<f32, C>();
    var x1 = coop_mat16x16<f32, C>();
    var x2 = coop_mat16x16<f32, C>();
    var x3 = coop_mat16x16<f32, C>();
    var since = 0u;
    for (var k0 = pl.k_lo; k0 < pl.k_hi; k0 += KT) {
        load_step(lid, pl, k0);
        workgroupBarrier();
        for (var kk = 0u; kk < KT && k0 + kk < pl.k_hi; kk += 16u) {
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&As[pl.bm * KT + kk], KT);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&As[(pl.bm + 16u) * KT + kk], KT);
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&Bs[pl.bn * KT + kk], KT);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&Bs[(pl.bn + 16u) * KT + kk], KT);
            x0 = coopMultiplyAdd(a0, b0, x0);
            x1 = coopMultiplyAdd(a0, b1, x1);
            x2 = coopMultiplyAdd(a1, b0, x2);
            x3 = coopMultiplyAdd(a1, b1, x3);
            let done = min(k0 + kk + 16u, pl.k_hi);
            since += 16u;
            let ends = chunk_ends(pl, done);
            if (ends || since == FLUSH) {
                let base = pl.sg * 256u;
                coopStoreT(x0, &Cs[base], 16u);
                take(pl, 0u);
                coopStoreT(x1, &Cs[base], 16u);
                take(pl, 1u);
                coopStoreT(x2, &Cs[base], 16u);
                take(pl, 2u);
                coopStoreT(x3, &Cs[base], 16u);
                take(pl, 3u);
                x0 = coop_mat16x16<f32, C>();
                x1 = coop_mat16x16<f32, C>();
                x2 = coop_mat16x16<f32, C>();
                x3 = coop_mat16x16<f32, C>();
                since = 0u;
                if (ends) {
                    fold(pl, done);
                }
            }
        }
        workgroupBarrier();
    }
    finish(pl, lid);
}
