// absmax: the largest finite, normal |x| of every scale group, as ordered f32 bits (atomicMax).
// The output must be zeroed before the launch. Reference: src/reference/absmax.rs.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 amax (read_write atomic u32, n_groups).
// transposed = 1 reads the logical [rows, cols] tensor from x stored as [cols, rows].

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> amax: array<atomic<u32>>;

var<workgroup> red: array<u32, 256>;

fn load(row: u32, col: u32) -> f32 {
    if (p.transposed == 1u) {
        return x[col * p.rows + row];
    }
    return x[row * p.cols + col];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = flat_workgroup(wg, nwg);
    let row = tile / p.tiles_per_row;
    let word = (tile % p.tiles_per_row) * WG + lid;
    let valid = tile < p.total_tiles && word < p.words_per_row;
    var m = 0u;
    if (valid) {
        for (var i = 0u; i < p.per_word; i++) {
            let col = word * p.per_word + i;
            if (col < p.cols) {
                m = max(m, amax_bits(load(row, col)));
            }
        }
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = p.seg / 2u; s > 0u; s = s / 2u) {
        if ((lid & (p.seg - 1u)) < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    if (valid && (lid & (p.seg - 1u)) == 0u) {
        atomicMax(&amax[group_of(p, row, word * p.per_word)], red[lid]);
    }
}
