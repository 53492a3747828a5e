// adam: AdamW on fp32 master weights, in place, with the moments in one state buffer
// [m (n), v (n)]:
//   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;
//   w = w − lr·(bias·m / (sqrt(v) + ε) + λ·w)
// with lr = params.lr · step.lr and bias = step.bias = sqrt(1 − β2^t) / (1 − β1^t) (the host's
// f64 bias correction of step t; Kingma & Ba's efficient form), and λ decoupled (AdamW).
// Nothing is written while status[0] is set (a non-finite step, see finite.wgsl).
// sqrt and division are not correctly rounded in WGSL: the reference is compared within a bound.
// Reference: src/reference/adam.rs. Bindings: 0 params, 1 w (read-write), 2 state (read-write),
// 3 g, 4 step (StepState), 5 status (read u32 [2]).

struct AdamParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: AdamParams;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read> status: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n && status[0] == 0u) {
        let gi = g[i];
        let m = p.beta1 * state[i] + (1.0 - p.beta1) * gi;
        let v = p.beta2 * state[p.n + i] + (1.0 - p.beta2) * (gi * gi);
        state[i] = m;
        state[p.n + i] = v;
        let wi = w[i];
        w[i] = wi - (p.lr * st.lr) * (st.bias * m / (sqrt(v) + p.eps) + p.weight_decay * wi);
    }
}
