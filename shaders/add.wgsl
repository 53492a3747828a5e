// add: elementwise y = relu?(a + b), or y = relu?(a) without b (`has_b` = 0): a residual
// connection's merge (with the ReLU after it fused), the sum of two gradient contributions to
// one value, and a standalone ReLU. ReLU is relu(v) = v where v > 0, else 0 — NaN is not > 0, so
// it becomes 0, as in the GEMM epilogue's ReLU (a non-finite value is caught where the loss and
// the gradients are checked, not here).
// Entry main: a thread per value; main_v4 (n a multiple of 4): a thread per vec4, through the *4
// views of the same bindings (on a CPU adapter every load runs lane by lane, so a vec4 costs about
// what one f32 does), the same arithmetic per component. main_teams (n a multiple of 4; CPU
// adapters): the vec4s in common/teams.wgsl's layout, the same arithmetic.
// Reference: src/reference/add.rs. Bindings: 0 params {n, relu, has_b}, 1 a, 2 b, 3 y.

struct AddParams {
    n: u32,
    relu: u32,
    has_b: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: AddParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// The same buffers as vec4s (main_v4 only).
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    var v = a[i];
    if (p.has_b == 1u) {
        v = v + b[i];
    }
    if (p.relu == 1u) {
        v = select(0.0, v, v > 0.0);
    }
    y[i] = v;
}

// Vec4 i of y (main_v4, main_teams).
fn add4(i: u32) {
    var v = a4[i];
    if (p.has_b == 1u) {
        v = v + b4[i];
    }
    if (p.relu == 1u) {
        v = select(vec4<f32>(), v, v > vec4<f32>());
    }
    y4[i] = v;
}

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.n / 4u) {
        return;
    }
    add4(i);
}

@compute @workgroup_size(256)
fn main_teams(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let span = team_span(wg, nwg, lid, p.n / 4u);
    for (var i = span.x; i < span.y; i += TEAM) {
        add4(i);
    }
}
