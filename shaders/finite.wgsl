// finite: whether up to 8 buffers (24 in the _wide entries) hold only finite values. Any NaN or
// ±inf among the first len[j] values of buffer j sets status[0] (atomicOr 1) and lowers status[1]
// to the step's number (StepState.step, atomicMin):
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
// Entries `main_wide`, `main_flat_wide` and `main_flat_v4_wide` do the same over 24 buffers (the
// eight, then x8..x23 at bindings 11..26), for adapters that bind 25 storage buffers a stage: a
// model's weights and gradients in a third of the launches. The eight-buffer entries reach none
// of bindings 11..26, so their pipelines leave them out.
// It reads whole vec4s, so every buffer must be bound with at least ceil(len / 4) of them (lowbit's
// buffers are padded to 16 bytes); what lies past len (another value's data in a plan's arena)
// is ignored. Reference: src/reference/finite.rs.
// Bindings: 0 params {len[24]}, 1..8 x0..x7 (read f32; vec4 views x0_4..x7_4 in the v4 entries),
// 9 status (read_write atomic u32 [2]), 10 step (StepState), 11..26 x8..x23 (the _wide entries).

struct FiniteParams {
    len: array<vec4<u32>, 6>,
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
// The _wide entries' further sixteen buffers, and their vec4 views.
@group(0) @binding(11) var<storage, read> x8: array<f32>;
@group(0) @binding(12) var<storage, read> x9: array<f32>;
@group(0) @binding(13) var<storage, read> x10: array<f32>;
@group(0) @binding(14) var<storage, read> x11: array<f32>;
@group(0) @binding(15) var<storage, read> x12: array<f32>;
@group(0) @binding(16) var<storage, read> x13: array<f32>;
@group(0) @binding(17) var<storage, read> x14: array<f32>;
@group(0) @binding(18) var<storage, read> x15: array<f32>;
@group(0) @binding(19) var<storage, read> x16: array<f32>;
@group(0) @binding(20) var<storage, read> x17: array<f32>;
@group(0) @binding(21) var<storage, read> x18: array<f32>;
@group(0) @binding(22) var<storage, read> x19: array<f32>;
@group(0) @binding(23) var<storage, read> x20: array<f32>;
@group(0) @binding(24) var<storage, read> x21: array<f32>;
@group(0) @binding(25) var<storage, read> x22: array<f32>;
@group(0) @binding(26) var<storage, read> x23: array<f32>;
@group(0) @binding(11) var<storage, read> x8_4: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> x9_4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> x10_4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> x11_4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read> x12_4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read> x13_4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read> x14_4: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read> x15_4: array<vec4<f32>>;
@group(0) @binding(19) var<storage, read> x16_4: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read> x17_4: array<vec4<f32>>;
@group(0) @binding(21) var<storage, read> x18_4: array<vec4<f32>>;
@group(0) @binding(22) var<storage, read> x19_4: array<vec4<f32>>;
@group(0) @binding(23) var<storage, read> x20_4: array<vec4<f32>>;
@group(0) @binding(24) var<storage, read> x21_4: array<vec4<f32>>;
@group(0) @binding(25) var<storage, read> x22_4: array<vec4<f32>>;
@group(0) @binding(26) var<storage, read> x23_4: array<vec4<f32>>;

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

// Value r of buffer j, 8 <= j < 24 (the _wide entries' further buffers).
fn load_wide(j: u32, r: u32) -> f32 {
    switch (j) {
        case 8u: { return x8[r]; }
        case 9u: { return x9[r]; }
        case 10u: { return x10[r]; }
        case 11u: { return x11[r]; }
        case 12u: { return x12[r]; }
        case 13u: { return x13[r]; }
        case 14u: { return x14[r]; }
        case 15u: { return x15[r]; }
        case 16u: { return x16[r]; }
        case 17u: { return x17[r]; }
        case 18u: { return x18[r]; }
        case 19u: { return x19[r]; }
        case 20u: { return x20[r]; }
        case 21u: { return x21[r]; }
        case 22u: { return x22[r]; }
        default: { return x23[r]; }
    }
}

// nonfinite_at over the _wide entries' 24 buffers: the first eight's values through
// nonfinite_at's tests, then the further sixteen's (a loop over all 24 with load_wide's switch
// took about 1.5x as long on llvmpipe, `kernel_report`'s `resnet20` check on the tree entry).
fn nonfinite_at_wide(e: u32) -> bool {
    var low = 0u;
    for (var j = 0u; j < 8u; j++) {
        low += len(j);
    }
    if (e < low) {
        return nonfinite_at(e);
    }
    var r = e - low;
    for (var j = 8u; j < 24u; j++) {
        if (r < len(j)) {
            return nonfinite(load_wide(j, r));
        }
        r -= len(j);
    }
    return false;
}

// Whether values r0 .. r1 of buffer j of the _wide entries' 24 hold a NaN or ±inf: each buffer
// its own loop, chosen once (a switch per value, as load_wide, took about twice as long on
// llvmpipe as the eight-buffer entry's chain of tests).
fn run_flat_wide(j: u32, r0: u32, r1: u32) -> bool {
    var b = false;
    switch (j) {
        case 0u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x0[r]); } }
        case 1u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x1[r]); } }
        case 2u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x2[r]); } }
        case 3u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x3[r]); } }
        case 4u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x4[r]); } }
        case 5u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x5[r]); } }
        case 6u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x6[r]); } }
        case 7u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x7[r]); } }
        case 8u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x8[r]); } }
        case 9u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x9[r]); } }
        case 10u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x10[r]); } }
        case 11u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x11[r]); } }
        case 12u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x12[r]); } }
        case 13u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x13[r]); } }
        case 14u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x14[r]); } }
        case 15u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x15[r]); } }
        case 16u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x16[r]); } }
        case 17u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x17[r]); } }
        case 18u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x18[r]); } }
        case 19u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x19[r]); } }
        case 20u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x20[r]); } }
        case 21u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x21[r]); } }
        case 22u: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x22[r]); } }
        default: { for (var r = r0; r < r1; r++) { b = b | nonfinite(x23[r]); } }
    }
    return b;
}

