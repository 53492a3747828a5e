// The tiled loops shared by the GEMMs whose operands become f32 on load (gemm_f32, gemm_fp8,
// gemm_levels): `main` (16x16 threads, TPT x TPT outputs each: 64x64 or 32x32 tiles, K in steps
// of TK through workgroup memory) and `main_wide` (128x128 tiles, below). The including kernel
// declares `p: GemmParams`, `c`, `bias`, `amax` and
//   fn load_a(row: u32, k: u32) -> f32   // op(A)[row][k], 0 outside [0, M) x [.., k_end)
//   fn load_b(col: u32, k: u32) -> f32   // op(B)[col][k], 0 outside [0, N) x [.., k_end)
//   const WORD_LOADS: bool               // a stored [rows, K] operand loaded four at a time
//   fn load_a4(row: u32, k: u32) -> vec4<f32>   // op(A)[row][k .. k + 4] (k % 4 = 0), as load_a
//   fn load_b4(col: u32, k: u32) -> vec4<f32>   // op(B)[col][k .. k + 4], as load_b
// (the last three as four element loads where the kernel loads element by element: gemm_f32)
// honouring p.trans_a / p.trans_b where the kernel supports them (the loads coalesce along the
// contiguous index accordingly).
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED), so every index is in range
// by construction: `main` stores As/Bs[kk * TM + mm] with kk < TK and mm < TM = 16 * TPT (idx <
// 256 * TPT; word loads: kk = word_k + j < 16, mm = word_row < 16 * TPT for lid < 64 * TPT),
// < TK * TM = 256 * TPT <= 1024 for the launcher's TPT of 2 or 4, and reads
// [kk * TM + tx * TPT + j] with tx < 16, j < TPT; acc[i * 4 + j] and bv[j] have i, j < TPT <= 4.
// `main_wide` reads Aw/Bw[buf * 256 + kk * 32 + 16 + t] <= 511 (buf < 2, kk < WK = 8, t < 16) and
// stores at (buf * 1024 + k * 128 + row) / 4 with k < 8, row < 128 (wide_pos's either way:
// k = 4·(lid % 2) + r < 8, row = lid / 2 < 128 for word loads); its accumulators take
// constant indices. The loads are the including kernel's, guarded there; loops run to uniform
// bounds in constant steps. With batches, C is written at c_off + row·N + col < batches·M·N, the
// length the launcher checked.

override TPT: u32 = 4u;
const TK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]
var<workgroup> wg_amax: atomic<u32>;
// End of this workgroup's K range (split-K).
var<private> k_end: u32;

