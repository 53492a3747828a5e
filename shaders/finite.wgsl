// finite: whether up to 8 buffers hold only finite values. Any NaN or ±inf among the first
// len[j] values of buffer j sets status[0] (atomicOr 1) and lowers status[1] to the step's number
// (StepState.step, atomicMin):
// status is sticky across steps, so kernels that update state read status[0] and skip their
// writes once a step has gone non-finite, and the host learns the first such step.
// The buffers' values are numbered one after another (buffer 0's, then buffer 1's, ...), so the
// threads cover the sum of the lengths, not eight times the longest. Entry `main`: a thread per
// value, one workgroup atomic per workgroup that saw a non-finite value. Entry `main_flat` (CPU
// adapters, where a barrier splits the shader and costs more than it saves): a thread per
// FLAT_PER_THREAD consecutive values, no workgroup memory, an atomic from each thread that saw
// one. Entry `main_flat_v4` (CPU adapters, where every load runs lane by lane, so a vec4 costs
// about what one f32 does): a thread per V4_PER_THREAD consecutive vec4s of one buffer, each
// buffer's vec4s in workgroups of their own (the buffers' workgroups numbered one after another),
// so a workgroup picks its buffer once and every thread of it reads the same one (on llvmpipe
// 1.6-1.8x main_flat's rate over the MLP's weights and gradients, `kernel_report`; a thread per
// vec4 was slower than main_flat, 64 vec4s no faster than 16). Each buffer has its own loop
// (run_bad), chosen once per thread, and the vec4s' tests are joined by `|`, not `||`: one loop
// around a switch of the eight loads, with `||`, took about 1.4x as long on llvmpipe (the MLP's
// weights and gradients in `kernel_report` and in a training step).
// It reads whole vec4s, so every buffer must be bound with at least ceil(len / 4) of them (lowbit's
// buffers are padded to 16 bytes); what lies past len (another value's data in a plan's arena)
// is ignored. Reference: src/reference/finite.rs.
// Bindings: 0 params {len[8]}, 1..8 x0..x7 (read f32; vec4 views x0_4..x7_4 in main_flat_v4),
// 9 status (read_write atomic u32 [2]), 10 step (StepState).

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
// The same buffers as vec4s (main_flat_v4 only).
@group(0) @binding(1) var<storage, read> x0_4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x1_4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> x2_4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> x3_4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> x4_4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> x5_4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> x6_4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> x7_4: array<vec4<f32>>;
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

// Whether value e of the buffers numbered one after another is NaN or ±inf (false past the last).
fn nonfinite_at(e: u32) -> bool {
    var r = e;
    if (r < len(0u)) {
        return nonfinite(x0[r]);
    }
    r -= len(0u);
    if (r < len(1u)) {
        return nonfinite(x1[r]);
    }
    r -= len(1u);
    if (r < len(2u)) {
        return nonfinite(x2[r]);
    }
    r -= len(2u);
    if (r < len(3u)) {
        return nonfinite(x3[r]);
    }
    r -= len(3u);
    if (r < len(4u)) {
        return nonfinite(x4[r]);
    }
    r -= len(4u);
    if (r < len(5u)) {
        return nonfinite(x5[r]);
    }
    r -= len(5u);
    if (r < len(6u)) {
        return nonfinite(x6[r]);
    }
    r -= len(6u);
    if (r < len(7u)) {
        return nonfinite(x7[r]);
    }
    return false;
}

fn flag_step() {
    atomicOr(&status[0], 1u);
    atomicMin(&status[1], st.step);
}

const FLAT_PER_THREAD: u32 = 16u;

@compute @workgroup_size(256)
fn main_flat(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e0 = ((wg.x + wg.y * nwg.x) * 256u + lid) * FLAT_PER_THREAD;
    var b = false;
    for (var e = e0; e < e0 + FLAT_PER_THREAD; e++) {
        b = b || nonfinite_at(e);
    }
    if (b) {
        flag_step();
    }
}

// Whether vec4 i of a buffer of n values holds a NaN or ±inf among its first n - 4i values.
fn quad_bad(v: vec4<f32>, i: u32, n: u32) -> bool {
    let bits = bitcast<vec4<u32>>(v) & vec4<u32>(0x7f800000u);
    let inside = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n);
    return any((bits == vec4<u32>(0x7f800000u)) & inside);
}

// A thread's run of main_flat_v4: vec4s i0 .. i0 + V4_PER_THREAD of buffer j (n values), each
// buffer's loop its own, so the loop body loads from one binding with no switch, and no `||`
// branches between the vec4s.
fn run_bad(j: u32, i0: u32, n: u32) -> bool {
    let end = min(i0 + V4_PER_THREAD, (n + 3u) / 4u);
    var bad = false;
    switch (j) {
        case 0u: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x0_4[i], i, n);
            }
        }
        case 1u: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x1_4[i], i, n);
            }
        }
        case 2u: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x2_4[i], i, n);
            }
        }
        case 3u: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x3_4[i], i, n);
            }
        }
        case 4u: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x4_4[i], i, n);
            }
        }
        case 5u: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x5_4[i], i, n);
            }
        }
        case 6u: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x6_4[i], i, n);
            }
        }
        default: {
            for (var i = i0; i < end; i++) {
                bad = bad | quad_bad(x7_4[i], i, n);
            }
        }
    }
    return bad;
}

// Vec4s a thread of main_flat_v4 checks.
const V4_PER_THREAD: u32 = 16u;

// Workgroups of main_flat_v4 per buffer of `n` values.
fn v4_groups(n: u32) -> u32 {
    return (n + 1024u * V4_PER_THREAD - 1u) / (1024u * V4_PER_THREAD);
}

@compute @workgroup_size(256)
fn main_flat_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // This workgroup's buffer (the same for all its threads, so the switch in quad does not
    // diverge) and its vec4s there.
    var g = wg.x + wg.y * nwg.x;
    var j = 0u;
    for (; j < 8u; j++) {
        let groups = v4_groups(len(j));
        if (g < groups) {
            break;
        }
        g -= groups;
    }
    if (j == 8u) {
        return;
    }
    if (run_bad(j, (g * 256u + lid) * V4_PER_THREAD, len(j))) {
        flag_step();
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&bad, 0u);
    }
    workgroupBarrier();
    let b = nonfinite_at((wg.x + wg.y * nwg.x) * 256u + lid);
    if (b) {
        atomicOr(&bad, 1u);
    }
    workgroupBarrier();
    if (lid == 0u && atomicLoad(&bad) != 0u) {
        flag_step();
    }
}
