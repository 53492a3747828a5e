// error_feedback: the residual an error-feedback gradient exchange carries to the next step,
// e = v - d elementwise, where v is what was encoded (the gradient plus the last residual) and d
// what the encoding decodes to. One thread per element.
// Reference: src/reference/error_feedback.rs. Bindings: 0 params {n}, 1 v, 2 d, 3 e.

struct ResidualParams {
    n: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ResidualParams;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> e: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    e[i] = v[i] - d[i];
}
