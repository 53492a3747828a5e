// Mirror of `QuantParams` in src/kernels/mod.rs: the uniform block every quantizer-family kernel
// reads, and the index arithmetic they share.
//
// A tensor is viewed as [rows, cols], row-major, each row packed into `words_per_row` u32 words of
// `per_word` codes. The scale group of element (row, col) is `row * row_mul + col / block_div`
// (per tensor: row_mul = 0, block_div = 0xffffffff; per row: 1, 0xffffffff; per block of B:
// groups_per_row, B). Workgroups are numbered flat over a 2-D dispatch (65535 per dimension).

struct QuantParams {
    rows: u32,
    cols: u32,
    words_per_row: u32,
    per_word: u32,
    row_mul: u32,
    block_div: u32,
    seg: u32,
    tiles_per_row: u32,
    total_tiles: u32,
    // Stochastic rounding draws with rng_key(seed, stream + StepState.stream_base).
    seed: u32,
    stochastic: u32,
    transposed: u32,
    n_groups: u32,
    // Kernel-specific: absmax's transposed entry keeps its chunk length and count here.
    aux0: u32,
    aux1: u32,
    stream: u32,
    // 1: the group maxima have a slot amax[n_groups] for the tensor's maximum (NVFP4).
    tensor_slot: u32,
    // 1: the one-pass quantizers read x[i] as 0 unless mask[i] > 0 (ReLU's backward: x = dY,
    // mask = Y), what relu_backward writes.
    masked: u32,
    // The one-pass quantizers: independent stochastic samples stacked in codes and scales (SMP;
    // 1 = the plain quantizer), see one_pass.wgsl.
    samples: u32,
    // The transposing quantizers: 0, or x is a stack of [cols, batch_rows] matrices, L their
    // transposes one under the other (attention's batched operands; see pack_t.wgsl).
    batch_rows: u32,
    // The transposing quantizers' threads of four adjacent rows of L (rows_t.wgsl's row_quads and
    // block_quads): how many such quads one thread takes (at least 1).
    quads: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

const WG: u32 = 256u;

fn group_of(p: QuantParams, row: u32, col: u32) -> u32 {
    return row * p.row_mul + col / p.block_div;
}

fn flat_workgroup(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

// A thread of the transposing quantizers' tiles (QuantParams::with_row_tiles): p.seg consecutive
// rows of L times WG / p.seg consecutive pieces (words, or columns), rows fastest, p.tiles_per_row
// row tiles. Returns (row, piece), or rows = p.rows for a thread past the tiles or the rows.
fn row_tile_thread(p: QuantParams, wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec2<u32> {
    return row_tile_thread_at(p, flat_workgroup(wg, nwg), lid);
}

// row_tile_thread for tile `tile` (a launch whose workgroups are not all tiles).
fn row_tile_thread_at(p: QuantParams, tile: u32, lid: u32) -> vec2<u32> {
    let row = (tile % p.tiles_per_row) * p.seg + lid % p.seg;
    if (tile >= p.total_tiles || row >= p.rows) {
        return vec2<u32>(p.rows, 0u);
    }
    return vec2<u32>(row, (tile / p.tiles_per_row) * (WG / p.seg) + lid / p.seg);
}

// Workgroup w of a launch of `total` whose `few` long workgroups (0 ≤ few ≤ total, w < total) are
// spread evenly among the short ones rather than put first: llvmpipe hands each of its threads one
// contiguous run of a launch's workgroups, so long ones side by side would all run on one core.
// The long ones sit at multiples of gap = total / few below few·gap; returns (1, i) for long one i,
// (0, i) for short one i (w less the long ones before it). Short ones 0 .. total − few − 1 and long
// ones 0 .. few − 1 each appear once.
fn spread_workgroup(w: u32, few: u32, total: u32) -> vec2<u32> {
    if (few == 0u) {
        return vec2<u32>(0u, w);
    }
    let gap = total / few;
    let i = w / gap;
    if (w % gap == 0u && i < few) {
        return vec2<u32>(1u, i);
    }
    return vec2<u32>(0u, w - min(i + 1u, few));
}
