// A group's scale, shared by the one-pass quantizers (quantize_fused, quantize_transpose_fused,
// hadamard_quantize_transpose). It reads the including kernel's `tensor_amax` binding.

// A group's (scale, 1/scale) from its maximum, as the two-pass chain computes it
// (common/maxima.wgsl); NVFP4's depends on the tensor's maximum, tensor_amax[0] (written before the
// launch: absmax, the rotation's maxima, or quantize_fused's main_whole in its own launch).
fn group_scale_of(amax: f32) -> vec2<f32> {
    if (FORMAT == 10u) {
        return fmt_group_scale(amax, bitcast<f32>(tensor_amax[0]));
    }
    return fmt_scale_for_amax(amax);
}
