// gemm_f32_lanes: f32 GEMM for CPU adapters whose subgroup is one 8-wide SIMD vector (lavapipe),
// C = epilogue(op(A)·op(B)ᵀ) as gemm_f32 computes it (NT, NN, TN and TT through TRANS_A/TRANS_B).
// Why a kernel of its own: llvmpipe runs a workgroup's invocations as SIMD lanes and loads every
// buffer, workgroup or dynamically indexed private element lane by lane (a bounds check and a
// branch per lane), so gemm_f32's tiles, which read workgroup memory in their inner loop, spend
// their time loading. Here a workgroup is one subgroup of 8 lanes, nothing goes through
// workgroup memory, every load is a vec4, and the values all lanes need travel by
// subgroupBroadcast (a register shuffle) instead of being loaded by each lane.
// Tile: 16 rows x 32 columns per workgroup; K in steps of 4. Per step lane j loads two vec4 of A
// (16 rows x 4 k between the 8 lanes) and four vec4 of B (its 4 columns x 4 k); A's values are
// broadcast and each lane updates its 16 x 4 outputs, kept as four mat4x4 (column i of acc_q:
// row 4q + i, component c: this lane's column c), with 256 multiplies and adds.
// Lane j's columns: n0 + 8c + j when B is stored [N, K] (its vec4 runs along K), n0 + 4j + c when
// stored [K, N] (its vec4 is four adjacent columns). A stored [M, K]: lane j loads rows m0 + j and
// m0 + 8 + j; stored [K, M]: k + j % 4 of the row quads (m0 / 4 + j / 4) and (m0 / 4 + 2 + j / 4).
// `main` loads its vec4s directly where each stays within one row of its operand: K, and M (A
// stored [K, M]) or N (B stored [K, N]), multiples of 4 (gemm_f32_lanes.rs, `vectorized`);
// `main_scalar`, for every other shape, assembles the same vec4s from scalar loads, zero past K.
// Rows and columns past M and N read clamped in-range rows and are not stored. With FLAG_SWAP
// the launch computes Cᵀ of a product narrower than the tile (its A and B are C's B and A), its
// stores transposed by common/lanes.wgsl. With
// p.batches > 1, the products of a batch follow each other as in gemm_f32. Split along K as
// gemm_f32's tiles split (common/gemm.wgsl's split_tile; one product, no epilogue): split s adds
// K elements [s·k_split, (s + 1)·k_split) and stores its partial sums at c[s·M·N..] in C's layout
// (Cᵀ's launch too), which the launcher's col_sum adds in split order.
// The outer-product arithmetic (Acc, quad_step, mac_quads) and the stores (lanes_finish, through
// this file's column) are common/lanes.wgsl's, shared with gemm_int_lanes and gemm_fp8_lanes.
// Bindings: 0 params, 1 a (read), 2 b (read), 3 bias (read), 4 c (read-write), 5 amax (atomic),
// as gemm_f32's. Reference: src/reference/gemm_f32_lanes.rs (gemm_f32's, f64 accumulation).

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read_write> amax: array<atomic<u32>>;

// A's two vec4 of lane `lane` at K step k (a multiple of 4), as the header says.
fn load_a(m0: u32, k: u32, lane: u32, half: u32) -> vec4<f32> {
    if (TRANS_A) {
        let quads = p.m / 4u;
        let quad = min(m0 / 4u + 2u * half + lane / 4u, quads - 1u);
        return a[(a_off / 4u) + (k + lane % 4u) * quads + quad];
    }
    let row = min(m0 + 8u * half + lane, p.m - 1u);
    return a[(a_off + row * p.k + k) / 4u];
}

fn rows(v: vec4<f32>, quad: u32) -> mat4x4<f32> {
    // Stored [K, M]: lane 4·quad + kk holds rows 4q..4q+3 at k + kk, so the broadcasts are the
    // transpose of what the matrix wants.
    if (TRANS_A) {
        return transpose(rows_nt(v, quad));
    }
    return rows_nt(v, quad);
}

// This lane's four columns at K steps k..k+3: column kk of the result holds the four columns'
// values at k + kk.
fn load_b(n0: u32, k: u32, lane: u32) -> mat4x4<f32> {
    if (TRANS_B) {
        let quads = p.n / 4u;
        let quad = min(n0 / 4u + lane, quads - 1u);
        let base = b_off / 4u + k * quads + quad;
        return mat4x4<f32>(b[base], b[base + quads], b[base + 2u * quads], b[base + 3u * quads]);
    }
    let last = p.n - 1u;
    let c0 = b[(b_off + min(n0 + lane, last) * p.k + k) / 4u];
    let c1 = b[(b_off + min(n0 + 8u + lane, last) * p.k + k) / 4u];
    let c2 = b[(b_off + min(n0 + 16u + lane, last) * p.k + k) / 4u];
    let c3 = b[(b_off + min(n0 + 24u + lane, last) * p.k + k) / 4u];
    return transpose(mat4x4<f32>(c0, c1, c2, c3));
}

