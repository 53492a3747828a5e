// hadamard: block Walsh-Hadamard rotation, out = x · H_B (normalized, orthogonal: H Hᵀ = I), on
// blocks of B consecutive elements along one axis of a [rows, cols] tensor. Rotating both GEMM
// operands along the contracted dimension leaves the product unchanged, (A H)(B H)ᵀ = A Bᵀ,
// while spreading outliers across the block before quantization (Chen et al.'s BHQ idea with a
// Hadamard in place of the Householder reflection), so the rotation is undone exactly by the GEMM.
// With a nonzero `signs` key it is a random Hadamard transform, out = x · D · H_B: element i of
// every block is first negated when bit 0 of rng_draw(signs, i) is set (D a fixed ±1 diagonal,
// the same for every block and both GEMM operands, so D·Dᵀ = I keeps the product unchanged).
// Butterflies: for h = 1, 2, .., B/2: (u, v) at (i, i + h) -> (u + v, u - v); then times 1/sqrt(B).
// Layout: 256 threads, 256/B vectors per workgroup, one element per thread in workgroup memory.
// axis 0: blocks along rows' last dimension (element i of vector v at row*cols + blk*B + i);
// axis 1: blocks down the columns (at (blk*B + i)*cols + col).
// With flag MASKED, x[i] is read as 0 unless mask[i] > 0 (ReLU's backward inside the rotation:
// the bits of rotating what relu_backward writes, before the signs, as it would be), so a
// block-scaled gradient needs no relu_backward launch; unmasked, the launcher binds x as the mask.
// With flag NO_OUT (the `_amax` entries) only the maxima are written, not `out` (the launcher binds
// amax there): NVFP4's tensor maximum of a rotation that hadamard_quantize_transpose applies itself.
// With flag SUMS (entry `main_thread16_amax`, below) it also writes x's column sums (as read,
// masked; unrotated) in col_sum's first level's chunks of rows: a layer's bias gradient from the
// launch that rotates its gradient.
// Reference: src/reference/hadamard.rs. Bindings: 0 params, 1 x (read), 2 out (read-write),
// 3 mask (read), 4 amax and 5 amax_in (the `_amax` entries only, below), 6 sums (`main_thread16_amax`).

