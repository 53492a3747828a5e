// quantize_transpose: quantizes the transpose of x. x is [cols, rows] row-major; the output is the
// logical tensor L = xᵀ of shape [rows, cols], packed along its rows (what the backward GEMMs need:
// operands packed along the other dimension). Groups, scales and RNG indices are those of L, so
// the result equals quantize(xᵀ) bit for bit (reference: src/reference/quantize_transpose.rs).
// Threads of a workgroup take 256 consecutive rows of L (columns of x) at one word, so the reads of
// x are coalesced. Tiles: tiles_per_row = ceil(rows / 256) row tiles, times words_per_row.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 inv (read f32), 3 codes (read_write u32).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> inv: array<f32>;
@group(0) @binding(3) var<storage, read_write> codes: array<u32>;
@group(0) @binding(4) var<uniform> st: StepState;

// x as the shared packing reads it.
fn load_x(i: u32) -> f32 {
    return x[i];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = flat_workgroup(wg, nwg);
    let row = (tile % p.tiles_per_row) * WG + lid;
    let word = tile / p.tiles_per_row;
    if (tile >= p.total_tiles || row >= p.rows) {
        return;
    }
    let s_inv = inv[group_of(p, row, word * fmt_per_word())];
    let key = rng_key(p.seed, p.stream + st.stream_base);
    codes[row * p.words_per_row + word] = pack_word_t(row, x_row(row), word, s_inv, key);
}
