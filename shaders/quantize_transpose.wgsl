// quantize_transpose: quantizes the transpose of x from its groups' maxima (the second launch of
// the transposed two-pass quantizer absmax -> quantize_transpose). x is [cols, rows] row-major;
// the output is the logical tensor L = xᵀ of shape [rows, cols], packed along its rows (what the
// backward GEMMs need: operands packed along the other dimension). Groups, scales and RNG indices
// are those of L, so the result equals scale and quantize of xᵀ bit for bit (reference:
// src/reference/quantize_transpose.rs, `from_maxima`).
// Each thread turns its group's maximum into (scale, inverse scale) by the format's rule
// (common/maxima.wgsl), so no launch sits between the two passes; the thread holding a group's
// first word stores the scale. With p.samples > 1 it writes that many stochastic samples stacked
// (SMP, common/samples.wgsl), the scale computed once.
// Threads of a workgroup take p.seg consecutive rows of L (columns of x; a power of two, at most
// WG: L's rows rounded up) at WG / p.seg consecutive words, so the reads of x are coalesced and L's
// few rows (a convolution's dYᵀ has as many as its output channels, its Xᵀ kh·kw·c) still fill the
// workgroup. Tiles: tiles_per_row = ceil(rows / p.seg) row tiles, times the word tiles.
// Bindings: 0 params (QuantParams), 1 x (read f32), 2 amax (read u32 bits, n_groups + tensor
// slot), 3 codes (read_write u32, samples · rows · words_per_row), 4 step (StepState), 5 scales
// (read_write f32, samples · n_groups).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> amax: array<u32>;
@group(0) @binding(3) var<storage, read_write> codes: array<u32>;
@group(0) @binding(4) var<uniform> st: StepState;
@group(0) @binding(5) var<storage, read_write> scales: array<f32>;

// x again, as vec4s (entry main_rows4 only: one entry may not reach both views).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;

// x as the shared packing reads it.
fn load_x(i: u32) -> f32 {
    return x[i];
}

fn load_x4(i: u32) -> vec4<f32> {
    return x4[i];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rw = row_tile_thread(p, wg, nwg, lid);
    let row = rw.x;
    let word = rw.y;
    if (row >= p.rows || word >= p.words_per_row) {
        return;
    }
    let s_inv = inv_scale_at(row, word * fmt_per_word());
    let xr = x_row(row);
    for (var j = 0u; j < p.samples; j++) {
        codes[code_at(j, row, word)] = pack_word_t(row, xr, word, s_inv, sample_key(j));
    }
}

// Words of L's rows a thread of main_rows4 packs.
const PIECE_WORDS: u32 = 64u;

// Entry main_rows4 (CPU adapters, where every load runs lane by lane and a thread per word turned
// its group's maximum into a scale for every word): a thread per p.quads quads of L's rows (four
// adjacent rows each; fewer at L's end) and a piece of PIECE_WORDS words of them, each row's
// inverse scale taken once, x read as vec4s (the four rows at one column of L lie side by side in
// x) by pack_t.wgsl's pack_quads, as quantize_transpose_fused's four-row entries pack (several
// quads in runs of QUAD_RUN columns of each in turn). For per-row and per-tensor scales (a piece's
// words then share each row's scale) and L's rows a multiple of 4 (so every vec4 is whole and
// four rows of L start at a multiple of 4); the same codes and scales as main. Threads: groups of
// quads fastest, then pieces (p.total_tiles threads in all, set by the launcher).
@compute @workgroup_size(8)
fn main_rows4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat_workgroup(wg, nwg) * 8u + lid;
    if (t >= p.total_tiles) {
        return;
    }
    let groups = (p.rows + quad_rows() - 1u) / quad_rows();
    let r0 = (t % groups) * quad_rows();
    let nq = quads_from(r0);
    let w0 = (t / groups) * PIECE_WORDS;
    let c0 = w0 * fmt_per_word();
    var inv: array<vec4<f32>, MAX_QUADS>;
    for (var v = 0u; v < nq; v++) {
        let r = r0 + 4u * v;
        inv[v] = vec4<f32>(inv_scale_at(r, c0), inv_scale_at(r + 1u, c0), inv_scale_at(r + 2u, c0),
                           inv_scale_at(r + 3u, c0));
    }
    pack_quads(r0, nq, x_row(r0).y / 4u, w0, min(w0 + PIECE_WORDS, p.words_per_row), inv);
}
