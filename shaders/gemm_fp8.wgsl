// gemm_fp8: FP8 GEMM, C = epilogue(A·Bᵀ) with A [M, K] and B [N, K] packed along K in FP8
// (FMT_A, FMT_B: 2 = E4M3, 3 = E5M2; E4M3 × E4M3 forward, E5M2 gradient × E4M3 backward).
// Codes are decoded and multiplied by their group scale on the way into workgroup memory, then
// accumulated in f32: the product of exactly the values `dequantize` gives.
// Tiles: TILE x TILE outputs (main: TPT = 4: 64, TPT = 2: 32; main_wide: 128, shared with
// gemm_f32 in shaders/common/gemm_wide.wgsl; chosen by the launcher's tune), 16x16 threads with
// TPT x TPT each, K in steps of 16 (4 words per row).
// Reference: src/reference/gemm_fp8.rs (f64 accumulation of the dequantized operands, compared
// within a stated bound). Bindings as gemm_int: 0 params, 1 a codes, 2 a scales, 3 b codes,
// 4 b scales, 5 bias, 6 c (read-write), 7 amax (atomic).

override FMT_A: u32 = 2u;
override FMT_B: u32 = 2u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_codes: array<u32>;
@group(0) @binding(2) var<storage, read> a_scales: array<f32>;
@group(0) @binding(3) var<storage, read> b_codes: array<u32>;
@group(0) @binding(4) var<storage, read> b_scales: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> amax: array<atomic<u32>>;

override TPT: u32 = 4u;
const TK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>;
var<workgroup> wg_amax: atomic<u32>;

fn fp8_value(code: u32, fmt: u32) -> f32 {
    if (fmt == 3u) {
        return fp8_decode(code, 5u, 2u, 15, true);
    }
    return fp8_decode(code, 4u, 3u, 7, false);
}

// End of this workgroup's K range (split-K; main_wide only).
var<private> k_end: u32;

// Dequantized elements for the shared 128x128 tile (shaders/common/gemm_wide.wgsl; operands are
// never transposed here).
fn load_a(row: u32, k: u32) -> f32 {
    if (row >= p.m || k >= k_end) {
        return 0.0;
    }
    let w = a_codes[row * p.a_words + k / 4u];
    return ftz(fp8_value((w >> (8u * (k % 4u))) & 0xffu, FMT_A) * a_scales[row * p.a_row_mul + k / p.a_block_div]);
}

fn load_b(col: u32, k: u32) -> f32 {
    if (col >= p.n || k >= k_end) {
        return 0.0;
    }
    let w = b_codes[col * p.b_words + k / 4u];
    return ftz(fp8_value((w >> (8u * (k % 4u))) & 0xffu, FMT_B) * b_scales[col * p.b_row_mul + k / p.b_block_div]);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let TM = 16u * TPT;
    let st = split_tile(p, wg.x + wg.y * nwg.x);
    let tile = st.tile;
    let valid_tile = st.valid;
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
    let mm = lid / 4u;
    let kw = lid % 4u;
    let loader = mm < TM;
    for (var k0 = st.k_lo; k0 < st.k_hi; k0 += TK) {
        let kbase = k0 + kw * 4u;
        var wa = 0u;
        var sa = 0.0;
        if (loader && m0 + mm < p.m && kbase < st.k_hi) {
            wa = a_codes[(m0 + mm) * p.a_words + kbase / 4u];
            sa = a_scales[(m0 + mm) * p.a_row_mul + kbase / p.a_block_div];
        }
        var wb = 0u;
        var sb = 0.0;
        if (loader && n0 + mm < p.n && kbase < st.k_hi) {
            wb = b_codes[(n0 + mm) * p.b_words + kbase / 4u];
            sb = b_scales[(n0 + mm) * p.b_row_mul + kbase / p.b_block_div];
        }
        if (loader) {
            for (var i = 0u; i < 4u; i++) {
                As[(kw * 4u + i) * TM + mm] = ftz(fp8_value((wa >> (8u * i)) & 0xffu, FMT_A) * sa);
                Bs[(kw * 4u + i) * TM + mm] = ftz(fp8_value((wb >> (8u * i)) & 0xffu, FMT_B) * sb);
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
