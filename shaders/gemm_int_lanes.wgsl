// gemm_int_lanes: gemm_int for CPU adapters whose subgroup is one 8-wide SIMD vector (lavapipe):
// the same output as gemm_int's `main` tiles, bit for bit. Why a kernel of its
// own: gemm_int's tiles go through workgroup memory, which llvmpipe loads lane by lane, and its
// dot4I8Packed is emulated there; on the convolutions of a small ResNet gemm_int took 5x
// gemm_f32_lanes' time for the same products. Here the 16 x 32 tiles, loads, broadcasts and
// stores of gemm_f32_lanes (common/lanes.wgsl) run on the codes' lane values as f32 (lane_f32_a/b
// of common/int_codes.wgsl: widened to int8 lanes and converted, log4 and E2M1 decoded
// directly): every lane value is at most 128 in magnitude, so
// within a chunk of CHUNK_WORDS lane words (1024 products) every product and every partial sum is
// an integer of at most 2^24, exact in f32 whatever the order; each chunk's sums are added into
// i32 accumulators, so the i32 total is gemm_int's exact sum (wrapping as its i32 sums wrap) and
// the output is formed from it as gemm_int forms it:
//   c = epilogue(0 + (f32(isum) * lane_unit * sa(m)) * sb(n)),
// or with FLAG_RAW the bits of isum. With scale blocks along K (p.chunk < K, at most
// 4 * CHUNK_WORDS elements: the block-scaled formats, int8+block32) each block's exact sum is
// folded as gemm_int's `main` folds it, block by block in order:
//   acc += (f32(isum_block) * lane_unit * sa(m, block)) * sb(n, block),
// then c = epilogue(acc) (its 128 tile folds with fma: within gemm_int's bound, not its bits).
// With p.batches > 1 the products follow each other as in gemm_int (a_row0, b_row0, c_off from
// split_tile). Split along K (p.splits > 1: one scale chunk over K, or the long chunks below; one
// sample, one product, not raw), where few tiles would leave a CPU's cores idle (a convolution's
// weight gradient, its K the batch's pixels): split s of `main` writes its exact i32 sums over K
// elements [s·k_split, (s + 1)·k_split), as bits, at s·M·N in C's layout (c bound to a scratch
// buffer), and entry `main_combine` adds the splits' sums (i32, wrapping as the unsplit sums
// wrap: the same total in any order), a workgroup per tile, and stores them through `main`'s end,
// into C: the unsplit bits. With FLAG_SWAP (common/lanes.wgsl: a narrow product computed as Cᵀ,
// its A and B exchanged, FMT_A and FMT_B too) sa is C's column scale and sb its row's, applied in
// C's order: (isum · lane_unit · sb) · sa, the same bits.
// Rows and columns past M and N read lane words of 0 and are not stored.
// Entry `main_samples` (below): SMP's stacked samples of A, their products averaged as gemm_int
// averages them; with one sample, scale chunks longer than 4 * CHUNK_WORDS that do not span K
// (the exact i32 run of a longer K: int8 x int8 past 131,040), each summed in i32 and folded.
// Such a product split along K (one sample, few tiles) runs `main` instead: its splits restart
// at every chunk (split_tile's chunk_splits), and `main_combine` folds each chunk's total as
// main_samples folds it, then ends as main_samples ends: its bits.
// Bindings: 0 params, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 bias, 6 c (read-write),
// 7 amax (read-write atomic u32), as gemm_int's; entry main_combine also 8 parts (read i32: the
// splits' sums). Reference: src/reference/gemm_int.rs.

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
// Entry main_combine only: p.splits sums of M·N outputs each, split after split, in C's layout.
@group(0) @binding(8) var<storage, read> parts: array<i32>;

// Lane words (4 products each) summed in f32 before the sums go to the i32 accumulators:
// 1024 products of at most 128 x 128 = 2^14 stay within f32's 2^24 exact integers.
const CHUNK_WORDS: u32 = 256u;

// Row m0 + 8 * half + lane's lane word kw of sample s, as four f32.
fn load_a(m0: u32, kw: u32, lane: u32, half: u32, s: u32) -> vec4<f32> {
    return lane_f32_a(m0 + 8u * half + lane, kw, s);
}

// This lane's four columns (n0 + 8 cc + lane) at lane word kw: column kk of the result holds
// the four columns' values at element 4 kw + kk.
fn load_b(n0: u32, kw: u32, lane: u32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(lane_f32_b(n0 + lane, kw), lane_f32_b(n0 + 8u + lane, kw),
                                 lane_f32_b(n0 + 16u + lane, kw),
                                 lane_f32_b(n0 + 24u + lane, kw)));
}

// The 16 rows' four outputs of this lane, as i32 (row 4q + i: index 4q + i).
struct IAcc {
    r: array<vec4<i32>, 16>,
}

