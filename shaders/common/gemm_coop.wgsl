// The cooperative-matrix GEMMs' loop (gemm_int_coop, gemm_fp8_coop): C = epilogue(A·Bᵀ) on the
// unit (tensor cores) with f16 x f16 -> f32 matrices of 8x8x8 (entry main8; lavapipe from Mesa
// 25.1 on) or 16x16x16 (entry main16; NVIDIA's), each operand's codes decoded to f16 in
// workgroup memory, their values exact in f16 (the including kernel says why for its formats).
// Layout: TILE x TILE = 64 x 64 outputs per workgroup; K in steps of KT = 32 elements, each
// step's codes decoded by the kernel's load_step into As (A's 64 rows, row-major) and Bs (B's 64
// rows, i.e. the product's columns, each a column of the K x N operand). The workgroup is
// (TILE / 2S)^2 subgroups of SG lanes (override WG = that many invocations; the launchers build
// it only where the adapter's subgroups have one size, SG, with S * S / SG at most 8); subgroup g
// owns the 2S x 2S block (2S (g / (TILE / 2S)), 2S (g % (TILE / 2S))) as four S x S
// accumulators (q = 2 i + j: rows i S .., columns j S .. of the block). In the kernel's sums and
// the folded f32 values (accf) lane l holds, of accumulator q, the elements e = l + SG t
// (t < S * S / SG), at row e / S and column e % S of it, at index q * PER_MAX + t.
// Every FLUSH elements (the kernel's constant) and at the end of every scale chunk (p.chunk, or
// the split's K range) each accumulator is stored through Cs and handed to the kernel's take, and
// at a chunk's end the kernel's fold scales the chunk's sums into accf; finish applies the
// epilogue (or, under FLAG_RAW, stores the kernel's raw_value) and records amax as the tiled
// GEMMs do. Split along K as the tiled GEMMs split (a split's folded values, without epilogue, to
// c at its base, p.splits > 1; under FLAG_RAW its raw values there, for gemm_int's
// main_combine); p.batches products one after another (a_row0, b_row0, c_off from split_tile).
// Scale chunks are whole K steps of the unit (p.chunk a multiple of S) or one chunk over all of
// K: the launchers check. Rows past M, columns past N and K past its end read codes
// of value 0, and nothing is stored past M or N.
// The including kernel declares p, c, bias, amax, k_end and provides: const FLUSH; load_step(lid,
// pl, k0); clear_sums(); take(pl, q) (accumulator q, its lane's values read with staged(pl, t));
// fold(pl, done); raw_value(i).

// Lanes per subgroup (the adapter's one subgroup size) and invocations per workgroup,
// (TILE / 2S)^2 * SG.
override SG: u32 = 8u;
override WG: u32 = 128u;

const TILE: u32 = 64u;
const KT: u32 = 32u;
// Values per lane and accumulator at most (S * S / SG), and so per lane 4 * PER_MAX.
const PER_MAX: u32 = 8u;

var<workgroup> As: array<f16, 2048>; // [TILE][KT]
var<workgroup> Bs: array<f16, 2048>; // [TILE][KT]
// Each subgroup's S x S staging, row-major: subgroup g at g * S * S (TILE^2 / 4 in all).
var<workgroup> Cs: array<f32, 1024>;
var<workgroup> wg_amax: atomic<u32>;

// This lane's folded values, by accumulator q and value t at q * PER_MAX + t.
var<private> accf: array<f32, 32>;

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
        accf[i] = 0.0;
    }
    clear_sums();
    if (lid == 0u) {
        atomicStore(&wg_amax, 0u);
    }
    return Place(st.k_lo, st.k_hi, st.base, (st.tile / p.tiles_n) * TILE, (st.tile % p.tiles_n) * TILE, (sg / blocks) * 2u * s,
                 (sg % blocks) * 2u * s, sg, lane, s, st.valid);
}

// Accumulator q, just stored to this subgroup's Cs by coopStoreT, through the kernel's take.
fn hand_over(pl: Place, q: u32) {
    workgroupBarrier();
    take(pl, q);
    workgroupBarrier();
}

// The staged value t of this lane's accumulator (after take's barrier).
fn staged(pl: Place, t: u32) -> f32 {
    return Cs[pl.sg * pl.s * pl.s + pl.lane + SG * t];
}

// This lane's value t of accumulator q: its output row and column.
fn out_row(pl: Place, q: u32, t: u32) -> u32 {
    return pl.m0 + pl.bm + (q / 2u) * pl.s + (pl.lane + SG * t) / pl.s;
}

fn out_col(pl: Place, q: u32, t: u32) -> u32 {
    return pl.n0 + pl.bn + (q % 2u) * pl.s + (pl.lane + SG * t) % pl.s;
}

// The first element of the scale chunk that ends at element `done`.
fn chunk_start(done: u32) -> u32 {
    return ((done - 1u) / p.chunk) * p.chunk;
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
                if (row < p.m && col < p.n && raw) {
                    // (A split's base is 0 unsplit, c_off 0 split: one product.)
                    c[pl.base + c_off + row * p.n + col] = raw_value(q * PER_MAX + t);
                } else if (row < p.m && col < p.n && p.splits > 1u) {
                    c[pl.base + row * p.n + col] = accf[q * PER_MAX + t];
                } else if (row < p.m && col < p.n) {
                    let at = c_off + row * p.n + col;
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
                hand_over(pl, 0u);
                coopStoreT(x1, &Cs[base], 8u);
                hand_over(pl, 1u);
                coopStoreT(x2, &Cs[base], 8u);
                hand_over(pl, 2u);
                coopStoreT(x3, &Cs[base], 8u);
                hand_over(pl, 3u);
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
                hand_over(pl, 0u);
                coopStoreT(x1, &Cs[base], 16u);
                hand_over(pl, 1u);
                coopStoreT(x2, &Cs[base], 16u);
                hand_over(pl, 2u);
                coopStoreT(x3, &Cs[base], 16u);
                hand_over(pl, 3u);
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
