// The segment tree of the one-pass quantizers' workgroup entries (quantize_fused's main, main_row
// and main_whole; im2col_quantize's main_rows): each run of `seg` threads of a workgroup (a power of
// two, at most 256, the same for the whole workgroup) reduced to its largest m in workgroup memory,
// as a maximum is the same in any order; and the maximum over a row's lanes where a workgroup's
// threads are rows fastest (absmax's main_t, im2col_quantize_transpose's main_rows and
// main_maxima).

var<workgroup> seg_red: array<u32, 256>;

// The largest m of this thread's run of `seg` threads, returned to the run's first thread (the
// others get partial maxima); every thread of the workgroup calls it, in uniform control flow.
fn segment_max(lid: u32, seg: u32, m: u32) -> u32 {
    seg_red[lid] = m;
    workgroupBarrier();
    for (var s = seg / 2u; s > 0u; s = s / 2u) {
        if ((lid & (seg - 1u)) < s) {
            seg_red[lid] = max(seg_red[lid], seg_red[lid + s]);
        }
        workgroupBarrier();
    }
    return seg_red[lid];
}

// The largest m of the threads that share this thread's lid mod rows (a workgroup of `rows` rows,
// a power of two at most 256, times WG / rows lanes, rows fastest), returned to every thread;
// every thread of the workgroup calls it, in uniform control flow.
fn lanes_max(lid: u32, rows: u32, m: u32) -> u32 {
    seg_red[lid] = m;
    workgroupBarrier();
    var r = 0u;
    for (var j = lid % rows; j < 256u; j += rows) {
        r = max(r, seg_red[j]);
    }
    return r;
}