struct HadamardParams {
    rows: u32,
    cols: u32,
    block: u32,
    axis: u32,
    n_vectors: u32,
    scale: f32,
    signs: u32,
    flags: u32,
    // With SUMS: col_sum's rows per chunk.
    chunk_rows: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Bits of HadamardParams.flags.
const MASKED: u32 = 1u;
const INPUT_MAX: u32 = 2u;
// The maxima alone: `out` is not written (bound to amax; hadamard_quantize_transpose rotates again).
const NO_OUT: u32 = 4u;
// x's column sums too (sums, binding 6; main_thread16_amax only).
const SUMS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: HadamardParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;

var<workgroup> sh: array<f32, 256>;

fn addr(v: u32, i: u32) -> u32 {
    if (p.axis == 0u) {
        let bpr = p.cols / p.block;
        return (v / bpr) * p.cols + (v % bpr) * p.block + i;
    }
    return ((v / p.cols) * p.block + i) * p.cols + v % p.cols;
}

// Entry `main_amax` also writes amax[0] = max(amax[0], the largest finite, normal |out|) as f32
// bits (binding 4, cleared before the launch): the tensor maximum that NVFP4's block scales need,
// so the rotated operand's quantizer needs no absmax launch; with flag INPUT_MAX also
// amax_in[0] = the same of x as read (masked; binding 5, cleared before), the maximum of the
// unrotated operand, which another product quantizes. One workgroup atomic, then one storage
// atomic per workgroup; a max does not depend on order.
@group(0) @binding(4) var<storage, read_write> amax: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> amax_in: array<atomic<u32>>;

var<workgroup> wmax: atomic<u32>;
var<workgroup> wmax_in: atomic<u32>;
// The amax_bits of what this thread read (rotate: its element; rotate16x4: its 64 values).
var<private> in_max: u32;

// Rotates this thread's element of vector v (lane i): writes it to `out` when valid and returns
// the value written (0 otherwise). Called in uniform control flow (it has barriers).
fn rotate(v: u32, i: u32, valid: bool, lid: u32) -> f32 {
    var val = 0.0;
    if (valid) {
        let a = addr(v, i);
        val = x[a];
        if ((p.flags & MASKED) != 0u) {
            val = select(0.0, val, mask[a] > 0.0);
        }
        in_max = amax_bits(val);
        if (p.signs != 0u && (rng_draw(p.signs, i) & 1u) == 1u) {
            val = -val;
        }
    }
    sh[lid] = val;
    workgroupBarrier();
    for (var h = 1u; h < p.block; h = h * 2u) {
        let other = sh[lid ^ h];
        let mine = sh[lid];
        workgroupBarrier();
        if ((i & h) == 0u) {
            sh[lid] = mine + other;
        } else {
            sh[lid] = other - mine;
        }
        workgroupBarrier();
    }
    let y = sh[lid] * p.scale;
    if (valid) {
        if ((p.flags & NO_OUT) == 0u) {
            out[addr(v, i)] = y;
        }
        return y;
    }
    return 0.0;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let per_wg = 256u / p.block;
    let v = (wg.x + wg.y * nwg.x) * per_wg + lid / p.block;
    let i = lid % p.block;
    rotate(v, i, v < p.n_vectors && lid < per_wg * p.block, lid);
}

@compute @workgroup_size(256)
fn main_amax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let per_wg = 256u / p.block;
    let v = (wg.x + wg.y * nwg.x) * per_wg + lid / p.block;
    let i = lid % p.block;
    if (lid == 0u) {
        atomicStore(&wmax, 0u);
        atomicStore(&wmax_in, 0u);
    }
    // rotate's first barrier orders the stores before every thread's atomicMax.
    let y = rotate(v, i, v < p.n_vectors && lid < per_wg * p.block, lid);
    atomicMax(&wmax, amax_bits(y));
    if ((p.flags & INPUT_MAX) != 0u) {
        atomicMax(&wmax_in, in_max);
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&amax[0], atomicLoad(&wmax));
        if ((p.flags & INPUT_MAX) != 0u) {
            atomicMax(&amax_in[0], atomicLoad(&wmax_in));
        }
    }
}

// CPU adapters (lavapipe), B = 16 along axis 1 (blocks down the columns, what training rotates:
// the weight-gradient operands along the batch), columns a multiple of 4: entries `main_thread16`
// and `main_thread16_amax`, one thread per block of 16 rows × 4 adjacent columns, x and out read
// and written as vec4s (bindings 1, 2 and 3 as x4, out4 and mask4), the butterflies in registers
// (common/hadamard16.wgsl), no
// workgroup memory or barriers (on lavapipe each barrier suspends every 8-lane piece of the
// workgroup in turn, and the tree above takes nine per vector). The same operations in the same
// order as `rotate`, so the same bits; the `_amax` entry folds its maximum with one storage atomic
// per thread, and with SUMS its threads past the blocks each sum four adjacent columns of x over
// one of col_sum's chunks of rows (common/chunk_sums.wgsl, as hadamard_quantize_transpose's do):
// partial sums [chunks, cols] that col_sum's `finish` adds in order (one chunk: the sums), the
// bits of col_sum of x as read.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> mask4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> sums: array<f32>;

// Values 4i .. 4i + 3 of x, masked as the rotation reads them (chunk_pass4's loads).
fn load_x4(i: u32) -> vec4<f32> {
    if ((p.flags & MASKED) != 0u) {
        return select(vec4<f32>(0.0), x4[i], mask4[i] > vec4<f32>(0.0));
    }
    return x4[i];
}

// Row r, columns 4·c4 .. 4·c4 + 3 (q = cols / 4), negated where element i of a block is.
fn load_signed4(r: u32, q: u32, c4: u32, i: u32) -> vec4<f32> {
    var v = x4[r * q + c4];
    if ((p.flags & MASKED) != 0u) {
        v = select(vec4<f32>(0.0), v, mask4[r * q + c4] > vec4<f32>(0.0));
    }
    in_max = max(in_max, max(max(amax_bits(v.x), amax_bits(v.y)), max(amax_bits(v.z), amax_bits(v.w))));
    if (p.signs != 0u && (rng_draw(p.signs, i) & 1u) == 1u) {
        return -v;
    }
    return v;
}

