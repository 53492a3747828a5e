// heads: moves attention heads between the token-major layout of a layer's activations and the
// head-major layout of attention's batched products. With B batches, T positions, H heads of D
// values each, and the token-major tensor holding P parts per position (P = 3 for a fused
// q|k|v projection, 1 for attention's output), part `part` of it is:
//   split: src [B, T, P, H, D] (part `part`) -> dst [B, H, T, D]
//   merge: src [B, H, T, D] -> dst [B, T, P, H, D] (part `part`; the other parts untouched)
// Both directions move each element exactly once. Entries: main, a thread per head-major element
// (GPU layouts); main_v4, a thread per vec4 of it (D a multiple of 4); main_rows, a thread per
// head-major row of D values (CPU adapters, where SIMD integer division runs lane by lane: main's
// four divisions per element cost many times the move on llvmpipe); main_rows_v4, main_rows
// through vec4s (D a multiple of 4). One entry never reaches both views of a binding.
// Entries main_parts_v4 (a thread per vec4 of a head-major part, GPU layouts) and
// main_parts_rows_v4 (a thread per head-major row, CPU adapters) move all three parts of a fused
// q|k|v tensor (P = 3, D a multiple of 4) in one launch, each thread its element's three parts:
// tok (binding 1) is the token-major tensor, h0, h1, h2 (bindings 2, 3, 4) parts 0, 1, 2
// head-major, and p.merge the direction.
// Reference: src/reference/heads.rs. Bindings: 0 params {batch, t, heads, d, n (= B·H·T·D),
// merge, parts, part}, 1 src, 2 dst; the parts entries 1 tok, 2 h0, 3 h1, 4 h2 (all read_write).

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
// src and dst again, as vec4s (the _v4 entries only).
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

// The parts entries' bindings, as vec4s (the same numbers as src and dst: one entry never
// reaches both).
@group(0) @binding(1) var<storage, read_write> tok4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> h0_4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> h1_4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> h2_4: array<vec4<f32>>;

// The token-major index of head-major row r's first value (r indexes [B, H, T]).
fn token_row(r: u32) -> u32 {
    let t = r % p.t;
    let bh = r / p.t;
    let h = bh % p.heads;
    let b = bh / p.heads;
    return (((b * p.t + t) * p.parts + p.part) * p.heads + h) * p.d;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    // i indexes [B, H, T, D].
    let token_major = token_row(i / p.d) + i % p.d;
    if (p.merge == 0u) {
        dst[i] = src[token_major];
    } else {
        dst[token_major] = src[i];
    }
}

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let d4 = p.d / 4u;
    if (i >= p.n / 4u) {
        return;
    }
    // i indexes [B, H, T, D/4].
    let token_major = (token_row(i / d4) + (i % d4) * 4u) / 4u;
    if (p.merge == 0u) {
        dst4[i] = src4[token_major];
    } else {
        dst4[token_major] = src4[i];
    }
}

@compute @workgroup_size(256)
fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.n / p.d) {
        return;
    }
    let head = r * p.d;
    let token = token_row(r);
    if (p.merge == 0u) {
        for (var e = 0u; e < p.d; e++) {
            dst[head + e] = src[token + e];
        }
    } else {
        for (var e = 0u; e < p.d; e++) {
            dst[token + e] = src[head + e];
        }
    }
}

@compute @workgroup_size(256)
fn main_rows_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.n / p.d) {
        return;
    }
    let d4 = p.d / 4u;
    let head = r * d4;
    let token = token_row(r) / 4u;
    if (p.merge == 0u) {
        for (var e = 0u; e < d4; e++) {
            dst4[head + e] = src4[token + e];
        }
    } else {
        for (var e = 0u; e < d4; e++) {
            dst4[token + e] = src4[head + e];
        }
    }
}

// Vec4 `e` of head-major row `r`, all three parts, in the direction p.merge says (the parts
// entries; p.part = 0, so token_row gives part 0's row and part j lies j·H·D values on).
fn move_parts4(r: u32, e: u32) {
    let d4 = p.d / 4u;
    let head = r * d4 + e;
    let token = token_row(r) / 4u + e;
    let stride = p.heads * d4;
    if (p.merge == 0u) {
        h0_4[head] = tok4[token];
        h1_4[head] = tok4[token + stride];
        h2_4[head] = tok4[token + 2u * stride];
    } else {
        tok4[token] = h0_4[head];
        tok4[token + stride] = h1_4[head];
        tok4[token + 2u * stride] = h2_4[head];
    }
}

@compute @workgroup_size(256)
fn main_parts_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let d4 = p.d / 4u;
    if (i >= p.n / 4u) {
        return;
    }
    move_parts4(i / d4, i % d4);
}

@compute @workgroup_size(256)
fn main_parts_rows_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (r >= p.n / p.d) {
        return;
    }
    for (var e = 0u; e < p.d / 4u; e++) {
        move_parts4(r, e);
    }
}
