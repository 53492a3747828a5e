// sgd: SGD with momentum and weight decay on fp32 master weights, in place, for up to 8 tensors
// in one dispatch (a model's parameters take one launch, not one each):
//   v = momentum * v + (g + weight_decay_j * w);  w = w - lr * v
// with hyper = (lr, momentum, 0, 0), the rate lr · step.lr (the step's factor is 1 outside a step
// plan, which builds its dispatches with lr = 1) and weight_decay_j the tensor's own (biases and
// norms take none).
// Nothing is written while status[0] is set: a step whose gradients went non-finite (see
// finite.wgsl) leaves weights and velocities as they were.
// Slots and params as in common/optim.wgsl.
// Entries: `main_multi`, a thread per value of the 8 slots; `main_multi_v4` (CPU adapters, where
// every load runs lane by lane and a vec4 costs about what one f32 does), four values at a time
// through vec4 views, for tensors whose lengths are multiples of 4, each slot's vec4s walked by
// teams of threads on consecutive vec4s (common/teams.wgsl's layout, the copy's; figures in the
// README); `main` and `main_v4` (a thread per value, per vec4), the same for slot 0 alone
// (adapters with fewer than 25 storage bindings a stage bind only that slot's).
// The same arithmetic per value in all four. Reference: src/reference/sgd.rs.
// Bindings: 0 params, 1 step (StepState), 2 status (read u32 [2]), then per slot j:
// 3 + 3j w_j (read-write), 4 + 3j v_j (read-write), 5 + 3j g_j (read).

@group(0) @binding(3) var<storage, read_write> w0: array<f32>;
@group(0) @binding(4) var<storage, read_write> v0: array<f32>;
@group(0) @binding(5) var<storage, read> g0: array<f32>;
@group(0) @binding(6) var<storage, read_write> w1: array<f32>;
@group(0) @binding(7) var<storage, read_write> v1: array<f32>;
@group(0) @binding(8) var<storage, read> g1: array<f32>;
@group(0) @binding(9) var<storage, read_write> w2: array<f32>;
@group(0) @binding(10) var<storage, read_write> v2: array<f32>;
@group(0) @binding(11) var<storage, read> g2: array<f32>;
@group(0) @binding(12) var<storage, read_write> w3: array<f32>;
@group(0) @binding(13) var<storage, read_write> v3: array<f32>;
@group(0) @binding(14) var<storage, read> g3: array<f32>;
@group(0) @binding(15) var<storage, read_write> w4: array<f32>;
@group(0) @binding(16) var<storage, read_write> v4: array<f32>;
@group(0) @binding(17) var<storage, read> g4: array<f32>;
@group(0) @binding(18) var<storage, read_write> w5: array<f32>;
@group(0) @binding(19) var<storage, read_write> v5: array<f32>;
@group(0) @binding(20) var<storage, read> g5: array<f32>;
@group(0) @binding(21) var<storage, read_write> w6: array<f32>;
@group(0) @binding(22) var<storage, read_write> v6: array<f32>;
@group(0) @binding(23) var<storage, read> g6: array<f32>;
@group(0) @binding(24) var<storage, read_write> w7: array<f32>;
@group(0) @binding(25) var<storage, read_write> v7: array<f32>;
@group(0) @binding(26) var<storage, read> g7: array<f32>;

// One value's update: (new w, new v).
fn update(w: f32, v: f32, g: f32, wd: f32) -> vec2<f32> {
    let lr = p.hyper.x;
    let momentum = p.hyper.y;
    let vi = momentum * v + (g + wd * w);
    return vec2<f32>(w - (lr * st.lr) * vi, vi);
}

// Four values' update: new w and new v as the columns.
fn update4(w: vec4<f32>, v: vec4<f32>, g: vec4<f32>, wd: f32) -> mat2x4<f32> {
    let lr = p.hyper.x;
    let momentum = p.hyper.y;
    let vi = momentum * v + (g + wd * w);
    return mat2x4<f32>(w - (lr * st.lr) * vi, vi);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < len(0u) && status[0] == 0u) {
        let u = update(w0[i], v0[i], g0[i], decay(0u));
        v0[i] = u.y;
        w0[i] = u.x;
    }
}

