// gemm_f32: tiled, register-blocked f32 GEMM, C = epilogue(A·Bᵀ) (or with A/B transposed).
// TILE x TILE output tile per workgroup of 16x16 threads, TPT x TPT outputs per thread
// (main: TPT = 4: 64x64 tiles, TPT = 2: 32x32; main_wide: 128x128, below; chosen per adapter
// and shape by the launcher's tune),
// K in steps of 16 through workgroup memory. Tails in M, N and K are guarded (zero-filled).
// Reference: src/reference/gemm_f32.rs (f64 accumulation; compared within a stated bound).
// With p.batches > 1 it runs that many products of one shape on consecutive operands and
// outputs (a_off, b_off, c_off from split_tile).
// Bindings: 0 params, 1 a (read), 2 b (read), 3 bias (read), 4 c (read-write), 5 amax (atomic).
// The loops (main, main_wide) are shaders/common/gemm_tiled.wgsl over this file's load_a/load_b.
// Compiled without naga's runtime checks (lowbit::shaders::UNCHECKED): the tiled loops' indices
// are bounded in gemm_tiled.wgsl; load_a / load_b read only rows < M, columns < N, k < k_end,
// within the buffers the launcher checked.

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read_write> amax: array<atomic<u32>>;

fn load_a(row: u32, k: u32) -> f32 {
    if (row >= p.m || k >= k_end) {
        return 0.0;
    }
    if (p.trans_a == 1u) {
        return a[a_off + k * p.m + row];
    }
    return a[a_off + row * p.k + k];
}

fn load_b(col: u32, k: u32) -> f32 {
    if (col >= p.n || k >= k_end) {
        return 0.0;
    }
    if (p.trans_b == 1u) {
        return b[b_off + k * p.n + col];
    }
    return b[b_off + col * p.k + k];
}

// The tiled loops load this kernel's operands element by element (gemm_tiled.wgsl's WORD_LOADS
// off); their word path, which it does not take, still needs load_a4 / load_b4: four element
// loads.
const WORD_LOADS: bool = false;

fn load_a4(row: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(load_a(row, k), load_a(row, k + 1u), load_a(row, k + 2u), load_a(row, k + 3u));
}

fn load_b4(col: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(load_b(col, k), load_b(col, k + 1u), load_b(col, k + 2u), load_b(col, k + 3u));
}