// main_flat_wide's thread: values e0 .. e0 + FLAT_PER_THREAD of the 24 buffers numbered one after
// another, taken a buffer's run at a time; one walk over the lengths finds the first run's buffer
// and each next one (past any empty buffer).
fn flat_bad_wide(e0: u32) -> bool {
    var j = 0u;
    var r = e0;
    var b = false;
    var left = FLAT_PER_THREAD;
    loop {
        for (; j < 24u && r >= len(j); j++) {
            r -= len(j);
        }
        if (left == 0u || j == 24u) {
            break;
        }
        let n = min(left, len(j) - r);
        b = b | run_flat_wide(j, r, r + n);
        left -= n;
        r += n;
    }
    return b;
}

fn flag_step() {
    atomicOr(&status[0], 1u);
    atomicMin(&status[1], st.step);
}

const FLAT_PER_THREAD: u32 = 16u;

// The first of the FLAT_PER_THREAD values of thread lid of workgroup wg (main_flat's numbering).
fn flat_e0(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return ((wg.x + wg.y * nwg.x) * 256u + lid) * FLAT_PER_THREAD;
}

@compute @workgroup_size(256)
fn main_flat(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e0 = flat_e0(wg, nwg, lid);
    var b = false;
    for (var e = e0; e < e0 + FLAT_PER_THREAD; e++) {
        b = b || nonfinite_at(e);
    }
    if (b) {
        flag_step();
    }
}

@compute @workgroup_size(256)
fn main_flat_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (flat_bad_wide(flat_e0(wg, nwg, lid))) {
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

// run_bad for buffer j of the _wide entries (8 <= j < 24: the further sixteen; below, run_bad's).
fn run_bad_wide(j: u32, i0: u32, n: u32) -> bool {
    if (j < 8u) {
        return run_bad(j, i0, n);
    }
    let end = min(i0 + V4_PER_THREAD, (n + 3u) / 4u);
    var bad = false;
    switch (j) {
        case 8u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x8_4[i], i, n); } }
        case 9u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x9_4[i], i, n); } }
        case 10u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x10_4[i], i, n); } }
        case 11u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x11_4[i], i, n); } }
        case 12u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x12_4[i], i, n); } }
        case 13u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x13_4[i], i, n); } }
        case 14u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x14_4[i], i, n); } }
        case 15u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x15_4[i], i, n); } }
        case 16u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x16_4[i], i, n); } }
        case 17u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x17_4[i], i, n); } }
        case 18u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x18_4[i], i, n); } }
        case 19u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x19_4[i], i, n); } }
        case 20u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x20_4[i], i, n); } }
        case 21u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x21_4[i], i, n); } }
        case 22u: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x22_4[i], i, n); } }
        default: { for (var i = i0; i < end; i++) { bad = bad | quad_bad(x23_4[i], i, n); } }
    }
    return bad;
}

// Vec4s a thread of main_flat_v4 checks.
const V4_PER_THREAD: u32 = 16u;

// Workgroups of main_flat_v4 per buffer of `n` values.
fn v4_groups(n: u32) -> u32 {
    return (n + 1024u * V4_PER_THREAD - 1u) / (1024u * V4_PER_THREAD);
}

// Workgroup g's buffer among the first `buffers` (the same for all its threads, so the switch
// in run_bad does not diverge) and its workgroup there: (j, g'), j = buffers past the last.
fn v4_buffer(g0: u32, buffers: u32) -> vec2<u32> {
    var g = g0;
    var j = 0u;
    for (; j < buffers; j++) {
        let groups = v4_groups(len(j));
        if (g < groups) {
            break;
        }
        g -= groups;
    }
    return vec2<u32>(j, g);
}

@compute @workgroup_size(256)
fn main_flat_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = v4_buffer(wg.x + wg.y * nwg.x, 8u);
    if (b.x < 8u && run_bad(b.x, (b.y * 256u + lid) * V4_PER_THREAD, len(b.x))) {
        flag_step();
    }
}

@compute @workgroup_size(256)
fn main_flat_v4_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = v4_buffer(wg.x + wg.y * nwg.x, 24u);
    if (b.x < 24u && run_bad_wide(b.x, (b.y * 256u + lid) * V4_PER_THREAD, len(b.x))) {
        flag_step();
    }
}

// main's and main_wide's workgroup: bad cleared, the thread's finding (b) joined, one atomic.
fn tree_flag(b: bool, lid: u32) {
    if (lid == 0u) {
        atomicStore(&bad, 0u);
    }
    workgroupBarrier();
    if (b) {
        atomicOr(&bad, 1u);
    }
    workgroupBarrier();
    if (lid == 0u && atomicLoad(&bad) != 0u) {
        flag_step();
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tree_flag(nonfinite_at((wg.x + wg.y * nwg.x) * 256u + lid), lid);
}

@compute @workgroup_size(256)
fn main_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tree_flag(nonfinite_at_wide((wg.x + wg.y * nwg.x) * 256u + lid), lid);
}
