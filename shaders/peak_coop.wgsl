enable f16;
enable wgpu_cooperative_matrix;

// peak_coop: the cooperative-matrix unit's rate (tensor cores), measured like `peak` measures the
// f32 and int8 units, so a GEMM on that unit can be stated against it. No memory traffic in the
// loop: every subgroup loads two 16x16 f16 matrices once (A filled with p.a, B with p.b, from the
// uniform, so no compiler can fold them) and runs p.rounds rounds of 4 independent
// 16x16x16 f16 x f16 -> f32 multiply-adds (4 · 2 · 16³ flops per round), then stores its four
// accumulators. Exact for the launcher's values (a = b = 1/16: each multiply-add adds 16 · 2^-8 =
// 2^-4 to every element, so after R < 2^20 rounds every output is R / 16).
// Workgroups of 128 invocations (a multiple of every subgroup size lowbit meets, as cooperative
// matrices of subgroup scope require); subgroup s of workgroup w writes out[(16 w + s) · 1024 ..]
// (at most 16 subgroups of a workgroup: subgroups of at least 8). Entry main8: the same with
// 8x8x8 matrices, for adapters that offer only those (lavapipe). Reference: src/reference/peak_coop.rs.
// Bindings: 0 params, 1 out (read-write f32, 16 · 1024 per workgroup).

struct PeakCoopParams {
    rounds: u32,
    pad0: u32,
    a: f32,
    b: f32,
}

@group(0) @binding(0) var<uniform> p: PeakCoopParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

var<workgroup> As: array<f16, 256>;
var<workgroup> Bs: array<f16, 256>;

// A and B filled with p.a and p.b (256 values each, as the 16x16 matrices need; 8x8 ones read
// the first 64), for the whole workgroup.
fn fill_operands(lid: u32) {
    As[lid] = f16(p.a);
    As[lid + 128u] = f16(p.a);
    Bs[lid] = f16(p.b);
    Bs[lid + 128u] = f16(p.b);
    workgroupBarrier();
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
    fill_operands(lid);
    let a = coopLoadT<coop_mat16x16<f16, A>>(&As[0], 16u);
    let b = coopLoad<coop_mat16x16<f16, B>>(&Bs[0], 16u);
    var x0 = coop_mat16x16<f32, C>();
    var x1 = coop_mat16x16<f32, C>();
    var x2 = coop_mat16x16<f32, C>();
    var x3 = coop_mat16x16<f32, C>();
    for (var i = 0u; i < p.rounds; i++) {
        x0 = coopMultiplyAdd(a, b, x0);
        x1 = coopMultiplyAdd(a, b, x1);
        x2 = coopMultiplyAdd(a, b, x2);
        x3 = coopMultiplyAdd(a, b, x3);
    }
    let base = ((wg.x + wg.y * nwg.x) * 16u + sg) * 1024u;
    coopStoreT(x0, &out[base], 16u);
    coopStoreT(x1, &out[base + 256u], 16u);
    coopStoreT(x2, &out[base + 512u], 16u);
    coopStoreT(x3, &out[base + 768u], 16u);
}

// main with 8x8x8 matrices (lavapipe's): 4 · 2 · 8³ flops per round; each output R / 32 after R
// rounds (every multiply-add adds 8 · 2^-8 = 2^-5); subgroup s writes the first 256 floats of its
// 1024 (four 8x8 matrices).
@compute @workgroup_size(128)
fn main8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
    fill_operands(lid);
    let a = coopLoadT<coop_mat8x8<f16, A>>(&As[0], 8u);
    let b = coopLoad<coop_mat8x8<f16, B>>(&Bs[0], 8u);
    var x0 = coop_mat8x8<f32, C>();
    var x1 = coop_mat8x8<f32, C>();
    var x2 = coop_mat8x8<f32, C>();
    var x3 = coop_mat8x8<f32, C>();
    for (var i = 0u; i < p.rounds; i++) {
        x0 = coopMultiplyAdd(a, b, x0);
        x1 = coopMultiplyAdd(a, b, x1);
        x2 = coopMultiplyAdd(a, b, x2);
        x3 = coopMultiplyAdd(a, b, x3);
    }
    let base = ((wg.x + wg.y * nwg.x) * 16u + sg) * 1024u;
    coopStoreT(x0, &out[base], 8u);
    coopStoreT(x1, &out[base + 64u], 8u);
    coopStoreT(x2, &out[base + 128u], 8u);
    coopStoreT(x3, &out[base + 192u], 8u);
}
