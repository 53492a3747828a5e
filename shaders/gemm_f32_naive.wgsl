// gemm_f32_naive: one thread per output element, no tiling. The algorithmic reference kept beside
// the tiled kernel (STYLE: keep the naive kernel), and the "naive" rung of the benchmark ladder.
// Reference: src/reference/gemm_f32_naive.rs. Bindings as gemm_f32: 0 params, 1 a, 2 b, 3 bias,
// 4 c (read-write), 5 amax (read-write atomic u32).
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED): a thread returns unless
// row < M and col < N, and reads k < K only, within the buffers the launcher checked.

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read_write> amax: array<atomic<u32>>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile = wg.x + wg.y * nwg.x;
    let tm = tile / p.tiles_n;
    let tn = tile % p.tiles_n;
    let row = tm * 16u + lid.y;
    let col = tn * 16u + lid.x;
    if (tile >= p.total_tiles || row >= p.m || col >= p.n) {
        return;
    }
    var acc = 0.0;
    for (var k = 0u; k < p.k; k++) {
        var av = a[row * p.k + k];
        if (p.trans_a == 1u) {
            av = a[k * p.m + row];
        }
        var bv = b[col * p.k + k];
        if (p.trans_b == 1u) {
            bv = b[k * p.n + col];
        }
        acc += av * bv;
    }
    var bn = 0.0;
    if ((p.flags & FLAG_BIAS) != 0u) {
        bn = bias[col];
    }
    let v = epilogue_value(p, acc, c[row * p.n + col], bn);
    c[row * p.n + col] = v;
    if ((p.flags & FLAG_AMAX) != 0u) {
        atomicMax(&amax[0], amax_bits(v));
    }
}
