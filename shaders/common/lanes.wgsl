// The arithmetic of the lanes GEMMs (gemm_f32_lanes, gemm_int_lanes): a workgroup is one
// subgroup of 8 lanes, each lane owns 16 rows x 4 columns of a 16 x 32 output tile, kept as four
// mat4x4 (column i of acc_q: row 4q + i, component c: this lane's column c), and a K step of 4
// multiplies the lane's four columns (bt: column kk holds the four columns at k + kk) with the
// tile's 16 rows, broadcast from the lanes that loaded them (see gemm_f32_lanes.wgsl's header).
// The stores use the including kernel's p (GemmParams), bias, c and amax bindings and its
// column(n0, lane, cc). With FLAG_SWAP the launch computes Cᵀ = B·Aᵀ of a product C = A·Bᵀ whose
// N is too narrow for the 32-column tile (p's m and n are C's n and m): output (row, col) is C's
// (col, row), stored there, its bias the row's. Every output's sum is the same either way (the
// same products, b·a for a·b, added in the same order), so the bits are too.

// Rows 4q..4q+3 of this K step as a matrix: column i holds row 4q + i's four k values, on
// every lane (q = 2 * half + quad; the lane indices of subgroupBroadcast must be constants).
fn rows_nt(v: vec4<f32>, quad: u32) -> mat4x4<f32> {
    if (quad == 0u) {
        return mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                           subgroupBroadcast(v, 3u));
    }
    return mat4x4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u),
                       subgroupBroadcast(v, 7u));
}

// The four row quads' outputs of this lane (acc_q, q = 0..3).
struct Acc {
    q0: mat4x4<f32>,
    q1: mat4x4<f32>,
    q2: mat4x4<f32>,
    q3: mat4x4<f32>,
}

// acc += the outer product of this lane's four columns `bv` and four rows `rv` at one k.
fn outer_add(acc: mat4x4<f32>, bv: vec4<f32>, rv: vec4<f32>) -> mat4x4<f32> {
    return acc + mat4x4<f32>(bv * rv.x, bv * rv.y, bv * rv.z, bv * rv.w);
}

// One row quad through one K step, k by k: every output gets acc + b·a at k, k + 1, k + 2, k + 3
// in turn, the order and roundings of gemm_f32's loops (llvmpipe fuses no multiply-add), so both
// kernels give the same bits there.
fn quad_step(acc: mat4x4<f32>, bt: mat4x4<f32>, rq: mat4x4<f32>) -> mat4x4<f32> {
    let at = transpose(rq);
    var m = outer_add(acc, bt[0], at[0]);
    m = outer_add(m, bt[1], at[1]);
    m = outer_add(m, bt[2], at[2]);
    return outer_add(m, bt[3], at[3]);
}

// One K step over the four row quads (each from rows_nt, or its transpose for an A stored [K, M]).
fn mac_quads(acc: Acc, bt: mat4x4<f32>, r0: mat4x4<f32>, r1: mat4x4<f32>, r2: mat4x4<f32>, r3: mat4x4<f32>) -> Acc {
    var r: Acc;
    r.q0 = quad_step(acc.q0, bt, r0);
    r.q1 = quad_step(acc.q1, bt, r1);
    r.q2 = quad_step(acc.q2, bt, r2);
    r.q3 = quad_step(acc.q3, bt, r3);
    return r;
}

// This lane's four columns' bias (0 without one; columns past N read the last column's and are
// not stored), loaded once per tile for its 16 rows.
fn lanes_bias(n0: u32, lane: u32) -> vec4<f32> {
    var bn = vec4<f32>();
    if ((p.flags & FLAG_BIAS) != 0u && (p.flags & FLAG_SWAP) == 0u) {
        for (var cc = 0u; cc < 4u; cc++) {
            bn[cc] = bias[min(column(n0, lane, cc), p.n - 1u)];
        }
    }
    return bn;
}

// Where output (row, col) of this launch goes in c: C's element (row, col), or with FLAG_SWAP
// (col, row).
fn lanes_at(row: u32, col: u32) -> u32 {
    if ((p.flags & FLAG_SWAP) != 0u) {
        return c_off + col * p.m + row;
    }
    return c_off + row * p.n + col;
}

// Stores row `row`'s four outputs of this lane, v[cc] at column column(n0, lane, cc) (a function
// each including kernel defines), through the epilogue with bias bn (lanes_bias; with FLAG_SWAP
// the row's bias instead); returns the running max |output| bits.
fn lanes_store_row(v: vec4<f32>, row: u32, n0: u32, lane: u32, amax_in: u32, bn: vec4<f32>) -> u32 {
    var local_amax = amax_in;
    if (row >= p.m) {
        return local_amax;
    }
    let swap = (p.flags & FLAG_SWAP) != 0u;
    var b_row = 0.0;
    if (swap && (p.flags & FLAG_BIAS) != 0u) {
        b_row = bias[row];
    }
    for (var cc = 0u; cc < 4u; cc++) {
        let col = column(n0, lane, cc);
        if (col < p.n) {
            let at = lanes_at(row, col);
            var old = 0.0;
            if ((p.flags & FLAG_ACCUMULATE) != 0u) {
                old = c[at];
            }
            let out = epilogue_value(p, v[cc], old, select(bn[cc], b_row, swap));
            c[at] = out;
            local_amax = max(local_amax, amax_bits(out));
        }
    }
    return local_amax;
}

// Stores the tile's 16 rows of this lane and records their maximum.
fn lanes_finish(acc: Acc, m0: u32, n0: u32, lane: u32) {
    // One loop over the 16 rows rather than 16 copies of the stores: llvmpipe stores lane by
    // lane, and unrolled stores multiplied the shader's compile time.
    var out = array<vec4<f32>, 16>(acc.q0[0], acc.q0[1], acc.q0[2], acc.q0[3], acc.q1[0], acc.q1[1], acc.q1[2],
                                   acc.q1[3], acc.q2[0], acc.q2[1], acc.q2[2], acc.q2[3], acc.q3[0], acc.q3[1],
                                   acc.q3[2], acc.q3[3]);
    let bn = lanes_bias(n0, lane);
    var m = 0u;
    for (var i = 0u; i < 16u; i++) {
        m = lanes_store_row(out[i], m0 + i, n0, lane, m, bn);
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&amax[0], m);
    }
}
