// relu_backward: dx = dy where the layer's output y > 0, else 0 (ReLU fused into a GEMM's
// epilogue keeps only y, which carries the same mask as the pre-activation). With `has_b` = 1 the
// gradient comes as two contributions not yet added (a value read by two nodes, as a residual
// block's output is): dx = dy + dy_b where y > 0, else 0 — the bits of add's sum (relu off) and
// then the mask, in one launch and one pass.
// Entry main: a thread per value; main_v4 (n a multiple of 4): a thread per vec4, through the *4
// views of the same bindings (as add's main_v4), the same selection per component. main_teams
// (n a multiple of 4; CPU adapters): the vec4s in common/teams.wgsl's layout, as add's.
// Reference: src/reference/relu_backward.rs. Bindings: 0 params {n, has_b}, 1 y, 2 dy, 3 dx,
// 4 dy_b (dy again where has_b = 0: read-only in both places).

struct EwParams {
    n: u32,
    has_b: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: EwParams;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read> dy_b: array<f32>;
// The same buffers as vec4s (main_v4 only).
@group(0) @binding(1) var<storage, read> y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dy_b4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n) {
        var g = dy[i];
        if (p.has_b == 1u) {
            g = g + dy_b[i];
        }
        dx[i] = select(0.0, g, y[i] > 0.0);
    }
}

// Vec4 i of dx (main_v4, main_teams).
fn relu_backward4(i: u32) {
    var g = dy4[i];
    if (p.has_b == 1u) {
        g = g + dy_b4[i];
    }
    dx4[i] = select(vec4<f32>(), g, y4[i] > vec4<f32>());
}

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n / 4u) {
        relu_backward4(i);
    }
}

@compute @workgroup_size(256)
fn main_teams(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let span = team_span(wg, nwg, lid, p.n / 4u);
    for (var i = span.x; i < span.y; i += TEAM) {
        relu_backward4(i);
    }
}
