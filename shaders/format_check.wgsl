// format_check: device-side test entry points that run the shared device functions element by
// element, so tests can compare them with the host spec code by code (reference:
// src/reference/format_check.rs).
// encode: codes[i] = fmt_quantize(x[i], 1.0, stochastic, rng_draw24(key, i))  (unscaled encode)
// decode: vals[i] = fmt_decode(codes[i])
// recip:  vals[i] = recip_rne(x[i])
// pow2_recip: vals[i] = recip_pow2(x[i])  (x[i] a positive normal power of two: recip_rne's value)
// rng:    codes[i] = rng_draw(key, i)
// Bindings: 0 params {n, key, stochastic}, 1 x (read f32), 2 codes (read_write u32),
// 3 vals (read_write f32).

struct CheckParams {
    n: u32,
    key: u32,
    stochastic: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: CheckParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> vals: array<f32>;

fn elem_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn encode(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = elem_index(wg, nwg, lid);
    if (i < p.n) {
        let stochastic = p.stochastic == 1u;
        var r = 0u;
        if (stochastic) {
            r = rng_draw24(p.key, i);
        }
        codes[i] = fmt_quantize(x[i], 1.0, stochastic, r);
    }
}

@compute @workgroup_size(256)
fn decode(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = elem_index(wg, nwg, lid);
    if (i < p.n) {
        vals[i] = fmt_decode(codes[i]);
    }
}

@compute @workgroup_size(256)
fn recip(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = elem_index(wg, nwg, lid);
    if (i < p.n) {
        vals[i] = recip_rne(x[i]);
    }
}

@compute @workgroup_size(256)
fn pow2_recip(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = elem_index(wg, nwg, lid);
    if (i < p.n) {
        vals[i] = recip_pow2(x[i]);
    }
}

@compute @workgroup_size(256)
fn rng(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = elem_index(wg, nwg, lid);
    if (i < p.n) {
        codes[i] = rng_draw(p.key, i);
    }
}