fn flush(iacc: IAcc, acc: Acc) -> IAcc {
    var o = iacc;
    o.r[0] += vec4<i32>(acc.q0[0]);
    o.r[1] += vec4<i32>(acc.q0[1]);
    o.r[2] += vec4<i32>(acc.q0[2]);
    o.r[3] += vec4<i32>(acc.q0[3]);
    o.r[4] += vec4<i32>(acc.q1[0]);
    o.r[5] += vec4<i32>(acc.q1[1]);
    o.r[6] += vec4<i32>(acc.q1[2]);
    o.r[7] += vec4<i32>(acc.q1[3]);
    o.r[8] += vec4<i32>(acc.q2[0]);
    o.r[9] += vec4<i32>(acc.q2[1]);
    o.r[10] += vec4<i32>(acc.q2[2]);
    o.r[11] += vec4<i32>(acc.q2[3]);
    o.r[12] += vec4<i32>(acc.q3[0]);
    o.r[13] += vec4<i32>(acc.q3[1]);
    o.r[14] += vec4<i32>(acc.q3[2]);
    o.r[15] += vec4<i32>(acc.q3[3]);
    return o;
}

// This lane's column cc of the tile (the stores of common/lanes.wgsl).
fn column(n0: u32, lane: u32, cc: u32) -> u32 {
    return n0 + 8u * cc + lane;
}

// Stores row `row`'s four outputs of this lane from their exact sums, with this lane's column
// scales sb and bias bn (each loaded once per tile: tile_scales_b, lanes_bias); returns the
// running max |output| bits.
fn store_row(iv: vec4<i32>, row: u32, n0: u32, lane: u32, amax_in: u32, sb: vec4<f32>, bn: vec4<f32>) -> u32 {
    if (row >= p.m) {
        return amax_in;
    }
    if ((p.flags & FLAG_RAW) != 0u) {
        for (var cc = 0u; cc < 4u; cc++) {
            let col = column(n0, lane, cc);
            if (col < p.n) {
                c[lanes_at(row, col)] = bitcast<f32>(iv[cc]);
            }
        }
        return amax_in;
    }
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    let v = vec4<f32>(0.0) + scale_sums(vec4<f32>(iv), scale_a(0u, row, 0u, a_groups), sb);
    return lanes_store_row(v, row, n0, lane, amax_in, bn);
}

// Exact sums of one row of this launch and this lane's four columns, times the lane unit, then
// C's row scale, then its column's (sa is this launch's row scale, sb its columns'; with
// FLAG_SWAP this launch's rows are C's columns, so the order turns round): gemm_int's roundings.
fn scale_sums(sums: vec4<f32>, sa: f32, sb: vec4<f32>) -> vec4<f32> {
    let swap = (p.flags & FLAG_SWAP) != 0u;
    return (sums * lane_unit() * select(vec4<f32>(sa), sb, swap)) * select(sb, vec4<f32>(sa), swap);
}

// This lane's four column scales of the block at element k (columns past N read the last's).
fn tile_scales_b(n0: u32, lane: u32, k: u32) -> vec4<f32> {
    let last = p.n - 1u;
    return vec4<f32>(scale_b(min(column(n0, lane, 0u), last), k), scale_b(min(column(n0, lane, 1u), last), k),
                     scale_b(min(column(n0, lane, 2u), last), k), scale_b(min(column(n0, lane, 3u), last), k));
}

// One row quad's block sums folded into acc: column i is row m0 + 4 q + i, whose scale is
// component i of sa.
fn fold_quad(acc: mat4x4<f32>, sums: mat4x4<f32>, sa: vec4<f32>, sb: vec4<f32>) -> mat4x4<f32> {
    var r = acc;
    for (var i = 0u; i < 4u; i++) {
        r[i] += scale_sums(sums[i], sa[i], sb);
    }
    return r;
}

// The block starting at element kc (of sample s): every output's exact block sum scaled by its
// row's and column's block scales and added, as gemm_int's `main` folds a chunk. Lane l loads the
// scales of rows m0 + l and m0 + 8 + l (rows past M read the last's) and the subgroup's
// broadcasts give each lane all 16, where each lane loaded all 16 (on llvmpipe every load runs
// lane by lane; resnet20's NVFP4 products, 870-991 -> 739-802 ms a step). Called in the subgroup's
// uniform control flow.
fn fold(acc: Acc, sums: Acc, m0: u32, n0: u32, lane: u32, kc: u32, s: u32) -> Acc {
    let sb = tile_scales_b(n0, lane, kc);
    let a_groups = select(1u, p.m, p.a_row_mul != 0u) * max(p.a_row_mul, 1u);
    let lo = scale_a(s, min(m0 + lane, p.m - 1u), kc, a_groups);
    let hi = scale_a(s, min(m0 + 8u + lane, p.m - 1u), kc, a_groups);
    var r: Acc;
    r.q0 = fold_quad(acc.q0, sums.q0, lanes4(lo, 0u), sb);
    r.q1 = fold_quad(acc.q1, sums.q1, lanes4(lo, 1u), sb);
    r.q2 = fold_quad(acc.q2, sums.q2, lanes4(hi, 0u), sb);
    r.q3 = fold_quad(acc.q3, sums.q3, lanes4(hi, 1u), sb);
    return r;
}

