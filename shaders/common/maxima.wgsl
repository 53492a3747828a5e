// The second launch of the two-pass quantizers (quantize, quantize_transpose; absmax is the
// first): a group's scale from absmax's maxima, and which thread stores it. It reads the including
// kernel's `p: QuantParams` and `amax` (u32 bits: n_groups maxima, then the tensor's where
// p.tensor_slot is 1), and stores through common/samples.wgsl's store_scale.

// Group g's (scale, inverse scale) by the format's rule (src/format/scale.rs, group_scale; NVFP4's
// follows the tensor's maximum): what a launch of its own wrote before, computed where it is used.
fn scale_from_maxima(g: u32) -> vec2<f32> {
    let a = bitcast<f32>(amax[g]);
    var tensor = a;
    if (p.tensor_slot == 1u) {
        tensor = bitcast<f32>(amax[p.n_groups]);
    }
    return fmt_group_scale(a, tensor);
}

// Whether column col of row row is its group's first (blocks hold whole words, so a group's first
// word starts at one): column 0 of a block — block_div is u32::MAX per row and per tensor — in
// every row but per tensor (row_mul 0: one group, first in row 0).
fn starts_group(row: u32, col: u32) -> bool {
    return col % p.block_div == 0u && (p.row_mul != 0u || row == 0u);
}

// The inverse scale of the group holding column col of row row (of the tensor the launch packs),
// its scale stored into every sample when col starts the group.
fn inv_scale_at(row: u32, col: u32) -> f32 {
    let g = group_of(p, row, col);
    let si = scale_from_maxima(g);
    if (starts_group(row, col)) {
        store_scale(g, si.x);
    }
    return si.y;
}
