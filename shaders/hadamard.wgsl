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
// Reference: src/reference/hadamard.rs. Bindings: 0 params, 1 x (read), 2 out (read-write),
// 3 amax (entry `main_amax` only, below).

struct HadamardParams {
    rows: u32,
    cols: u32,
    block: u32,
    axis: u32,
    n_vectors: u32,
    scale: f32,
    signs: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: HadamardParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> sh: array<f32, 256>;

fn addr(v: u32, i: u32) -> u32 {
    if (p.axis == 0u) {
        let bpr = p.cols / p.block;
        return (v / bpr) * p.cols + (v % bpr) * p.block + i;
    }
    return ((v / p.cols) * p.block + i) * p.cols + v % p.cols;
}

// Entry `main_amax` also writes amax[0] = max(amax[0], the largest finite, normal |out|) as f32
// bits (binding 3, cleared before the launch): the tensor maximum that NVFP4's block scales need,
// so the rotated operand's quantizer needs no absmax launch. One workgroup atomic, then one
// storage atomic per workgroup; a max does not depend on order.
@group(0) @binding(3) var<storage, read_write> amax: array<atomic<u32>>;

var<workgroup> wmax: atomic<u32>;

// Rotates this thread's element of vector v (lane i): writes it to `out` when valid and returns
// the value written (0 otherwise). Called in uniform control flow (it has barriers).
fn rotate(v: u32, i: u32, valid: bool, lid: u32) -> f32 {
    var val = 0.0;
    if (valid) {
        val = x[addr(v, i)];
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
        out[addr(v, i)] = y;
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
    }
    // rotate's first barrier orders the store before every thread's atomicMax.
    let y = rotate(v, i, v < p.n_vectors && lid < per_wg * p.block, lid);
    atomicMax(&wmax, amax_bits(y));
    workgroupBarrier();
    if (lid == 0u) {
        atomicMax(&amax[0], atomicLoad(&wmax));
    }
}
