// optim: what the multi-tensor optimizers (sgd, adam) share, mirroring `OptimParams` and
// `OptimLaunch` in src/kernels/mod.rs: a dispatch updates up to 8 tensors (slots); tensor j owns
// the workgroups start[j] .. start[j + 1] (the last: to the end of the grid), so a workgroup
// updates one tensor and its slot is uniform; unused slots start at 0xffffffff. `hyper` holds the
// kernel's own four hyper-parameters (see each kernel). Bindings 0 params, 1 step (StepState),
// 2 status (read u32 [2]); the slots' buffers follow in each kernel. The multi-tensor vec4
// entries (CPU adapters) walk each slot's vec4s in teams (slot_team_span), the slot sized by
// OptimLaunch::encode to match.

struct OptimParams {
    start: array<vec4<u32>, 2>,
    len: array<vec4<u32>, 2>,
    weight_decay: array<vec4<f32>, 2>,
    hyper: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: OptimParams;
@group(0) @binding(1) var<uniform> st: StepState;
@group(0) @binding(2) var<storage, read> status: array<u32>;

fn start(j: u32) -> u32 {
    return p.start[j / 4u][j % 4u];
}

fn len(j: u32) -> u32 {
    return p.len[j / 4u][j % 4u];
}

fn decay(j: u32) -> f32 {
    return p.weight_decay[j / 4u][j % 4u];
}

// The slot whose workgroups include wg (uniform across the workgroup; common/slots.wgsl).
fn slot(wg: u32) -> u32 {
    return slot_of(wg, p.start);
}

// The vec4s of slot j's tensor (n4 of them) that thread lid of workgroup id walks in the vec4
// entries: the slot's workgroups in common/teams.wgsl's layout (from .x, below .y, by TEAM).
fn slot_team_span(id: u32, j: u32, lid: u32, n4: u32) -> vec2<u32> {
    return team_span(vec3<u32>(id - start(j), 0u, 0u), vec3<u32>(1u, 1u, 1u), lid, n4);
}
