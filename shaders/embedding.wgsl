// embedding: token and learned position embeddings of n = B·T tokens (B sequences of T
// positions), the ids given as f32 (exact below 2^24):
// forward:        y[i, c] = table[id_i, c] + pos[i % T, c]; an id that is not an integer in
//                 [0, vocab) makes its row NaN (so the step's finiteness check refuses it).
// backward_table: dtable[v, c] = Σ over tokens i with id_i = v, in token order, of dy[i, c].
//                 One workgroup per vocabulary row: its threads test 256 ids at a time, a scan
//                 of the hits over the workgroup lists the matching tokens in order, then each
//                 thread (one column) adds the listed rows in that order, so the sums are
//                 deterministic and cost O(vocab·n) tests plus O(n·dim) adds (each thread had
//                 walked all 256 flags of every chunk, O(vocab·n·dim) in all: most of a small
//                 GPT's step on a CPU adapter).
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

// backward_table: the scan of a chunk's hits (inclusive: flags[j] counts the hits among tokens
// t0 .. t0 + j), then the chunk's matching tokens in order.
var<workgroup> flags: array<u32, 256>;
var<workgroup> hits: array<u32, 256>;
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
fn backward_table(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // One vocabulary row per workgroup (uniform across it, so the barriers below are too).
    let v = wg.x + wg.y * nwg.x;
    if (v >= p.vocab) {
        return;
    }
    let fv = f32(v);
    for (var c0 = 0u; c0 < p.dim; c0 += 256u) {
        let c = c0 + lid;
        var acc = 0.0;
        for (var t0 = 0u; t0 < p.n; t0 += 256u) {
            let tok = t0 + lid;
            var hit = 0u;
            if (tok < p.n) {
                hit = select(0u, 1u, ids[tok] == fv);
            }
            flags[lid] = hit;
            workgroupBarrier();
            if (lid == 0u) {
                var m = 0u;
                for (var j = 0u; j < 256u; j++) {
                    if (flags[j] == 1u) {
                        hits[m] = t0 + j;
                        m += 1u;
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