@compute @workgroup_size(256)
fn main_multi(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let id = wg.x + wg.y * nwg.x;
    let j = slot(id);
    let i = (id - start(j)) * 256u + lid;
    if (i >= len(j) || status[0] != 0u) {
        return;
    }
    let wd = decay(j);
    switch j {
        case 0u: {
            let u = update(w0[i], v0[i], g0[i], wd);
            v0[i] = u.y;
            w0[i] = u.x;
        }
        case 1u: {
            let u = update(w1[i], v1[i], g1[i], wd);
            v1[i] = u.y;
            w1[i] = u.x;
        }
        case 2u: {
            let u = update(w2[i], v2[i], g2[i], wd);
            v2[i] = u.y;
            w2[i] = u.x;
        }
        case 3u: {
            let u = update(w3[i], v3[i], g3[i], wd);
            v3[i] = u.y;
            w3[i] = u.x;
        }
        case 4u: {
            let u = update(w4[i], v4[i], g4[i], wd);
            v4[i] = u.y;
            w4[i] = u.x;
        }
        case 5u: {
            let u = update(w5[i], v5[i], g5[i], wd);
            v5[i] = u.y;
            w5[i] = u.x;
        }
        case 6u: {
            let u = update(w6[i], v6[i], g6[i], wd);
            v6[i] = u.y;
            w6[i] = u.x;
        }
        default: {
            let u = update(w7[i], v7[i], g7[i], wd);
            v7[i] = u.y;
            w7[i] = u.x;
        }
    }
}

// The slots' w, v and g again, as vec4s (the v4 entries only).
@group(0) @binding(3) var<storage, read_write> w4_0: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v4_0: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> g4_0: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> w4_1: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> v4_1: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> g4_1: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> w4_2: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> v4_2: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> g4_2: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> w4_3: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read_write> v4_3: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> g4_3: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read_write> w4_4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read_write> v4_4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read> g4_4: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read_write> w4_5: array<vec4<f32>>;
@group(0) @binding(19) var<storage, read_write> v4_5: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read> g4_5: array<vec4<f32>>;
@group(0) @binding(21) var<storage, read_write> w4_6: array<vec4<f32>>;
@group(0) @binding(22) var<storage, read_write> v4_6: array<vec4<f32>>;
@group(0) @binding(23) var<storage, read> g4_6: array<vec4<f32>>;
@group(0) @binding(24) var<storage, read_write> w4_7: array<vec4<f32>>;
@group(0) @binding(25) var<storage, read_write> v4_7: array<vec4<f32>>;
@group(0) @binding(26) var<storage, read> g4_7: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < len(0u) / 4u && status[0] == 0u) {
        let u = update4(w4_0[i], v4_0[i], g4_0[i], decay(0u));
        v4_0[i] = u[1];
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
    let span = slot_team_span(id, j, lid, len(j) / 4u);
    let wd = decay(j);
    for (var i = span.x; i < span.y; i += TEAM) {
        switch j {
            case 0u: {
                let u = update4(w4_0[i], v4_0[i], g4_0[i], wd);
                v4_0[i] = u[1];
                w4_0[i] = u[0];
            }
            case 1u: {
                let u = update4(w4_1[i], v4_1[i], g4_1[i], wd);
                v4_1[i] = u[1];
                w4_1[i] = u[0];
            }
            case 2u: {
                let u = update4(w4_2[i], v4_2[i], g4_2[i], wd);
                v4_2[i] = u[1];
                w4_2[i] = u[0];
            }
            case 3u: {
                let u = update4(w4_3[i], v4_3[i], g4_3[i], wd);
                v4_3[i] = u[1];
                w4_3[i] = u[0];
            }
            case 4u: {
                let u = update4(w4_4[i], v4_4[i], g4_4[i], wd);
                v4_4[i] = u[1];
                w4_4[i] = u[0];
            }
            case 5u: {
                let u = update4(w4_5[i], v4_5[i], g4_5[i], wd);
                v4_5[i] = u[1];
                w4_5[i] = u[0];
            }
            case 6u: {
                let u = update4(w4_6[i], v4_6[i], g4_6[i], wd);
                v4_6[i] = u[1];
                w4_6[i] = u[0];
            }
            default: {
                let u = update4(w4_7[i], v4_7[i], g4_7[i], wd);
                v4_7[i] = u[1];
                w4_7[i] = u[0];
            }
        }
    }
}
