// batchnorm_commit: the running statistics of up to 8 batch-norm layers updated in one dispatch
// from the batch statistics their training forwards left (batchnorm.wgsl's stats buffer: mean,
// invstd, unbiased variance per channel): per layer j of C_j channels,
//   running_j[c]       = (1 − momentum)·running_j[c]       + momentum·stats_j[c]        (mean)
//   running_j[C_j + c] = (1 − momentum)·running_j[C_j + c] + momentum·stats_j[2·C_j + c] (variance)
// — batchnorm.wgsl's commit_running, the same arithmetic, for a model's layers in a few launches
// instead of one each. Nothing is written while status[0] is set (a step that went non-finite
// changes no state; a training step records this after checking its gradients). Slots as in
// common/slots.wgsl, a thread per channel. Entries
// `main_multi` (the 8 slots) and `main` (slot 0 alone, for adapters that bind fewer than 17
// storage buffers a stage). Reference: src/reference/batchnorm_commit.rs.
// Bindings: 0 params, 1 status (read u32), then per slot j: 2 + 2j running_j (read-write),
// 3 + 2j stats_j (read).

struct CommitParams {
    start: array<vec4<u32>, 2>,
    channels: array<vec4<u32>, 2>,
    momentum: f32,
}

@group(0) @binding(0) var<uniform> p: CommitParams;
@group(0) @binding(1) var<storage, read> status: array<u32>;
@group(0) @binding(2) var<storage, read_write> r0: array<f32>;
@group(0) @binding(3) var<storage, read> s0: array<f32>;
@group(0) @binding(4) var<storage, read_write> r1: array<f32>;
@group(0) @binding(5) var<storage, read> s1: array<f32>;
@group(0) @binding(6) var<storage, read_write> r2: array<f32>;
@group(0) @binding(7) var<storage, read> s2: array<f32>;
@group(0) @binding(8) var<storage, read_write> r3: array<f32>;
@group(0) @binding(9) var<storage, read> s3: array<f32>;
@group(0) @binding(10) var<storage, read_write> r4: array<f32>;
@group(0) @binding(11) var<storage, read> s4: array<f32>;
@group(0) @binding(12) var<storage, read_write> r5: array<f32>;
@group(0) @binding(13) var<storage, read> s5: array<f32>;
@group(0) @binding(14) var<storage, read_write> r6: array<f32>;
@group(0) @binding(15) var<storage, read> s6: array<f32>;
@group(0) @binding(16) var<storage, read_write> r7: array<f32>;
@group(0) @binding(17) var<storage, read> s7: array<f32>;

fn start(j: u32) -> u32 {
    return p.start[j / 4u][j % 4u];
}

fn channels(j: u32) -> u32 {
    return p.channels[j / 4u][j % 4u];
}


// A running statistic and its batch value: the new running value.
fn blend(running: f32, batch: f32) -> f32 {
    return (1.0 - p.momentum) * running + p.momentum * batch;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = (wg.x + wg.y * nwg.x) * 256u + lid;
    let n = channels(0u);
    if (c < n && status[0] == 0u) {
        r0[c] = blend(r0[c], s0[c]);
        r0[n + c] = blend(r0[n + c], s0[2u * n + c]);
    }
}

@compute @workgroup_size(256)
fn main_multi(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let id = wg.x + wg.y * nwg.x;
    let j = slot_of(id, p.start);
    let c = (id - start(j)) * 256u + lid;
    let n = channels(j);
    if (c >= n || status[0] != 0u) {
        return;
    }
    switch j {
        case 0u: {
            r0[c] = blend(r0[c], s0[c]);
            r0[n + c] = blend(r0[n + c], s0[2u * n + c]);
        }
        case 1u: {
            r1[c] = blend(r1[c], s1[c]);
            r1[n + c] = blend(r1[n + c], s1[2u * n + c]);
        }
        case 2u: {
            r2[c] = blend(r2[c], s2[c]);
            r2[n + c] = blend(r2[n + c], s2[2u * n + c]);
        }
        case 3u: {
            r3[c] = blend(r3[c], s3[c]);
            r3[n + c] = blend(r3[n + c], s3[2u * n + c]);
        }
        case 4u: {
            r4[c] = blend(r4[c], s4[c]);
            r4[n + c] = blend(r4[n + c], s4[2u * n + c]);
        }
        case 5u: {
            r5[c] = blend(r5[c], s5[c]);
            r5[n + c] = blend(r5[n + c], s5[2u * n + c]);
        }
        case 6u: {
            r6[c] = blend(r6[c], s6[c]);
            r6[n + c] = blend(r6[n + c], s6[2u * n + c]);
        }
        default: {
            r7[c] = blend(r7[c], s7[c]);
            r7[n + c] = blend(r7[n + c], s7[2u * n + c]);
        }
    }
}
