// scale: group maxima (absmax's output) to the scale s and inverse scale 1/s of each group,
// by the format's rule (src/format/scale.rs, `group_scale`; with tensor_slot, amax[n_groups] is
// the tensor's maximum, which NVFP4's scales depend on). Reference: src/reference/scale.rs.
// Bindings: 0 params (QuantParams; n_groups and tensor_slot used), 1 amax (read u32 bits),
// 2 scales (read_write f32), 3 inv (read_write f32).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> amax: array<u32>;
@group(0) @binding(2) var<storage, read_write> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> inv: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = flat_workgroup(wg, nwg) * WG + lid;
    if (g < p.n_groups) {
        let a = bitcast<f32>(amax[g]);
        var tensor = a;
        if (p.tensor_slot == 1u) {
            tensor = bitcast<f32>(amax[p.n_groups]);
        }
        let si = fmt_group_scale(a, tensor);
        scales[g] = si.x;
        inv[g] = si.y;
    }
}
