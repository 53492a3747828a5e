// Mirror of `GemmParams` in src/kernels/gemm.rs: the uniform block of every GEMM, computing
// C[m][n] = epilogue(sum_k A(m, k) * B(n, k)) with A [M, K] and B [N, K] (the "NT" form;
// trans_a / trans_b read A as stored [K, M] / B as [K, N] in the f32 kernels).
// Output tiles (128, 64 or 32 square), numbered flat over a 2-D dispatch: tile = tm * tiles_n + tn.
// flags: 1 bias[n] added, 2 ReLU, 4 accumulate into C, 8 raw (integer GEMM: write the i32 sum's
// bits, no scales), 16 write max |out| (f32 bits) into amax[0] with atomicMax.

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    trans_a: u32,
    trans_b: u32,
    tiles_n: u32,
    total_tiles: u32,
    a_words: u32,
    b_words: u32,
    a_row_mul: u32,
    a_block_div: u32,
    b_row_mul: u32,
    b_block_div: u32,
    chunk: u32,
    samples: u32,
    splits: u32,
    k_split: u32,
    // Kernel-specific: gemm_levels keeps A's and B's bits per code and level counts here;
    // gemm_int's main_combine, in aux0, 1 where the 128 tile split (its folds fused).
    aux0: u32,
    aux1: u32,
    // Independent products of the same shape, their operands and outputs one after the other
    // (batch b reads A at b·M·K, B at b·N·K, writes C at b·M·N; the packed GEMMs read rows
    // b·M.. of A and b·N.. of B, codes and scales); 0 or 1 for one. Attention's products per batch
    // and head; never split along K, never with SMP samples.
    batches: u32,
    // Splits per scale chunk, 0 for splits over all of K (below).
    chunk_splits: u32,
    pad1: u32,
    pad2: u32,
}

// Split-K, for outputs too small to fill the GPU over a long K (a convolution's weight gradient
// sums over batch·height·width): with splits > 1 the flat workgroup index runs over
// total_tiles · splits, split s covers K elements [s·k_split, min((s + 1)·k_split, K)) and writes
// its partial sum, without epilogue, to c[s·M·N + row·N + col]; the launcher adds the splits in
// order (col_sum) into C. With chunk_splits = P > 0 (an integer GEMM's exact splits of a K of
// several scale chunks, p.chunk a multiple of 32 elements), the splits restart at every chunk: P
// per chunk, split s the (s % P)-th k_split of chunk s / P, cut at the chunk's end, so none
// straddles a chunk (the last chunk, shorter, may take fewer).
struct SplitTile {
    tile: u32,
    k_lo: u32,
    k_hi: u32,
    base: u32,
    valid: bool,
}

// Offsets of this workgroup's batch in A, B and C, and its first rows of packed A and B
// (split_tile sets them).
var<private> a_off: u32;
var<private> b_off: u32;
var<private> c_off: u32;
var<private> a_row0: u32;
var<private> b_row0: u32;

fn split_tile(p: GemmParams, flat: u32) -> SplitTile {
    var s: SplitTile;
    let per_batch = p.total_tiles * max(p.splits, 1u);
    s.valid = flat < per_batch * max(p.batches, 1u);
    let batch = min(flat / per_batch, max(p.batches, 1u) - 1u);
    a_off = batch * p.m * p.k;
    b_off = batch * p.n * p.k;
    c_off = batch * p.m * p.n;
    a_row0 = batch * p.m;
    b_row0 = batch * p.n;
    s.tile = flat % p.total_tiles;
    let split = (flat % per_batch) / p.total_tiles;
    s.k_lo = 0u;
    s.k_hi = p.k;
    s.base = 0u;
    if (p.splits > 1u && p.chunk_splits == 0u) {
        s.k_lo = min(p.k, split * p.k_split);
        s.k_hi = min(p.k, s.k_lo + p.k_split);
        s.base = split * p.m * p.n;
    } else if (p.splits > 1u) {
        let chunk_lo = (split / p.chunk_splits) * p.chunk;
        s.k_lo = min(p.k, chunk_lo + (split % p.chunk_splits) * p.k_split);
        s.k_hi = min(min(p.k, chunk_lo + p.chunk), s.k_lo + p.k_split);
        s.base = split * p.m * p.n;
    }
    return s;
}

const FLAG_BIAS: u32 = 1u;
const FLAG_RELU: u32 = 2u;
const FLAG_ACCUMULATE: u32 = 4u;
const FLAG_RAW: u32 = 8u;
const FLAG_AMAX: u32 = 16u;
// The lanes GEMMs: this launch computes Cᵀ (its A and B the product's B and A), stored as C.
const FLAG_SWAP: u32 = 32u;

// The shift that takes an element's index along K to its scale group's there (a packed
// operand's k / block_div): block_div is a power of two of at least 8 for blocks, u32::MAX for one
// group over the row (31: no index below 2^31 reaches group 1). A shift, not that division, where
// the packed GEMMs look scales up (the FP8 GEMMs for every word they load): llvmpipe divides lane
// by lane (eight divisions a vector), a GPU in a score of instructions.
fn block_shift(block_div: u32) -> u32 {
    return select(firstTrailingBit(block_div), 31u, block_div == 0xffffffffu);
}

// The epilogue shared by every GEMM: C (+)= v (+ bias), ReLU.
fn epilogue_value(p: GemmParams, v0: f32, old: f32, bias_n: f32) -> f32 {
    var v = v0;
    if ((p.flags & FLAG_ACCUMULATE) != 0u) {
        v = old + v;
    }
    if ((p.flags & FLAG_BIAS) != 0u) {
        v = v + bias_n;
    }
    if ((p.flags & FLAG_RELU) != 0u) {
        // v where v > 0, else 0: NaN is not > 0, so it becomes 0 on every backend (max() leaves
        // NaN to the driver).
        v = select(0.0, v, v > 0.0);
    }
    return v;
}
