// quantize: x -> packed codes and scales from every group's maximum (the second launch of the
// two-pass quantizer absmax -> quantize): each thread turns its group's maximum into (scale,
// inverse scale) by the format's rule and the thread holding a group's first word stores the scale
// (common/maxima.wgsl). Rounding to nearest-even, or stochastic with draw
// rng_draw24(key, row * cols + col), key = rng_key(seed, stream + j + stream_base) for sample j:
// with p.samples > 1 it writes that many stochastic samples stacked (SMP, common/samples.wgsl);
// packing from common/pack.wgsl. Reference: src/reference/quantize.rs, `from_maxima`.
// Entry `main`: one thread packs one word, 256 words of one row per workgroup.
// Entries `main_thread`, `main_thread_v4`, for CPU adapters: a thread packs a run of `seg` words
// of one row (within one scale group: blocks hold whole words), the scale computed once per run;
// `_v4` reads x as vec4s (binding 1 as x4: codes per word and cols multiples of 4). The same codes
// and draws.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 amax (read u32 bits, n_groups + tensor
// slot), 3 codes (read_write u32, samples · rows · words_per_row), 4 step (StepState), 5 scales
// (read_write f32, samples · n_groups).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// x again, as vec4s (main_thread_v4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> amax: array<u32>;
@group(0) @binding(3) var<storage, read_write> codes: array<u32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read_write> scales: array<f32>;

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
    let s_inv = inv_scale_at(row, word * fmt_per_word());
    for (var j = 0u; j < p.samples; j++) {
        codes[code_at(j, row, word)] = pack_word(row, word, s_inv, sample_key(j));
    }
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

@compute @workgroup_size(256)
fn main_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = thread_run(flat_workgroup(wg, nwg) * WG + lid);
    if (r.x >= p.rows) {
        return;
    }
    let s_inv = inv_scale_at(r.x, r.y * fmt_per_word());
    for (var j = 0u; j < p.samples; j++) {
        let key = sample_key(j);
        for (var w = r.y; w < r.z; w++) {
            codes[code_at(j, r.x, w)] = pack_word(r.x, w, s_inv, key);
        }
    }
}

@compute @workgroup_size(256)
fn main_thread_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = thread_run(flat_workgroup(wg, nwg) * WG + lid);
    if (r.x >= p.rows) {
        return;
    }
    let s_inv = inv_scale_at(r.x, r.y * fmt_per_word());
    for (var j = 0u; j < p.samples; j++) {
        let key = sample_key(j);
        for (var w = r.y; w < r.z; w++) {
            codes[code_at(j, r.x, w)] = pack_word4(r.x, w, s_inv, key);
        }
    }
}
