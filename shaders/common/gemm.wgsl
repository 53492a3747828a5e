// Mirror of `GemmParams` in src/kernels/gemm.rs: the uniform block of every GEMM, computing
// C[m][n] = epilogue(sum_k A(m, k) * B(n, k)) with A [M, K] and B [N, K] (the "NT" form;
// trans_a / trans_b read A as stored [K, M] / B as [K, N] in the f32 kernels).
// Output tiles of 64x64, numbered flat over a 2-D dispatch: tile = tm * tiles_n + tn.
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
}

const FLAG_BIAS: u32 = 1u;
const FLAG_RELU: u32 = 2u;
const FLAG_ACCUMULATE: u32 = 4u;
const FLAG_RAW: u32 = 8u;
const FLAG_AMAX: u32 = 16u;

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
        v = max(v, 0.0);
    }
    return v;
}