// v of lanes 4 quad .. 4 quad + 3 (the lane indices of subgroupBroadcast must be constants).
fn lanes4(v: f32, quad: u32) -> vec4<f32> {
    if (quad == 0u) {
        return vec4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                         subgroupBroadcast(v, 3u));
    }
    return vec4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u),
                     subgroupBroadcast(v, 7u));
}

// This lane's sums of products of sample s over lane words k0 .. k1 (at most CHUNK_WORDS: exact
// in f32).
fn exact_sums(m0: u32, n0: u32, lane: u32, k0: u32, k1: u32, s: u32) -> Acc {
    var acc: Acc;
    for (var kw = k0; kw < k1; kw++) {
        let lo = load_a(m0, kw, lane, 0u, s);
        let hi = load_a(m0, kw, lane, 1u, s);
        acc = mac_quads(acc, load_b(n0, kw, lane), rows_nt(lo, 0u), rows_nt(lo, 1u), rows_nt(hi, 0u), rows_nt(hi, 1u));
    }
    return acc;
}

// Workgroup `id`'s tile (setting k_end): whether it is one, its first row and column, and K's
// lane words.
fn tile_at(id: u32) -> vec4<u32> {
    let st = split_tile(p, id);
    k_end = p.k;
    return vec4<u32>(u32(st.valid), (st.tile / p.tiles_n) * 16u, (st.tile % p.tiles_n) * 32u, (p.k + 3u) / 4u);
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = tile_at(wg.x + wg.y * nwg.x);
    if (t.x == 0u) {
        return;
    }
    let m0 = t.y;
    let n0 = t.z;
    let kwords = t.w;
    if (p.chunk < p.k && (p.flags & FLAG_RAW) == 0u && p.splits <= 1u) {
        // Scale blocks along K: fold each block's exact sums with its scales.
        let chunk_words = p.chunk / 4u;
        var accf: Acc;
        for (var k0 = 0u; k0 < kwords; k0 += chunk_words) {
            accf = fold(accf, exact_sums(m0, n0, lane, k0, min(k0 + chunk_words, kwords), 0u), m0, n0, lane, 4u * k0, 0u);
        }
        lanes_finish(accf, m0, n0, lane);
        return;
    }
    // This workgroup's lane words of K: all, or its split's (starting at a multiple of 32
    // elements; within one scale chunk where K has several: split_tile's chunk_splits).
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    var k_lo = 0u;
    var k_hi = kwords;
    if (p.splits > 1u) {
        k_lo = st.k_lo / 4u;
        k_hi = (st.k_hi + 3u) / 4u;
    }
    var iacc: IAcc;
    for (var k0 = k_lo; k0 < k_hi; k0 += CHUNK_WORDS) {
        iacc = flush(iacc, exact_sums(m0, n0, lane, k0, min(k0 + CHUNK_WORDS, k_hi), 0u));
    }
    if (p.splits > 1u) {
        for (var i = 0u; i < 16u; i++) {
            store_split_row(iacc.r[i], m0 + i, n0, lane, st.base);
        }
        return;
    }
    store_sums(iacc, m0, n0, lane);
}

// This lane's outputs of the tile from their exact sums (store_row; `main`'s end, and
// `main_combine`'s from the splits' total), and max |C| where asked.
fn store_sums(iacc: IAcc, m0: u32, n0: u32, lane: u32) {
    // One loop over the 16 rows rather than 16 copies of the stores (as gemm_f32_lanes).
    let sb = tile_scales_b(n0, lane, 0u);
    let bn = lanes_bias(n0, lane);
    var m = 0u;
    for (var i = 0u; i < 16u; i++) {
        m = store_row(iacc.r[i], m0 + i, n0, lane, m, sb, bn);
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&amax[0], m);
    }
}

// A split's exact sums of row `row` and this lane's four columns, as bits at base (its split's
// M·N outputs) in C's layout.
fn store_split_row(iv: vec4<i32>, row: u32, n0: u32, lane: u32, base: u32) {
    if (row >= p.m) {
        return;
    }
    for (var cc = 0u; cc < 4u; cc++) {
        let col = column(n0, lane, cc);
        if (col < p.n) {
            c[base + lanes_at(row, col)] = bitcast<f32>(iv[cc]);
        }
    }
}

