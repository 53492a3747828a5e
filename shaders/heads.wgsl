// heads: moves attention heads between the token-major layout of a layer's activations and the
// head-major layout of attention's batched products. With B batches, T positions, H heads of D
// values each, and the token-major tensor holding P parts per position (P = 3 for a fused
// q|k|v projection, 1 for attention's output), part `part` of it is:
//   split: src [B, T, P, H, D] (part `part`) -> dst [B, H, T, D]
//   merge: src [B, H, T, D] -> dst [B, T, P, H, D] (part `part`; the other parts untouched)
// One thread per head-major element i: both directions move each element exactly once.
// Reference: src/reference/heads.rs. Bindings: 0 params {batch, t, heads, d, n (= B·H·T·D),
// merge, parts, part}, 1 src, 2 dst.

struct HeadsParams {
    batch: u32,
    t: u32,
    heads: u32,
    d: u32,
    n: u32,
    merge: u32,
    parts: u32,
    part: u32,
}

@group(0) @binding(0) var<uniform> p: HeadsParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    // i indexes [B, H, T, D].
    let e = i % p.d;
    let t = (i / p.d) % p.t;
    let h = (i / (p.d * p.t)) % p.heads;
    let b = i / (p.d * p.t * p.heads);
    let token_major = (((b * p.t + t) * p.parts + p.part) * p.heads + h) * p.d + e;
    if (p.merge == 0u) {
        dst[i] = src[token_major];
    } else {
        dst[token_major] = src[i];
    }
}