// Writes y times the scale at row r; returns the largest amax_bits of the four.
fn store4(r: u32, q: u32, c4: u32, y: vec4<f32>) -> u32 {
    let o = y * p.scale;
    if ((p.flags & NO_OUT) == 0u) {
        out4[r * q + c4] = o;
    }
    return max(max(amax_bits(o.x), amax_bits(o.y)), max(amax_bits(o.z), amax_bits(o.w)));
}

// Thread t's block (rows 16·(t / q) .., columns 4·(t % q) ..): rotates it and returns its maximum.
fn rotate16x4(t: u32) -> u32 {
    let q = p.cols / 4u;
    let c4 = t % q;
    let r0 = (t / q) * 16u;
    let a = butterflies16(array<vec4<f32>, 16>(
        load_signed4(r0 + 0u, q, c4, 0u), load_signed4(r0 + 1u, q, c4, 1u), load_signed4(r0 + 2u, q, c4, 2u),
        load_signed4(r0 + 3u, q, c4, 3u), load_signed4(r0 + 4u, q, c4, 4u), load_signed4(r0 + 5u, q, c4, 5u),
        load_signed4(r0 + 6u, q, c4, 6u), load_signed4(r0 + 7u, q, c4, 7u), load_signed4(r0 + 8u, q, c4, 8u),
        load_signed4(r0 + 9u, q, c4, 9u), load_signed4(r0 + 10u, q, c4, 10u), load_signed4(r0 + 11u, q, c4, 11u),
        load_signed4(r0 + 12u, q, c4, 12u), load_signed4(r0 + 13u, q, c4, 13u),
        load_signed4(r0 + 14u, q, c4, 14u), load_signed4(r0 + 15u, q, c4, 15u)));
    var m = 0u;
    m = max(m, store4(r0 + 0u, q, c4, a[0]));
    m = max(m, store4(r0 + 1u, q, c4, a[1]));
    m = max(m, store4(r0 + 2u, q, c4, a[2]));
    m = max(m, store4(r0 + 3u, q, c4, a[3]));
    m = max(m, store4(r0 + 4u, q, c4, a[4]));
    m = max(m, store4(r0 + 5u, q, c4, a[5]));
    m = max(m, store4(r0 + 6u, q, c4, a[6]));
    m = max(m, store4(r0 + 7u, q, c4, a[7]));
    m = max(m, store4(r0 + 8u, q, c4, a[8]));
    m = max(m, store4(r0 + 9u, q, c4, a[9]));
    m = max(m, store4(r0 + 10u, q, c4, a[10]));
    m = max(m, store4(r0 + 11u, q, c4, a[11]));
    m = max(m, store4(r0 + 12u, q, c4, a[12]));
    m = max(m, store4(r0 + 13u, q, c4, a[13]));
    m = max(m, store4(r0 + 14u, q, c4, a[14]));
    m = max(m, store4(r0 + 15u, q, c4, a[15]));
    return m;
}

@compute @workgroup_size(64)
fn main_thread16(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 64u + lid;
    if (t < p.n_vectors / 4u) {
        rotate16x4(t);
    }
}

@compute @workgroup_size(64)
fn main_thread16_amax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 64u + lid;
    let blocks = p.n_vectors / 4u;
    if (t < blocks) {
        atomicMax(&amax[0], rotate16x4(t));
        if ((p.flags & INPUT_MAX) != 0u) {
            atomicMax(&amax_in[0], in_max);
        }
        return;
    }
    // Sums: thread u takes columns 4·c4 .. 4·c4 + 3 over one chunk of rows.
    if ((p.flags & SUMS) == 0u) {
        return;
    }
    let u = t - blocks;
    let q = p.cols / 4u;
    let chunks = (p.rows + p.chunk_rows - 1u) / p.chunk_rows;
    if (u < q * chunks) {
        let c4 = u % q;
        let r0 = (u / q) * p.chunk_rows;
        let s = chunk_pass4(q, c4, r0, min(r0 + p.chunk_rows, p.rows)).total;
        for (var j = 0u; j < 4u; j++) {
            sums[(u / q) * p.cols + c4 * 4u + j] = s[j];
        }
    }
}
