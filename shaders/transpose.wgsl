// transpose: batched matrix transpose, src [batches, rows, cols] -> dst [batches, cols, rows]
// (attention's quantized products pack V, K, Q, P, dO and dS along the other dimension per batch
// and head). A 16x16 tile per workgroup through workgroup memory, so both the reads and the
// writes of a row of threads are consecutive; tiles are numbered flat over the dispatch, batch
// major. Each element is moved exactly once.
// Reference: src/reference/transpose.rs. Bindings: 0 params {batches, rows, cols, tiles_r,
// tiles_c}, 1 src (read), 2 dst (read_write).

struct TransposeParams {
    batches: u32,
    rows: u32,
    cols: u32,
    tiles_r: u32,
    tiles_c: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: TransposeParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> tile: array<f32, 272>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let flat = wg.x + wg.y * nwg.x;
    let per_batch = p.tiles_r * p.tiles_c;
    // Uniform across the workgroup: every thread reaches the barrier or none does.
    if (flat >= per_batch * p.batches) {
        return;
    }
    let batch = flat / per_batch;
    let r0 = ((flat % per_batch) / p.tiles_c) * 16u;
    let c0 = (flat % p.tiles_c) * 16u;
    let base = batch * p.rows * p.cols;
    // Read row r0 + y, column c0 + x (consecutive x: consecutive addresses); 17 columns of
    // padding per tile row keep the transposed reads off one bank.
    let r = r0 + lid.y;
    let c = c0 + lid.x;
    if (r < p.rows && c < p.cols) {
        tile[lid.y * 17u + lid.x] = src[base + r * p.cols + c];
    }
    workgroupBarrier();
    // Write dst row c0 + y (a source column), column r0 + x (a source row).
    let dc = c0 + lid.y;
    let dr = r0 + lid.x;
    if (dc < p.cols && dr < p.rows) {
        dst[base + dc * p.rows + dr] = tile[lid.x * 17u + lid.y];
    }
}
