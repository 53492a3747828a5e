// quantize: x -> packed codes, given each group's inverse scale (the second pass of the two-pass
// quantizer: absmax -> scale -> quantize). Rounding to nearest-even, or stochastic with draw
// rng_draw24(key, row * cols + col), key = rng_key(seed, stream + stream_base); packing from
// common/pack.wgsl. Reference: src/reference/quantize.rs.
// Entry `main`: one thread packs one word, 256 words of one row per workgroup.
// Entries `main_thread`, `main_thread_v4`, for CPU adapters: a thread packs a run of `seg` words
// of one row (one scale group of a block-scaled layout), with the group's inverse scale loaded
// once per group rather than per word; `_v4` reads x as vec4s (binding 1 as x4: codes per word and
// cols multiples of 4). The same codes and draws.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 inv (read f32, n_groups), 3 codes
// (read_write u32, rows * words_per_row), 4 step (StepState).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// x again, as vec4s (main_thread_v4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> inv: array<f32>;
@group(0) @binding(3) var<storage, read_write> codes: array<u32>;
@group(0) @binding(4) var<uniform> st: StepState;

// x as the shared packing reads it.
fn load_x(i: u32) -> f32 {
    return x[i];
}

fn load_x4(i: u32) -> vec4<f32> {
    return x4[i];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = flat_workgroup(wg, nwg);
    let row = tile / p.tiles_per_row;
    let word = (tile % p.tiles_per_row) * WG + lid;
    if (tile >= p.total_tiles || word >= p.words_per_row) {
        return;
    }
    let key = rng_key(p.seed, p.stream + st.stream_base);
    codes[row * p.words_per_row + word] = pack_word(row, word, inv[group_of(p, row, word * fmt_per_word())], key);
}

// The run of thread t: (row, first word, end word), or row = p.rows for none.
fn thread_run(t: u32) -> vec3<u32> {
    let per_row = (p.words_per_row + p.seg - 1u) / p.seg;
    if (t >= p.rows * per_row) {
        return vec3<u32>(p.rows, 0u, 0u);
    }
    let row = t / per_row;
    let w0 = (t % per_row) * p.seg;
    return vec3<u32>(row, w0, min(w0 + p.seg, p.words_per_row));
}

// The inverse scale of word w of a run starting at w0 (s0 its first word's): a run is one group
// unless blocks split words (int3's 10 codes per word in blocks of 16 or 32), where each word takes
// its first code's group.
fn run_inv(row: u32, w: u32, w0: u32, s0: f32, one_group: bool) -> f32 {
    if (one_group || w == w0) {
        return s0;
    }
    return inv[group_of(p, row, w * fmt_per_word())];
}

fn one_group_per_run() -> bool {
    return p.block_div == 0xffffffffu || p.block_div % fmt_per_word() == 0u;
}

@compute @workgroup_size(256)
fn main_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = thread_run(flat_workgroup(wg, nwg) * WG + lid);
    if (r.x >= p.rows) {
        return;
    }
    let s0 = inv[group_of(p, r.x, r.y * fmt_per_word())];
    let one = one_group_per_run();
    let key = rng_key(p.seed, p.stream + st.stream_base);
    for (var w = r.y; w < r.z; w++) {
        codes[r.x * p.words_per_row + w] = pack_word(r.x, w, run_inv(r.x, w, r.y, s0, one), key);
    }
}

@compute @workgroup_size(256)
fn main_thread_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = thread_run(flat_workgroup(wg, nwg) * WG + lid);
    if (r.x >= p.rows) {
        return;
    }
    let s0 = inv[group_of(p, r.x, r.y * fmt_per_word())];
    let one = one_group_per_run();
    let key = rng_key(p.seed, p.stream + st.stream_base);
    for (var w = r.y; w < r.z; w++) {
        codes[r.x * p.words_per_row + w] = pack_word4(r.x, w, run_inv(r.x, w, r.y, s0, one), key);
    }
}
