// gemm_f32: tiled, register-blocked f32 GEMM, C = epilogue(A·Bᵀ) (or with A/B transposed).
// TILE x TILE output tile per workgroup of 16x16 threads, TPT x TPT outputs per thread
// (main: TPT = 4: 64x64 tiles, TPT = 2: 32x32; main_wide: 128x128, below; chosen per adapter
// and shape by the launcher's tune),
// K in steps of 16 through workgroup memory. Tails in M, N and K are guarded (zero-filled).
// Reference: src/reference/gemm_f32.rs (f64 accumulation; compared within a stated bound).
// Bindings: 0 params, 1 a (read), 2 b (read), 3 bias (read), 4 c (read-write), 5 amax (atomic).

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read_write> amax: array<atomic<u32>>;

override TPT: u32 = 4u;
const TK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]
var<workgroup> wg_amax: atomic<u32>;
// End of this workgroup's K range (split-K).
var<private> k_end: u32;

fn load_a(row: u32, k: u32) -> f32 {
    if (row >= p.m || k >= k_end) {
        return 0.0;
    }
    if (p.trans_a == 1u) {
        return a[k * p.m + row];
    }
    return a[row * p.k + k];
}

fn load_b(col: u32, k: u32) -> f32 {
    if (col >= p.n || k >= k_end) {
        return 0.0;
    }
    if (p.trans_b == 1u) {
        return b[k * p.n + col];
    }
    return b[col * p.k + k];
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
    for (var k0 = st.k_lo; k0 < st.k_hi; k0 += TK) {
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
            As[kk * TM + mm] = load_a(m0 + mm, k0 + kk);
            var kb = idx % TK;
            var nn = idx / TK;
            if (p.trans_b == 1u) {
                kb = idx / TM;
                nn = idx % TM;
            }
            Bs[kb * TM + nn] = load_b(n0 + nn, k0 + kb);
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
                    let v = epilogue_value(p, acc[i * 4u + j], c[row * p.n + col], bn);
                    c[row * p.n + col] = v;
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

// The 128x128 tile (entry point main_wide) is shared with gemm_fp8 and gemm_levels:
// shaders/common/gemm_wide.wgsl, over this file's load_a / load_b.
