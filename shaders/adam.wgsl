// adam: AdamW on fp32 master weights, in place, for up to 8 tensors in one dispatch (a model's
// parameters take one launch, not one each), each tensor's moments in one state buffer
// [m (n), v (n)]:
//   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;
//   w = w − lr·(bias·m / (sqrt(v) + ε) + λ_j·w)
// with hyper = (lr, β1, β2, ε), the rate lr · step.lr, bias = step.bias = sqrt(1 − β2^t) /
// (1 − β1^t) (the host's f64 bias correction of step t; Kingma & Ba's efficient form), and λ_j the
// tensor's own decoupled weight decay (AdamW). Nothing is written while status[0] is set (a non-finite step, see
// finite.wgsl). sqrt and division are not correctly rounded in WGSL: the reference is compared
// within a bound.
// Slots and params as in common/optim.wgsl.
// Entries: `main_multi`, a thread per value of the 8 slots; `main_multi_v4` (CPU adapters, where
// every load runs lane by lane and a vec4 costs about what one f32 does), four values at a time
// through vec4 views, for tensors whose lengths are multiples of 4, each slot's vec4s walked by
// teams of threads on consecutive vec4s (common/teams.wgsl's layout, the copy's; figures in the
// README); `main` and `main_v4` (a thread per value, per vec4), the same for slot 0 alone
// (adapters with fewer than 25 storage bindings a stage bind only that slot's).
// The same arithmetic per value in all four. Reference: src/reference/adam.rs.
// Bindings: 0 params, 1 step (StepState), 2 status (read u32 [2]), then per slot j:
// 3 + 3j w_j (read-write), 4 + 3j state_j (read-write), 5 + 3j g_j (read).

@group(0) @binding(3) var<storage, read_write> w0: array<f32>;
@group(0) @binding(4) var<storage, read_write> s0: array<f32>;
@group(0) @binding(5) var<storage, read> g0: array<f32>;
@group(0) @binding(6) var<storage, read_write> w1: array<f32>;
@group(0) @binding(7) var<storage, read_write> s1: array<f32>;
@group(0) @binding(8) var<storage, read> g1: array<f32>;
@group(0) @binding(9) var<storage, read_write> w2: array<f32>;
@group(0) @binding(10) var<storage, read_write> s2: array<f32>;
@group(0) @binding(11) var<storage, read> g2: array<f32>;
@group(0) @binding(12) var<storage, read_write> w3: array<f32>;
@group(0) @binding(13) var<storage, read_write> s3: array<f32>;
@group(0) @binding(14) var<storage, read> g3: array<f32>;
@group(0) @binding(15) var<storage, read_write> w4: array<f32>;
@group(0) @binding(16) var<storage, read_write> s4: array<f32>;
@group(0) @binding(17) var<storage, read> g4: array<f32>;
@group(0) @binding(18) var<storage, read_write> w5: array<f32>;
@group(0) @binding(19) var<storage, read_write> s5: array<f32>;
@group(0) @binding(20) var<storage, read> g5: array<f32>;
@group(0) @binding(21) var<storage, read_write> w6: array<f32>;
@group(0) @binding(22) var<storage, read_write> s6: array<f32>;
@group(0) @binding(23) var<storage, read> g6: array<f32>;
@group(0) @binding(24) var<storage, read_write> w7: array<f32>;
@group(0) @binding(25) var<storage, read_write> s7: array<f32>;
@group(0) @binding(26) var<storage, read> g7: array<f32>;

// One value's update from (w, m, v, g): the columns are (new w, new m, new v).
fn update(w: f32, m0: f32, v0: f32, g: f32, wd: f32) -> vec3<f32> {
    let lr = p.hyper.x;
    let beta1 = p.hyper.y;
    let beta2 = p.hyper.z;
    let eps = p.hyper.w;
    let m = beta1 * m0 + (1.0 - beta1) * g;
    let v = beta2 * v0 + (1.0 - beta2) * (g * g);
    return vec3<f32>(w - (lr * st.lr) * (st.bias * m / (sqrt(v) + eps) + wd * w), m, v);
}

// Four values' update: the columns are new w, new m and new v.
fn update4(w: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, g: vec4<f32>, wd: f32) -> mat3x4<f32> {
    let lr = p.hyper.x;
    let beta1 = p.hyper.y;
    let beta2 = p.hyper.z;
    let eps = p.hyper.w;
    let m = beta1 * m0 + (1.0 - beta1) * g;
    let v = beta2 * v0 + (1.0 - beta2) * (g * g);
    return mat3x4<f32>(w - (lr * st.lr) * (st.bias * m / (sqrt(v) + eps) + wd * w), m, v);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let n = len(0u);
    if (i < n && status[0] == 0u) {
        let u = update(w0[i], s0[i], s0[n + i], g0[i], decay(0u));
        s0[i] = u.y;
        s0[n + i] = u.z;
        w0[i] = u.x;
    }
}

