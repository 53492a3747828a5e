// peak: the adapter's arithmetic rates, measured rather than taken from a datasheet, so a GEMM's
// efficiency can be stated against the unit that does its work. No memory traffic inside the
// loop: every thread runs CHAINS independent dependency chains for `iters` rounds and writes one
// word at the end (which keeps the chains alive).
//   main_f32:  v = fma(v, m, c) on 32 f32 chains (8 vec4), 4 times per round: 256 flops/round.
//              With m = 1 the result is the same whether a driver fuses or not.
//   main_dot:  v = dot4I8Packed(bitcast<u32>(v), b) + v on 32 i32 chains, 4 times per round:
//              128 dot products (1024 int8 ops) per round, exact with wrapping adds.
// Chain j of thread i starts at f32(i % 4096) / 4096 + j (f32) or i * 0x9e3779b9 ^ j * 0x85ebca6b
// (i32); out[i] is the sum over chains (f32: vec4s in order 0..7, then x + y + z + w; i32: wrapping).
// Reference: src/reference/peak.rs.
// Bindings: 0 params, 1 out (read-write, one word per thread).
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED): no arrays; out[i] is written
// only for i < threads (the launcher's out.len()); the loop runs `iters` rounds.

struct PeakParams {
    threads: u32,
    iters: u32,
    b: u32,
    pad0: u32,
    m: f32,
    c: f32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: PeakParams;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

fn thread_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn main_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wg, nwg, lid);
    let s = f32(i % 4096u) / 4096.0;
    var v0 = vec4<f32>(s, s + 1.0, s + 2.0, s + 3.0);
    var v1 = v0 + 4.0;
    var v2 = v0 + 8.0;
    var v3 = v0 + 12.0;
    var v4 = v0 + 16.0;
    var v5 = v0 + 20.0;
    var v6 = v0 + 24.0;
    var v7 = v0 + 28.0;
    let m = vec4<f32>(p.m);
    let c = vec4<f32>(p.c);
    for (var t = 0u; t < p.iters; t++) {
        for (var r = 0u; r < 4u; r++) {
            v0 = fma(v0, m, c);
            v1 = fma(v1, m, c);
            v2 = fma(v2, m, c);
            v3 = fma(v3, m, c);
            v4 = fma(v4, m, c);
            v5 = fma(v5, m, c);
            v6 = fma(v6, m, c);
            v7 = fma(v7, m, c);
        }
    }
    if (i < p.threads) {
        let v = v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7;
        out[i] = bitcast<u32>(v.x + v.y + v.z + v.w);
    }
}

fn dot_step(v: vec4<i32>, b: u32) -> vec4<i32> {
    return vec4<i32>(dot4I8Packed(bitcast<u32>(v.x), b), dot4I8Packed(bitcast<u32>(v.y), b),
                     dot4I8Packed(bitcast<u32>(v.z), b), dot4I8Packed(bitcast<u32>(v.w), b)) + v;
}

@compute @workgroup_size(256)
fn main_dot(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wg, nwg, lid);
    let h = i * 0x9e3779b9u;
    let k = vec4<u32>(0u, 1u, 2u, 3u) * 0x85ebca6bu;
    var v0 = bitcast<vec4<i32>>(vec4<u32>(h) ^ k);
    var v1 = bitcast<vec4<i32>>(vec4<u32>(h) ^ (k + 4u * 0x85ebca6bu));
    var v2 = bitcast<vec4<i32>>(vec4<u32>(h) ^ (k + 8u * 0x85ebca6bu));
    var v3 = bitcast<vec4<i32>>(vec4<u32>(h) ^ (k + 12u * 0x85ebca6bu));
    var v4 = bitcast<vec4<i32>>(vec4<u32>(h) ^ (k + 16u * 0x85ebca6bu));
    var v5 = bitcast<vec4<i32>>(vec4<u32>(h) ^ (k + 20u * 0x85ebca6bu));
    var v6 = bitcast<vec4<i32>>(vec4<u32>(h) ^ (k + 24u * 0x85ebca6bu));
    var v7 = bitcast<vec4<i32>>(vec4<u32>(h) ^ (k + 28u * 0x85ebca6bu));
    let b = p.b;
    for (var t = 0u; t < p.iters; t++) {
        for (var r = 0u; r < 4u; r++) {
            v0 = dot_step(v0, b);
            v1 = dot_step(v1, b);
            v2 = dot_step(v2, b);
            v3 = dot_step(v3, b);
            v4 = dot_step(v4, b);
            v5 = dot_step(v5, b);
            v6 = dot_step(v6, b);
            v7 = dot_step(v7, b);
        }
    }
    if (i < p.threads) {
        let v = v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7;
        out[i] = bitcast<u32>(v.x + v.y + v.z + v.w);
    }
}
