// gelu: GELU in its tanh form (the GPT-2 one), elementwise:
// forward:  y = 0.5·x·(1 + tanh(a·(x + 0.044715·x³))), a = sqrt(2/π)
// backward: dx = dy·(0.5·(1 + t) + 0.5·x·(1 − t²)·a·(1 + 3·0.044715·x²)), t the tanh above.
// tanh's argument is clamped to ±10 (tanh(10) is 1 in f32), so no implementation's exp-based
// tanh overflows to NaN for large |x|. tanh is accurate to a few ulps in WGSL: the reference is
// compared within a stated bound.
// Reference: src/reference/gelu.rs. Bindings: 0 params {n}, 1 x, 2 dy (backward), 3 out.

struct GeluParams {
    n: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: GeluParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const A: f32 = 0.7978845608028654;
const C: f32 = 0.044715;

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n) {
        let v = x[i];
        out[i] = 0.5 * v * (1.0 + tanh(clamp(A * (v + C * v * v * v), -10.0, 10.0)));
    }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n) {
        let v = x[i];
        let t = tanh(clamp(A * (v + C * v * v * v), -10.0, 10.0));
        out[i] = dy[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * A * (1.0 + 3.0 * C * v * v));
    }
}
