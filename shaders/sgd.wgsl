// sgd: SGD with momentum and weight decay on fp32 master weights, in place:
// v = momentum * v + (g + weight_decay * w); w = w - lr * v, with lr = params.lr * step.lr (the
// step's factor is 1 outside a step plan, which builds its dispatches with params.lr = 1).
// Nothing is written while status[0] is set: a step whose gradients went non-finite (see
// finite.wgsl) leaves weights and velocities as they were.
// Entry `main`: a thread per value. Entry `main_v4` (CPU adapters, where every load runs lane by
// lane and a vec4 costs about what one f32 does): a thread per four values through vec4 views
// of the same bindings, for n a multiple of 4; the same arithmetic per value.
// Reference: src/reference/sgd.rs. Bindings: 0 params, 1 w (read-write), 2 v (read-write), 3 g,
// 4 step (StepState), 5 status (read u32 [2]).

struct SgdParams {
    n: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

@group(0) @binding(0) var<uniform> p: SgdParams;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read> status: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n && status[0] == 0u) {
        let vi = p.momentum * v[i] + (g[i] + p.weight_decay * w[i]);
        v[i] = vi;
        w[i] = w[i] - (p.lr * st.lr) * vi;
    }
}

// w, v and g again, as vec4s (main_v4 only).
@group(0) @binding(1) var<storage, read_write> w4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> g4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n / 4u && status[0] == 0u) {
        let vi = p.momentum * v4[i] + (g4[i] + p.weight_decay * w4[i]);
        v4[i] = vi;
        w4[i] = w4[i] - (p.lr * st.lr) * vi;
    }
}
