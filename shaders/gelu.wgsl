// gelu: GELU in its tanh form (the GPT-2 one), elementwise:
// forward:  y = 0.5·x·(1 + tanh(a·(x + 0.044715·x³))), a = sqrt(2/π)
// backward: dx = dy·(0.5·(1 + t) + 0.5·x·(1 − t²)·a·(1 + 3·0.044715·x²)), t the tanh above.
// tanh's argument is clamped to ±10 (tanh(10) is 1 in f32), so no implementation's exp-based
// tanh overflows to NaN for large |x|. tanh is accurate to a few ulps in WGSL: the reference is
// compared within a stated bound.
// Entries forward and backward: a thread per value. main_v4 (n a multiple of 4; the direction
// from p.backward): a thread per vec4, through the *4 views of the same bindings; main_teams (n a
// multiple of 4; CPU adapters): the vec4s in common/teams.wgsl's layout (on llvmpipe a workgroup
// of a thread per value cost more to start than its 256 values' arithmetic). The same arithmetic
// per component everywhere. One entry never reaches both views of a binding.
// Reference: src/reference/gelu.rs. Bindings: 0 params {n, backward}, 1 x, 2 dy (backward),
// 3 out.

struct GeluParams {
    n: u32,
    backward: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: GeluParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// The same buffers as vec4s (main_v4 and main_teams only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

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

// Vec4 i of the output (main_v4, main_teams): forward's or backward's arithmetic per component.
fn gelu4(i: u32) {
    let v = x4[i];
    let t = tanh(clamp(A * (v + C * v * v * v), vec4<f32>(-10.0), vec4<f32>(10.0)));
    if (p.backward == 0u) {
        out4[i] = 0.5 * v * (1.0 + t);
    } else {
        out4[i] = dy4[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * A * (1.0 + 3.0 * C * v * v));
    }
}

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n / 4u) {
        gelu4(i);
    }
}

@compute @workgroup_size(256)
fn main_teams(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let span = team_span(wg, nwg, lid, p.n / 4u);
    for (var i = span.x; i < span.y; i += TEAM) {
        gelu4(i);
    }
}