fn column(n0: u32, lane: u32, cc: u32) -> u32 {
    if (TRANS_B) {
        return n0 + 4u * lane + cc;
    }
    return n0 + 8u * cc + lane;
}

// One K step: bt from load_b, lo / hi from load_a's halves 0 and 1.
fn mac(acc: Acc, bt: mat4x4<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Acc {
    return mac_quads(acc, bt, rows(lo, 0u), rows(lo, 1u), rows(hi, 0u), rows(hi, 1u));
}

// This workgroup's split of K: elements k_lo .. k_hi (all of K unless split; k_split is a multiple
// of 64, so every split but the last ends on a whole K step).
var<private> k_lo: u32;
var<private> k_hi: u32;

// This workgroup's first row and column of C, and whether it has a tile (sets a_off, b_off, c_off,
// and k_lo, k_hi; with splits c_off is the split's partial sums).
fn origin(wg: vec3<u32>, nwg: vec3<u32>) -> vec3<u32> {
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    k_lo = st.k_lo;
    k_hi = st.k_hi;
    if (p.splits > 1u) {
        c_off = st.base;
    }
    return vec3<u32>((st.tile / p.tiles_n) * 16u, (st.tile % p.tiles_n) * 32u, u32(st.valid));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let o = origin(wg, nwg);
    if (o.z == 0u) {
        return;
    }
    var acc: Acc;
    for (var k = k_lo; k < k_hi; k += 4u) {
        acc = mac(acc, load_b(o.y, k, lane), load_a(o.x, k, lane, 0u), load_a(o.x, k, lane, 1u));
    }
    lanes_finish(acc, o.x, o.y, lane);
}

// Any shape: the same vec4s assembled from scalar loads, zero past K, and for a stored [K, M] A
// (or [K, N] B) past M (N), so no vec4 needs to stay within a row. For what `main` refuses.
@group(0) @binding(1) var<storage, read> a1: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;

// op(A)[row][k], op(B)[col][k]: 0 for k >= K; row and col are in range (clamped by the caller).
fn a_at(row: u32, k: u32) -> f32 {
    if (k >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a1[a_off + k * p.m + row];
    }
    return a1[a_off + row * p.k + k];
}

fn b_at(col: u32, k: u32) -> f32 {
    if (k >= p.k) {
        return 0.0;
    }
    if (TRANS_B) {
        return b1[b_off + k * p.n + col];
    }
    return b1[b_off + col * p.k + k];
}

// load_a's vec4 (rows clamped to M - 1 as there; past M with A stored [K, M] too).
fn load_a1(m0: u32, k: u32, lane: u32, half: u32) -> vec4<f32> {
    if (TRANS_A) {
        let row = m0 + 8u * half + 4u * (lane / 4u);
        let kk = k + lane % 4u;
        let last = p.m - 1u;
        return vec4<f32>(a_at(min(row, last), kk), a_at(min(row + 1u, last), kk), a_at(min(row + 2u, last), kk),
                         a_at(min(row + 3u, last), kk));
    }
    let row = min(m0 + 8u * half + lane, p.m - 1u);
    return vec4<f32>(a_at(row, k), a_at(row, k + 1u), a_at(row, k + 2u), a_at(row, k + 3u));
}

fn b_col4(col: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(b_at(col, k), b_at(col, k + 1u), b_at(col, k + 2u), b_at(col, k + 3u));
}

// load_b's matrix.
fn load_b1(n0: u32, k: u32, lane: u32) -> mat4x4<f32> {
    let last = p.n - 1u;
    var c0: vec4<f32>;
    var c1: vec4<f32>;
    var c2: vec4<f32>;
    var c3: vec4<f32>;
    if (TRANS_B) {
        let col = n0 + 4u * lane;
        c0 = b_col4(min(col, last), k);
        c1 = b_col4(min(col + 1u, last), k);
        c2 = b_col4(min(col + 2u, last), k);
        c3 = b_col4(min(col + 3u, last), k);
    } else {
        c0 = b_col4(min(n0 + lane, last), k);
        c1 = b_col4(min(n0 + 8u + lane, last), k);
        c2 = b_col4(min(n0 + 16u + lane, last), k);
        c3 = b_col4(min(n0 + 24u + lane, last), k);
    }
    return transpose(mat4x4<f32>(c0, c1, c2, c3));
}

@compute @workgroup_size(8)
fn main_scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let o = origin(wg, nwg);
    if (o.z == 0u) {
        return;
    }
    var acc: Acc;
    for (var k = k_lo; k < k_hi; k += 4u) {
        acc = mac(acc, load_b1(o.y, k, lane), load_a1(o.x, k, lane, 0u), load_a1(o.x, k, lane, 1u));
    }
    lanes_finish(acc, o.x, o.y, lane);
}
