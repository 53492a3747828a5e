// absmax: the largest finite, normal |x| of every scale group, as ordered f32 bits (atomicMax).
// The output must be zeroed before the launch. Reference: src/reference/absmax.rs.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 amax (read_write atomic u32, n_groups,
// and with tensor_slot one more, amax[n_groups], the tensor's maximum: entry `main` only, as the
// formats that need it are block-scaled).
// transposed = 1 reads the logical [rows, cols] tensor from x stored as [cols, rows].
// Entry `main`: a workgroup per 256 words of a logical row. Entry `main_t`, for transposed
// tensors whose groups are whole rows (per row, per tensor): reads along x's contiguous
// dimension instead — a workgroup takes p.seg logical rows (8 to 32) × a chunk of `aux0` logical
// columns (`aux1` chunks), 256 / p.seg lanes per row each taking every lane-count-th column,
// lanes combined, one atomicMax per row and chunk. Entry `main_flat`, for one group over the
// whole tensor (per tensor, without the tensor slot; either orientation, as the set of elements
// is the same): reads x as a flat
// array, FLAT_PER elements per thread at a stride of 256 (coalesced), a workgroup per FLAT_PER·256
// elements, combined with one workgroup atomic per thread and one storage atomic per workgroup
// (two barriers, where the per-row entry spends eight on a tree for each 256 words). A max does
// not depend on order, so every entry gives the same bits.
// Entries `main_thread` and `main_thread_v4`, for CPU adapters (no workgroup memory, no
// barriers): a thread reduces `aux0` consecutive logical columns of one logical row, all in one
// group (a block, or a piece of a row), then one atomicMax for its group (and one for the tensor
// slot); `aux1` such spans per row. In x's own orientation threads run along rows; transposed,
// consecutive threads take consecutive logical rows (adjacent addresses in x). `main_thread_v4`
// reads x as vec4s (binding 1 as x4: untransposed, cols and aux0 multiples of 4).
// With `masked`, every entry reads x[i] as 0 unless mask[i] > 0 (binding 3, the same layout as x;
// as mask4 beside x4): ReLU's backward inside the reduction, the bits of reducing what
// relu_backward writes; unmasked, the launcher binds x as the mask.

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> amax: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> mask4: array<vec4<f32>>;

// x[i], masked when asked.
fn at(i: u32) -> f32 {
    if (p.masked != 0u) {
        return select(0.0, x[i], mask[i] > 0.0);
    }
    return x[i];
}

fn load(row: u32, col: u32) -> f32 {
    if (p.transposed == 1u) {
        return at(col * p.rows + row);
    }
    return at(row * p.cols + col);
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
    let t = segment_max(lid, p.seg, m);
    if (valid && (lid & (p.seg - 1u)) == 0u) {
        atomicMax(&amax[group_of(p, row, word * p.per_word)], t);
    }
    if (p.tensor_slot == 1u) {
        // The workgroup's maximum over its segments' maxima (seg_red at multiples of seg), then
        // one atomic for the tensor.
        workgroupBarrier();
        for (var s = 128u; s >= p.seg; s = s / 2u) {
            if (lid < s && (lid & (p.seg - 1u)) == 0u) {
                seg_red[lid] = max(seg_red[lid], seg_red[lid + s]);
            }
            workgroupBarrier();
        }
        if (lid == 0u) {
            atomicMax(&amax[p.n_groups], seg_red[0]);
        }
    }
}

// main_t's rows of L a workgroup: p.seg (L's rows rounded up to a power of two, from 8 to 32),
// with WG / p.seg lanes each (L's few rows: a convolution's dYᵀ of 16 rows took half of a
// workgroup of 32 rows × 8 lanes before).
@compute @workgroup_size(256)
fn main_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let trows = p.seg;
    let lanes = WG / trows;
    let tiles = (p.rows + trows - 1u) / trows;
    let wid = flat_workgroup(wg, nwg);
    if (wid >= tiles * p.aux1) {
        return;
    }
    let chunk = wid / tiles;
    let row = (wid % tiles) * trows + lid % trows;
    let lane = lid / trows;
    let start = chunk * p.aux0;
    let end = min(start + p.aux0, p.cols);
    var m = 0u;
    if (row < p.rows) {
        for (var c = start + lane; c < end; c += lanes) {
            m = max(m, amax_bits(at(c * p.rows + row)));
        }
    }
    let t = lanes_max(lid, trows, m);
    if (lane == 0u && row < p.rows) {
        atomicMax(&amax[group_of(p, row, start)], t);
    }
}

const FLAT_PER: u32 = 16u;

var<workgroup> wmax: atomic<u32>;

@compute @workgroup_size(256)
fn main_flat(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&wmax, 0u);
    }
    workgroupBarrier();
    let n = p.rows * p.cols;
    let base = flat_workgroup(wg, nwg) * (FLAT_PER * 256u) + lid;
    var m = 0u;
    for (var j = 0u; j < FLAT_PER; j++) {
        let i = base + j * 256u;
        if (i < n) {
            m = max(m, amax_bits(at(i)));
        }
    }
    atomicMax(&wmax, m);
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&amax[0], atomicLoad(&wmax));
    }
}

// The span of thread t for the per-thread entries: (row, first column, end column), or rows = p.rows
// for no span.
fn thread_span(t: u32) -> vec3<u32> {
    if (t >= p.rows * p.aux1) {
        return vec3<u32>(p.rows, 0u, 0u);
    }
    var row = t / p.aux1;
    var seg = t % p.aux1;
    if (p.transposed == 1u) {
        row = t % p.rows;
        seg = t / p.rows;
    }
    let c0 = seg * p.aux0;
    return vec3<u32>(row, c0, min(c0 + p.aux0, p.cols));
}

fn commit(row: u32, c0: u32, m: u32) {
    atomicMax(&amax[group_of(p, row, c0)], m);
    if (p.tensor_slot == 1u) {
        atomicMax(&amax[p.n_groups], m);
    }
}

@compute @workgroup_size(256)
fn main_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = thread_span(flat_workgroup(wg, nwg) * WG + lid);
    if (s.x >= p.rows) {
        return;
    }
    var m = 0u;
    for (var c = s.y; c < s.z; c++) {
        m = max(m, amax_bits(load(s.x, c)));
    }
    commit(s.x, s.y, m);
}

@compute @workgroup_size(256)
fn main_thread_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = thread_span(flat_workgroup(wg, nwg) * WG + lid);
    if (s.x >= p.rows) {
        return;
    }
    var m = 0u;
    let base = s.x * p.cols;
    for (var c = s.y; c < s.z; c += 4u) {
        var v = x4[(base + c) / 4u];
        if (p.masked != 0u) {
            v = select(vec4<f32>(0.0), v, mask4[(base + c) / 4u] > vec4<f32>(0.0));
        }
        m = max(m, max(max(amax_bits(v.x), amax_bits(v.y)), max(amax_bits(v.z), amax_bits(v.w))));
    }
    commit(s.x, s.y, m);
}
