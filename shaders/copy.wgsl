// copy: the bandwidth baseline. dst[i] = src[i] over 16-byte vectors.
// Entry `main`: a vec4 per thread (GPUs). Entry `main_teams` (CPU adapters): the threads of a
// workgroup in teams of TEAM consecutive ones, each team copying a run of RUN vec4s, its threads
// on consecutive vec4s (thread k of the team takes k, k + TEAM, ...): on lavapipe, which runs a
// workgroup's threads 8 at a time in SIMD lanes, a team is one such batch, its loads and stores
// land on consecutive addresses and the workgroups are few (16M values: about 2x `main`'s rate).
// Any mapping is correct; only the speed assumes TEAM matches the adapter's batch.
// Bindings: 0 params {n_vec4, ...}, 1 src (read), 2 dst (read_write).

struct CopyParams {
    n_vec4: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i < p.n_vec4) {
        dst[i] = src[i];
    }
}

const TEAM: u32 = 8u;
// Set by the launcher (src/kernels/copy.rs, TEAM_RUN).
override RUN: u32 = 256u;

@compute @workgroup_size(256)
fn main_teams(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let team = (wg.x + wg.y * nwg.x) * (256u / TEAM) + lid / TEAM;
    let end = min(team * RUN + RUN, p.n_vec4);
    for (var i = team * RUN + lid % TEAM; i < end; i += TEAM) {
        dst[i] = src[i];
    }
}
