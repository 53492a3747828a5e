// dequantize: packed codes and group scales -> f32, out = ftz(decode(code) * s), a non-finite
// code's own value whatever s (fmt_dequantize).
// Reference: src/reference/dequantize.rs.
// Bindings: 0 params (QuantParams), 1 codes (read u32), 2 scales (read f32), 3 out (read_write f32).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
    let mask = (1u << b) - 1u;
    let col0 = word * per_word;
    let s = scales[group_of(p, row, col0)];
    let packed = codes[row * p.words_per_row + word];
    for (var i = 0u; i < per_word; i++) {
        let col = col0 + i;
        if (col < p.cols) {
            out[row * p.cols + col] = fmt_dequantize((packed >> (i * b)) & mask, s);
        }
    }
}
