// col_sum: out[j] = sum_i x[i][j] over the rows of a [rows, cols] tensor, in row order (the bias
// gradient of a layer whose output rows are samples or pixels). One thread per column, so reads
// are coalesced across threads. Reference: src/reference/col_sum.rs (same order: exact).
// Bindings: 0 params {rows, cols}, 1 x, 2 out.

struct SumParams {
    rows: u32,
    cols: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: SumParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (j < p.cols) {
        var s = 0.0;
        for (var i = 0u; i < p.rows; i++) {
            s += x[i * p.cols + j];
        }
        out[j] = s;
    }
}
