// A team's group scale, shared by the one-pass quantizers' workgroup entries (quantize_fused's
// main, main_row and main_row_v4; im2col_quantize's main_rows and main_rows_v4; quantize_both's
// main_given): a team is a run of `team` threads of a workgroup (common/segments.wgsl's seg: a
// power of two, at most 256, the same for the whole workgroup) that quantizes one group. It reads
// the including kernel's group_scale_of (common/group_scale.wgsl, or the kernel's own where it has
// no tensor-wide scale) and stores through common/samples.wgsl's store_scale.

// Each team's inverse scale, from its first thread.
var<workgroup> team_inv: array<f32, 256>;

// The team's maxima m met in workgroup memory (segment_max); its first thread forms the group's
// (scale, 1/scale) and, where the group is valid, stores the scale as group `group` into every
// sample. Returns the group's inverse scale to every thread of the team. Every thread of the
// workgroup calls it, in uniform control flow (it has barriers).
fn team_inv_scale(lid: u32, team: u32, group: u32, valid: bool, m: u32) -> f32 {
    let top = segment_max(lid, team, m);
    if ((lid & (team - 1u)) == 0u) {
        let si = group_scale_of(bitcast<f32>(top));
        team_inv[lid / team] = si.y;
        if (valid) {
            store_scale(group, si.x);
        }
    }
    workgroupBarrier();
    return team_inv[lid / team];
}
