// finite: whether up to 8 buffers hold only finite values. Any NaN or ±inf among the first
// len[j] values of buffer j sets status[0] (atomicOr 1) and lowers status[1] to the step's number
// (StepState.step, atomicMin):
// status is sticky across steps, so kernels that update state read status[0] and skip their
// writes once a step has gone non-finite, and the host learns the first such step.
// One thread per element index i, over every buffer that long. Reference: src/reference/finite.rs.
// Bindings: 0 params {len[8]}, 1..8 x0..x7 (read f32), 9 status (read_write atomic u32 [2]),
// 10 step (StepState).

struct FiniteParams {
    len: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: FiniteParams;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read> x3: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<f32>;
@group(0) @binding(6) var<storage, read> x5: array<f32>;
@group(0) @binding(7) var<storage, read> x6: array<f32>;
@group(0) @binding(8) var<storage, read> x7: array<f32>;
@group(0) @binding(9) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(10) var<uniform> st: StepState;

var<workgroup> bad: atomic<u32>;

// Not finite: exponent all ones (NaN or ±inf), read from the bits (a comparison might be folded).
fn nonfinite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}

fn len(j: u32) -> u32 {
    return p.len[j / 4u][j % 4u];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&bad, 0u);
    }
    workgroupBarrier();
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    var b = false;
    if (i < len(0u)) { b = b || nonfinite(x0[i]); }
    if (i < len(1u)) { b = b || nonfinite(x1[i]); }
    if (i < len(2u)) { b = b || nonfinite(x2[i]); }
    if (i < len(3u)) { b = b || nonfinite(x3[i]); }
    if (i < len(4u)) { b = b || nonfinite(x4[i]); }
    if (i < len(5u)) { b = b || nonfinite(x5[i]); }
    if (i < len(6u)) { b = b || nonfinite(x6[i]); }
    if (i < len(7u)) { b = b || nonfinite(x7[i]); }
    if (b) {
        atomicOr(&bad, 1u);
    }
    workgroupBarrier();
    if (lid == 0u && atomicLoad(&bad) != 0u) {
        atomicOr(&status[0], 1u);
        atomicMin(&status[1], st.step);
    }
}
