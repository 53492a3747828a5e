// col_sum's first level over four adjacent columns of a row-major x read as vec4s, shared by
// the kernels that write a layer's bias gradient as they read its gradient for something else
// (rows_t.wgsl's transposing quantizers, hadamard's per-thread rotation). It reads the including
// kernel's x through its `load_x4(i)` (values 4i .. 4i + 3, masked as the kernel reads them).

// col_sum's lanes: each chunk of a row is summed as eight interleaved partial sums, added in
// lane order, then the chunks in order.
const SUM_LANES: u32 = 8u;

// Four adjacent rows of L (x read as vec4s: index col * q + i0 holds column col of the four
// rows): each row's maximum and its sum in col_sum's order.
struct RowPass4 {
    m: vec4<u32>,
    total: vec4<f32>,
}

// Columns c0 .. end - 1 of the four rows (one of col_sum's chunks): their maxima, and their sums as
// col_sum's first level sums a chunk (eight lanes, lane l every 8th column from c0 + l, the lanes
// added in order).
fn chunk_pass4(q: u32, i0: u32, c0: u32, end: u32) -> RowPass4 {
    var m = vec4<u32>();
    var s = array<vec4<f32>, 8>();
    for (var col = c0; col < end; col += SUM_LANES) {
        for (var l = 0u; l < SUM_LANES; l++) {
            if (col + l < end) {
                let v = load_x4((col + l) * q + i0);
                m = max(m, amax_bits4(v));
                s[l] += v;
            }
        }
    }
    var t = s[0];
    for (var l = 1u; l < SUM_LANES; l++) {
        t += s[l];
    }
    return RowPass4(m, t);
}
