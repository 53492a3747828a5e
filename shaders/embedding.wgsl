// embedding: token and learned position embeddings of n = B·T tokens (B sequences of T
// positions), the ids given as f32 (exact below 2^24):
// forward:        y[i, c] = table[id_i, c] + pos[i % T, c]; an id that is not an integer in
//                 [0, vocab) makes its row NaN (so the step's finiteness check refuses it).
// backward_table: dtable[v, c] = Σ over tokens i with id_i = v, in token order, of dy[i, c].
//                 One workgroup per vocabulary row: its threads test 1024 ids at a time, setting
//                 a bit per hit, one thread lists the hits in token order from the bits, then
//                 each thread (one column) adds the listed rows in that order, so the sums are
//                 deterministic and cost O(vocab·n) tests plus O(n·dim) adds (each thread had
//                 walked a flag per token of every chunk, O(vocab·n·dim) in all: a tenth of a
//                 small GPT's step on a CPU adapter).
//                 Entry forward_v4 (dim a multiple of 4): a thread per vec4 of y, through the
//                 *4 views of the same bindings (a quarter of the index arithmetic, which SIMD
//                 lanes of a CPU adapter divide one by one).
// backward_pos:   dpos[t, c] = Σ_b dy[b·T + t, c], b in order; one thread per (t, c).
// Every sum is in f32 in a fixed order: the reference matches bit for bit.
// Reference: src/reference/embedding.rs. Bindings: 0 params {n, t, dim, vocab}, 1 ids, 2 table,
// 3 pos, 4 out (y, dtable or dpos), 5 dy.

struct EmbedParams {
    n: u32,
    t: u32,
    dim: u32,
    vocab: u32,
}

@group(0) @binding(0) var<uniform> p: EmbedParams;
@group(0) @binding(1) var<storage, read> ids: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
// table, pos and out again, as vec4s (forward_v4 only).
@group(0) @binding(2) var<storage, read> table4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> pos4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;

// backward_table: a chunk of CHUNK tokens' hits as bits (token t0 + j: bit j % 32 of word j / 32),
// then the chunk's matching tokens in order, and their count. (CHUNK / 32 words: at most 256,
// one per thread to clear.)
const CHUNK: u32 = 1024u;
var<workgroup> hit_bits: array<atomic<u32>, 32>;
var<workgroup> hits: array<u32, 1024>;
var<workgroup> count: u32;

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.n * p.dim) {
        return;
    }
    let tok = i / p.dim;
    let c = i % p.dim;
    let id = ids[tok];
    // NaN fails both comparisons.
    if (id >= 0.0 && id < f32(p.vocab) && floor(id) == id) {
        out[i] = table[u32(id) * p.dim + c] + pos[(tok % p.t) * p.dim + c];
    } else {
        out[i] = bitcast<f32>(0x7fc00000u);
    }
}

@compute @workgroup_size(256)
fn forward_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let d4 = p.dim / 4u;
    if (i >= p.n * d4) {
        return;
    }
    let tok = i / d4;
    let c = i - tok * d4;
    let id = ids[tok];
    // NaN fails both comparisons.
    if (id >= 0.0 && id < f32(p.vocab) && floor(id) == id) {
        out4[i] = table4[u32(id) * d4 + c] + pos4[(tok % p.t) * d4 + c];
    } else {
        out4[i] = vec4<f32>(bitcast<f32>(0x7fc00000u));
    }
}

@compute @workgroup_size(256)
fn backward_table(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // One vocabulary row per workgroup (uniform across it, so the barriers below are too).
    let v = wg.x + wg.y * nwg.x;
    if (v >= p.vocab) {
        return;
    }
    let fv = f32(v);
    // Workgroup memory starts undefined (pipelines skip its zero-initialization: src/gpu.rs).
    if (lid < CHUNK / 32u) {
        atomicStore(&hit_bits[lid], 0u);
    }
    workgroupBarrier();
    for (var c0 = 0u; c0 < p.dim; c0 += 256u) {
        let c = c0 + lid;
        var acc = 0.0;
        for (var t0 = 0u; t0 < p.n; t0 += CHUNK) {
            // Every thread tests CHUNK / 256 ids; the (few) hits set their bits. The bits are
            // clear here: cleared above, then again as they are listed.
            for (var j = lid; j < CHUNK; j += 256u) {
                if (t0 + j < p.n && ids[t0 + j] == fv) {
                    atomicOr(&hit_bits[j / 32u], 1u << (j % 32u));
                }
            }
            workgroupBarrier();
            // One thread lists the hits in token order (lowest bit first), a step per hit.
            if (lid == 0u) {
                var m = 0u;
                for (var w = 0u; w < CHUNK / 32u; w++) {
                    var bits = atomicExchange(&hit_bits[w], 0u);
                    while (bits != 0u) {
                        hits[m] = t0 + w * 32u + firstTrailingBit(bits);
                        m += 1u;
                        bits &= bits - 1u;
                    }
                }
                count = m;
            }
            workgroupBarrier();
            let m = count;
            if (c < p.dim) {
                for (var j = 0u; j < m; j++) {
                    acc += dy[hits[j] * p.dim + c];
                }
            }
            // Before the next chunk's list overwrites this one.
            workgroupBarrier();
        }
        if (c < p.dim) {
            out[v * p.dim + c] = acc;
        }
    }
}

@compute @workgroup_size(256)
fn backward_pos(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.t * p.dim) {
        return;
    }
    var acc = 0.0;
    for (var b = 0u; b < p.n / p.t; b++) {
        acc += dy[b * p.t * p.dim + i];
    }
    out[i] = acc;
}
