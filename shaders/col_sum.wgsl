// col_sum: out[j] = Σ_i x[i][j] over the rows of a [rows, cols] tensor (the bias gradient of a
// layer whose output rows are samples or pixels), as a two-level reduction so that tall inputs
// (a convolution's batch·height·width rows) spread over the whole GPU:
//   partial_main: the rows are cut into `chunks` chunks of `chunk_rows`; a workgroup takes 32
//                 columns × one chunk, 8 lanes per column each summing every 8th row of the chunk
//                 in row order, then the lanes are added in lane order: partial[chunk][j].
//   partial_thread (CPU adapters, where a barrier splits the shader and costs more than the sums
//                 it orders): the same partial sums from one thread per (chunk, column), its
//                 eight row lanes in registers and added in lane order.
//   finish:       out[j] = partial[0][j] + partial[1][j] + … in chunk order.
// With one chunk (at most 64 rows: split-K's partial sums, small batches) partial_main writes
// out[j] itself and finish is not launched (the same bits: finish would copy partial[0][j]).
// The order is fixed, so the reference (src/reference/col_sum.rs, same order) is exact.
// With `masked`, x[i] counts as 0 unless mask[i] > 0 (ReLU's backward inside the sum: the bits of
// summing what relu_backward writes); unmasked, the launcher binds x as the mask.
// Bindings: 0 params {rows, cols, chunk_rows, chunks, masked}, 1 x, 2 out, 3 partial
// [chunks, cols], 4 mask.

struct SumParams {
    rows: u32,
    cols: u32,
    chunk_rows: u32,
    chunks: u32,
    masked: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: SumParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;

fn load(i: u32) -> f32 {
    if (p.masked != 0u) {
        return select(0.0, x[i], mask[i] > 0.0);
    }
    return x[i];
}

const COLS: u32 = 32u;
const LANES: u32 = 8u;
var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn partial_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tiles = (p.cols + COLS - 1u) / COLS;
    let wid = wg.x + wg.y * nwg.x;
    if (wid >= tiles * p.chunks) {
        return;
    }
    let chunk = wid / tiles;
    let j = (wid % tiles) * COLS + lid % COLS;
    let lane = lid / COLS;
    let start = chunk * p.chunk_rows;
    let end = min(start + p.chunk_rows, p.rows);
    var s = 0.0;
    if (j < p.cols) {
        for (var r = start + lane; r < end; r += LANES) {
            s += load(r * p.cols + j);
        }
    }
    acc[lid] = s;
    workgroupBarrier();
    if (lane == 0u && j < p.cols) {
        var t = acc[lid];
        for (var l = 1u; l < LANES; l++) {
            t += acc[l * COLS + lid];
        }
        if (p.chunks == 1u) {
            out[j] = t;
        } else {
            partial[chunk * p.cols + j] = t;
        }
    }
}

// Row r's value of column j for partial_thread, or +0 for a row past `end` (adding +0 leaves a sum
// that started at +0 unchanged: such a sum is never −0). Without a branch: a row past the end
// reads row end − 1 and its value is dropped.
fn row_value(r: u32, end: u32, j: u32) -> f32 {
    return select(0.0, load(min(r, end - 1u) * p.cols + j), r < end);
}

@compute @workgroup_size(256)
fn partial_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (t >= p.chunks * p.cols) {
        return;
    }
    let chunk = t / p.cols;
    let j = t % p.cols;
    let start = chunk * p.chunk_rows;
    let end = min(start + p.chunk_rows, p.rows);
    // Lane l of partial_main sums rows start + l, start + l + 8, ...: component l of (lo, hi).
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    for (var r0 = start; r0 < end; r0 += LANES) {
        lo += vec4<f32>(row_value(r0, end, j), row_value(r0 + 1u, end, j), row_value(r0 + 2u, end, j),
                        row_value(r0 + 3u, end, j));
        hi += vec4<f32>(row_value(r0 + 4u, end, j), row_value(r0 + 5u, end, j), row_value(r0 + 6u, end, j),
                        row_value(r0 + 7u, end, j));
    }
    let s = lo.x + lo.y + lo.z + lo.w + hi.x + hi.y + hi.z + hi.w;
    if (p.chunks == 1u) {
        out[j] = s;
    } else {
        partial[chunk * p.cols + j] = s;
    }
}

@compute @workgroup_size(256)
fn finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (j < p.cols) {
        var t = partial[j];
        for (var c = 1u; c < p.chunks; c++) {
            t += partial[c * p.cols + j];
        }
        out[j] = t;
    }
}
