// copy: the bandwidth baseline. dst[i] = src[i] over 16-byte vectors.
// Entry `main`: a vec4 per thread (GPUs). Entry `main_teams` (CPU adapters): the vec4s in
// common/teams.wgsl's layout (16M values on lavapipe: about 2x `main`'s rate).
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

@compute @workgroup_size(256)
fn main_teams(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let span = team_span(wg, nwg, lid, p.n_vec4);
    for (var i = span.x; i < span.y; i += TEAM) {
        dst[i] = src[i];
    }
}
