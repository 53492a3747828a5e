// slots: the dispatch layout of the multi-tensor kernels (sgd and adam through common/optim.wgsl,
// batchnorm_commit): up to 8 tensors (slots) a dispatch, slot j owning the workgroups start[j] ..
// start[j + 1] (the last: to the end of the grid), unused slots starting at 0xffffffff.

// The slot whose workgroups include workgroup wg, given each slot's first workgroup (uniform
// across the workgroup).
fn slot_of(wg: u32, start: array<vec4<u32>, 2>) -> u32 {
    var first = start;
    var j = 0u;
    for (var k = 1u; k < 8u; k++) {
        if (wg >= first[k / 4u][k % 4u]) {
            j = k;
        }
    }
    return j;
}