// Which of the four elements from k a word load returns lie before k_end (the others are 0).
fn word_inside(k: u32) -> vec4<bool> {
    return vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(k_end);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let TM = 16u * TPT;
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    let tile = st.tile;
    let valid_tile = st.valid;
    k_end = st.k_hi;
    let m0 = (tile / p.tiles_n) * TM;
    let n0 = (tile % p.tiles_n) * TM;
    let tx = lid % 16u;
    let ty = lid / 16u;
    if (lid == 0u) {
        atomicStore(&wg_amax, 0u);
    }
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    // Word loads (WORD_LOADS, an operand stored [rows, K]): the step's TM x TK elements are
    // TM * TK / 4 = 64 * TPT words, thread lid < 64 * TPT taking row lid / 4, K 4·(lid % 4)
    // .. + 3 (k0 is a multiple of 4: split_plan's pieces are multiples of 64); each element
    // lands where its own load would put it.
    let words_a = WORD_LOADS && p.trans_a == 0u;
    let words_b = WORD_LOADS && p.trans_b == 0u;
    let word_row = lid / 4u;
    let word_k = 4u * (lid % 4u);
    for (var k0 = st.k_lo; k0 < st.k_hi; k0 += TK) {
        if (words_a && lid < 64u * TPT) {
            let v = load_a4(m0 + word_row, k0 + word_k);
            for (var j = 0u; j < 4u; j++) {
                As[(word_k + j) * TM + word_row] = v[j];
            }
        }
        if (words_b && lid < 64u * TPT) {
            let v = load_b4(n0 + word_row, k0 + word_k);
            for (var j = 0u; j < 4u; j++) {
                Bs[(word_k + j) * TM + word_row] = v[j];
            }
        }
        // TILE * TK / 256 = TPT loads per thread and operand.
        for (var r = 0u; r < TPT; r++) {
            let idx = lid + r * 256u;
            // Coalesce along whichever index is contiguous in memory.
            var kk = idx % TK;
            var mm = idx / TK;
            if (p.trans_a == 1u) {
                kk = idx / TM;
                mm = idx % TM;
            }
            if (!words_a) {
                As[kk * TM + mm] = load_a(m0 + mm, k0 + kk);
            }
            var kb = idx % TK;
            var nn = idx / TK;
            if (p.trans_b == 1u) {
                kb = idx / TM;
                nn = idx % TM;
            }
            if (!words_b) {
                Bs[kb * TM + nn] = load_b(n0 + nn, k0 + kb);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var bv: array<f32, 4>;
            for (var j = 0u; j < TPT; j++) {
                bv[j] = Bs[kk * TM + tx * TPT + j];
            }
            for (var i = 0u; i < TPT; i++) {
                let av = As[kk * TM + ty * TPT + i];
                for (var j = 0u; j < TPT; j++) {
                    acc[i * 4u + j] += av * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    var local_amax = 0u;
    if (valid_tile) {
        for (var i = 0u; i < TPT; i++) {
            let row = m0 + ty * TPT + i;
            for (var j = 0u; j < TPT; j++) {
                let col = n0 + tx * TPT + j;
                if (row < p.m && col < p.n && p.splits > 1u) {
                    c[st.base + row * p.n + col] = acc[i * 4u + j];
                } else if (row < p.m && col < p.n) {
                    var bn = 0.0;
                    if ((p.flags & FLAG_BIAS) != 0u) {
                        bn = bias[col];
                    }
                    let v = epilogue_value(p, acc[i * 4u + j], c[c_off + row * p.n + col], bn);
                    c[c_off + row * p.n + col] = v;
                    local_amax = max(local_amax, amax_bits(v));
                }
            }
        }
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&wg_amax, local_amax);
        workgroupBarrier();
        if (lid == 0u && valid_tile) {
            atomicMax(&amax[0], atomicLoad(&wg_amax));
        }
    }
}

// Wide tile: 128x128 outputs per workgroup, 8x8 per thread kept in 16 vec4 registers. Thread
// (tx, ty) owns rows {4ty..4ty+3} and {64+4ty..64+4ty+3} and the same columns with tx, so each
// K step reads its operands as four vec4s of workgroup memory, two of them shared with the
// other threads of its row or column, without bank conflicts. K runs in steps of WK = 8 through
// two workgroup buffers: while a step is multiplied out of one, the next step's elements are
// already loaded into registers and are then stored into the other (one barrier per step).
const WK: u32 = 8u;
var<workgroup> Aw: array<vec4<f32>, 512>; // [2][WK][128 / 4]
var<workgroup> Bw: array<vec4<f32>, 512>;

// (k, row) within a step of this thread's element r (0..3) of an operand, coalesced along the
// contiguous index: K for a stored [rows, K] operand, rows for a transposed one. Where the
// kernel sets WORD_LOADS (gemm_fp8: four codes a word and one scale for them; gemm_levels:
// four codes in one word or two, one scale), a stored [rows, K] operand's four elements are
// one load_a4 / load_b4: row lid / 2, K 4·(lid % 2) + r of the step (k0 is a multiple of WK:
// split_plan's pieces are multiples of 64), where four element loads took a word and a scale
// each. Each element lands where it would from its own load, so the sums are the same.
fn wide_pos(lid: u32, r: u32, trans: u32) -> vec2<u32> {
    let idx = lid + r * 256u;
    if (trans == 1u) {
        return vec2<u32>(idx / 128u, idx % 128u);
    }
    if (WORD_LOADS) {
        return vec2<u32>(4u * (lid % 2u) + r, lid / 2u);
    }
    return vec2<u32>(idx % WK, idx / WK);
}

fn fetch_wide_a(lid: u32, r: u32, m0: u32, k0: u32) -> f32 {
    let q = wide_pos(lid, r, p.trans_a);
    return load_a(m0 + q.y, k0 + q.x);
}

fn fetch_wide_b(lid: u32, r: u32, n0: u32, k0: u32) -> f32 {
    let q = wide_pos(lid, r, p.trans_b);
    return load_b(n0 + q.y, k0 + q.x);
}

// This thread's four elements of A's step from k0 (wide_pos's r = 0..3).
fn fetch_wide_a4(lid: u32, m0: u32, k0: u32) -> vec4<f32> {
    if (WORD_LOADS && p.trans_a == 0u) {
        let q = wide_pos(lid, 0u, 0u);
        return load_a4(m0 + q.y, k0 + q.x);
    }
    return vec4<f32>(fetch_wide_a(lid, 0u, m0, k0), fetch_wide_a(lid, 1u, m0, k0), fetch_wide_a(lid, 2u, m0, k0),
                     fetch_wide_a(lid, 3u, m0, k0));
}

fn fetch_wide_b4(lid: u32, n0: u32, k0: u32) -> vec4<f32> {
    if (WORD_LOADS && p.trans_b == 0u) {
        let q = wide_pos(lid, 0u, 0u);
        return load_b4(n0 + q.y, k0 + q.x);
    }
    return vec4<f32>(fetch_wide_b(lid, 0u, n0, k0), fetch_wide_b(lid, 1u, n0, k0), fetch_wide_b(lid, 2u, n0, k0),
                     fetch_wide_b(lid, 3u, n0, k0));
}

fn put_wide(buf: u32, lid: u32, va: vec4<f32>, vb: vec4<f32>) {
    for (var r = 0u; r < 4u; r++) {
        let qa = wide_pos(lid, r, p.trans_a);
        let fa = buf * 1024u + qa.x * 128u + qa.y;
        Aw[fa / 4u][fa % 4u] = va[r];
        let qb = wide_pos(lid, r, p.trans_b);
        let fb = buf * 1024u + qb.x * 128u + qb.y;
        Bw[fb / 4u][fb % 4u] = vb[r];
    }
}

fn store_wide(acc: vec4<f32>, row: u32, col0: u32, st: SplitTile, amax_in: u32) -> u32 {
    var local_amax = amax_in;
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + j;
        if (row < p.m && col < p.n && p.splits > 1u) {
            c[st.base + row * p.n + col] = acc[j];
        } else if (row < p.m && col < p.n) {
            var bn = 0.0;
            if ((p.flags & FLAG_BIAS) != 0u) {
                bn = bias[col];
            }
            let v = epilogue_value(p, acc[j], c[c_off + row * p.n + col], bn);
            c[c_off + row * p.n + col] = v;
            local_amax = max(local_amax, amax_bits(v));
        }
    }
    return local_amax;
}

@compute @workgroup_size(256)
fn main_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    k_end = st.k_hi;
    let m0 = (st.tile / p.tiles_n) * 128u;
    let n0 = (st.tile % p.tiles_n) * 128u;
    let tx = lid % 16u;
    let ty = lid / 16u;
    if (lid == 0u) {
        atomicStore(&wg_amax, 0u);
    }
    // Indexed by constants only (a dynamic index could push the accumulators out of registers).
    var acc: array<vec4<f32>, 16>;
    var ra = fetch_wide_a4(lid, m0, st.k_lo);
    var rb = fetch_wide_b4(lid, n0, st.k_lo);
    put_wide(0u, lid, ra, rb);
    workgroupBarrier();
    var buf = 0u;
    for (var k0 = st.k_lo; k0 < st.k_hi; k0 += WK) {
        let next = k0 + WK;
        let more = next < st.k_hi;
        if (more) {
            ra = fetch_wide_a4(lid, m0, next);
            rb = fetch_wide_b4(lid, n0, next);
        }
        let base = buf * 256u;
        for (var kk = 0u; kk < WK; kk++) {
            let a0 = Aw[base + kk * 32u + ty];
            let a1 = Aw[base + kk * 32u + 16u + ty];
            let b0 = Bw[base + kk * 32u + tx];
            let b1 = Bw[base + kk * 32u + 16u + tx];
            acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
            acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
            acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
            acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
            acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
            acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
            acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
            acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
            acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
            acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
            acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
            acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
            acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
            acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
            acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
            acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
        }
        if (more) {
            put_wide(buf ^ 1u, lid, ra, rb);
        }
        workgroupBarrier();
        buf ^= 1u;
    }
    var local_amax = 0u;
    if (st.valid) {
        local_amax = store_wide(acc[0], m0 + 0u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[1], m0 + 0u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[2], m0 + 1u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[3], m0 + 1u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[4], m0 + 2u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[5], m0 + 2u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[6], m0 + 3u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[7], m0 + 3u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[8], m0 + 64u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[9], m0 + 64u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[10], m0 + 65u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[11], m0 + 65u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[12], m0 + 66u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[13], m0 + 66u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[14], m0 + 67u + ty * 4u, n0 + tx * 4u, st, local_amax);
        local_amax = store_wide(acc[15], m0 + 67u + ty * 4u, n0 + 64u + tx * 4u, st, local_amax);
    }
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&wg_amax, local_amax);
        workgroupBarrier();
        if (lid == 0u && st.valid) {
            atomicMax(&amax[0], atomicLoad(&wg_amax));
        }
    }
}