@compute @workgroup_size(256)
fn main_multi(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let id = wg.x + wg.y * nwg.x;
    let j = slot(id);
    let i = (id - start(j)) * 256u + lid;
    let n = len(j);
    if (i >= n || status[0] != 0u) {
        return;
    }
    let wd = decay(j);
    switch j {
        case 0u: {
            let u = update(w0[i], s0[i], s0[n + i], g0[i], wd);
            s0[i] = u.y;
            s0[n + i] = u.z;
            w0[i] = u.x;
        }
        case 1u: {
            let u = update(w1[i], s1[i], s1[n + i], g1[i], wd);
            s1[i] = u.y;
            s1[n + i] = u.z;
            w1[i] = u.x;
        }
        case 2u: {
            let u = update(w2[i], s2[i], s2[n + i], g2[i], wd);
            s2[i] = u.y;
            s2[n + i] = u.z;
            w2[i] = u.x;
        }
        case 3u: {
            let u = update(w3[i], s3[i], s3[n + i], g3[i], wd);
            s3[i] = u.y;
            s3[n + i] = u.z;
            w3[i] = u.x;
        }
        case 4u: {
            let u = update(w4[i], s4[i], s4[n + i], g4[i], wd);
            s4[i] = u.y;
            s4[n + i] = u.z;
            w4[i] = u.x;
        }
        case 5u: {
            let u = update(w5[i], s5[i], s5[n + i], g5[i], wd);
            s5[i] = u.y;
            s5[n + i] = u.z;
            w5[i] = u.x;
        }
        case 6u: {
            let u = update(w6[i], s6[i], s6[n + i], g6[i], wd);
            s6[i] = u.y;
            s6[n + i] = u.z;
            w6[i] = u.x;
        }
        default: {
            let u = update(w7[i], s7[i], s7[n + i], g7[i], wd);
            s7[i] = u.y;
            s7[n + i] = u.z;
            w7[i] = u.x;
        }
    }
}

// The slots' w, state and g again, as vec4s (the v4 entries only).
@group(0) @binding(3) var<storage, read_write> w4_0: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s4_0: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> g4_0: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> w4_1: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> s4_1: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> g4_1: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> w4_2: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> s4_2: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> g4_2: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> w4_3: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read_write> s4_3: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> g4_3: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read_write> w4_4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read_write> s4_4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read> g4_4: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read_write> w4_5: array<vec4<f32>>;
@group(0) @binding(19) var<storage, read_write> s4_5: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read> g4_5: array<vec4<f32>>;
@group(0) @binding(21) var<storage, read_write> w4_6: array<vec4<f32>>;
@group(0) @binding(22) var<storage, read_write> s4_6: array<vec4<f32>>;
@group(0) @binding(23) var<storage, read> g4_6: array<vec4<f32>>;
@group(0) @binding(24) var<storage, read_write> w4_7: array<vec4<f32>>;
@group(0) @binding(25) var<storage, read_write> s4_7: array<vec4<f32>>;
@group(0) @binding(26) var<storage, read> g4_7: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    let n = len(0u) / 4u;
    if (i < n && status[0] == 0u) {
        let u = update4(w4_0[i], s4_0[i], s4_0[n + i], g4_0[i], decay(0u));
        s4_0[i] = u[1];
        s4_0[n + i] = u[2];
        w4_0[i] = u[0];
    }
}

@compute @workgroup_size(256)
fn main_multi_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let id = wg.x + wg.y * nwg.x;
    let j = slot(id);
    if (status[0] != 0u) {
        return;
    }
    let n = len(j) / 4u;
    let span = slot_team_span(id, j, lid, n);
    let wd = decay(j);
    for (var i = span.x; i < span.y; i += TEAM) {
        switch j {
            case 0u: {
                let u = update4(w4_0[i], s4_0[i], s4_0[n + i], g4_0[i], wd);
                s4_0[i] = u[1];
                s4_0[n + i] = u[2];
                w4_0[i] = u[0];
            }
            case 1u: {
                let u = update4(w4_1[i], s4_1[i], s4_1[n + i], g4_1[i], wd);
                s4_1[i] = u[1];
                s4_1[n + i] = u[2];
                w4_1[i] = u[0];
            }
            case 2u: {
                let u = update4(w4_2[i], s4_2[i], s4_2[n + i], g4_2[i], wd);
                s4_2[i] = u[1];
                s4_2[n + i] = u[2];
                w4_2[i] = u[0];
            }
            case 3u: {
                let u = update4(w4_3[i], s4_3[i], s4_3[n + i], g4_3[i], wd);
                s4_3[i] = u[1];
                s4_3[n + i] = u[2];
                w4_3[i] = u[0];
            }
            case 4u: {
                let u = update4(w4_4[i], s4_4[i], s4_4[n + i], g4_4[i], wd);
                s4_4[i] = u[1];
                s4_4[n + i] = u[2];
                w4_4[i] = u[0];
            }
            case 5u: {
                let u = update4(w4_5[i], s4_5[i], s4_5[n + i], g4_5[i], wd);
                s4_5[i] = u[1];
                s4_5[n + i] = u[2];
                w4_5[i] = u[0];
            }
            case 6u: {
                let u = update4(w4_6[i], s4_6[i], s4_6[n + i], g4_6[i], wd);
                s4_6[i] = u[1];
                s4_6[n + i] = u[2];
                w4_6[i] = u[0];
            }
            default: {
                let u = update4(w4_7[i], s4_7[i], s4_7[n + i], g4_7[i], wd);
                s4_7[i] = u[1];
                s4_7[n + i] = u[2];
                w4_7[i] = u[0];
            }
        }
    }
}