// A tile's outputs from the total of the splits' sums (a workgroup per tile, numbered as split 0's
// in `main`): each lane adds its outputs' sums over the splits (i32, the same total whatever the
// order) and stores them through `main`'s own end (store_sums).
@compute @workgroup_size(8)
fn main_combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = tile_at(wg.x + wg.y * nwg.x);
    if (t.x == 0u) {
        return;
    }
    let mn = p.m * p.n;
    if (p.chunk_splits != 0u) {
        // Several scale chunks (the exact i32 run of a longer K), p.chunk_splits splits each:
        // each chunk's exact sum folded in turn as main_samples folds it (one sample).
        var accf: Acc;
        for (var s0 = 0u; s0 < p.splits; s0 += p.chunk_splits) {
            var ic: IAcc;
            for (var s = s0; s < min(s0 + p.chunk_splits, p.splits); s++) {
                for (var i = 0u; i < 16u; i++) {
                    ic.r[i] += split_row(t.y + i, t.z, lane, s * mn);
                }
            }
            accf = fold(accf, acc_f32(ic), t.y, t.z, lane, (s0 / p.chunk_splits) * p.chunk, 0u);
        }
        lanes_finish(accf, t.y, t.z, lane);
        return;
    }
    var iacc: IAcc;
    for (var s = 0u; s < p.splits; s++) {
        for (var i = 0u; i < 16u; i++) {
            iacc.r[i] += split_row(t.y + i, t.z, lane, s * mn);
        }
    }
    store_sums(iacc, t.y, t.z, lane);
}

// A split's exact sums of row `row` and this lane's four columns, from base (0 past M or N).
fn split_row(row: u32, n0: u32, lane: u32, base: u32) -> vec4<i32> {
    var v = vec4<i32>();
    for (var cc = 0u; cc < 4u; cc++) {
        let col = column(n0, lane, cc);
        if (row < p.m && col < p.n) {
            v[cc] = parts[base + lanes_at(row, col)];
        }
    }
    return v;
}

// The exact sums as f32 (each i32 rounded as gemm_int rounds its sums when it folds them).
fn acc_f32(iacc: IAcc) -> Acc {
    var r: Acc;
    r.q0 = mat4x4<f32>(vec4<f32>(iacc.r[0]), vec4<f32>(iacc.r[1]), vec4<f32>(iacc.r[2]), vec4<f32>(iacc.r[3]));
    r.q1 = mat4x4<f32>(vec4<f32>(iacc.r[4]), vec4<f32>(iacc.r[5]), vec4<f32>(iacc.r[6]), vec4<f32>(iacc.r[7]));
    r.q2 = mat4x4<f32>(vec4<f32>(iacc.r[8]), vec4<f32>(iacc.r[9]), vec4<f32>(iacc.r[10]), vec4<f32>(iacc.r[11]));
    r.q3 = mat4x4<f32>(vec4<f32>(iacc.r[12]), vec4<f32>(iacc.r[13]), vec4<f32>(iacc.r[14]), vec4<f32>(iacc.r[15]));
    return r;
}

// Entry `main_samples` (SMP: A holds p.samples = S > 1 stacked samples; or one sample whose scale
// chunks are longer than `main` folds from f32 sums; never swapped or raw, batched only with one
// sample): each sample's product formed as `main` forms one — per scale chunk (a block along K, or
// all of K) the exact i32 sum over pieces of CHUNK_WORDS lane words — and folded into one f32
// accumulator sample after sample, chunk after chunk, then times 1/S before the epilogue:
// gemm_int's order (its accf over samples, then chunks; the mean in its epilogue), bit for bit.
@compute @workgroup_size(8)
fn main_samples(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = tile_at(wg.x + wg.y * nwg.x);
    if (t.x == 0u) {
        return;
    }
    let m0 = t.y;
    let n0 = t.z;
    let kwords = t.w;
    let chunk_words = select(kwords, p.chunk / 4u, p.chunk < p.k);
    var accf: Acc;
    for (var s = 0u; s < p.samples; s++) {
        for (var k0 = 0u; k0 < kwords; k0 += chunk_words) {
            let k1 = min(k0 + chunk_words, kwords);
            var iacc: IAcc;
            for (var c0 = k0; c0 < k1; c0 += CHUNK_WORDS) {
                iacc = flush(iacc, exact_sums(m0, n0, lane, c0, min(c0 + CHUNK_WORDS, k1), s));
            }
            accf = fold(accf, acc_f32(iacc), m0, n0, lane, 4u * k0, s);
        }
    }
    let inv = 1.0 / f32(p.samples);
    accf.q0 = accf.q0 * inv;
    accf.q1 = accf.q1 * inv;
    accf.q2 = accf.q2 * inv;
    accf.q3 = accf.q3 * inv;
    lanes_finish(accf, m0, n0, lane);
}
