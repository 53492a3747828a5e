// quantize: x -> packed codes, given each group's inverse scale (the second pass of the two-pass
// quantizer: absmax -> scale -> quantize). One thread packs one word. Rounding to nearest-even, or
// stochastic with draw rng_draw24(key, row * cols + col), key = rng_key(seed, stream + stream_base).
// Reference: src/reference/quantize.rs. Bindings: 0 params (QuantParams), 1 x (read f32), 2 inv
// (read f32, n_groups), 3 codes (read_write u32, rows * words_per_row), 4 step (StepState).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> inv: array<f32>;
@group(0) @binding(3) var<storage, read_write> codes: array<u32>;
@group(0) @binding(4) var<uniform> st: StepState;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = flat_workgroup(wg, nwg);
    let row = tile / p.tiles_per_row;
    let word = (tile % p.tiles_per_row) * WG + lid;
    if (tile >= p.total_tiles || word >= p.words_per_row) {
        return;
    }
    let per_word = fmt_per_word();
    let b = fmt_bits();
    let col0 = word * per_word;
    let s_inv = inv[group_of(p, row, col0)];
    let stochastic = p.stochastic == 1u;
    let key = rng_key(p.seed, p.stream + st.stream_base);
    var packed = 0u;
    for (var i = 0u; i < per_word; i++) {
        let col = col0 + i;
        if (col < p.cols) {
            let idx = row * p.cols + col;
            var r = 0u;
            if (stochastic) {
                r = rng_draw24(key, idx);
            }
            packed |= fmt_quantize(x[idx], s_inv, stochastic, r) << (i * b);
        }
    }
    codes[row * p.words_per_row + word] = packed;
}
