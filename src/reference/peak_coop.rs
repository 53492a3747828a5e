//! Reference for `shaders/peak_coop.wgsl`: every output of every subgroup after `rounds` rounds
//! of `x += A·B` with A filled with `a` and B with `b` (16×16×16 or 8×8×8; exact for the
//! launcher's values).

/// The value of every output element with `size`×`size`×`size` matrices (`rounds` · size · a · b,
/// summed as the unit sums: exact when `a·b` is a power of two and the total stays below 2^24 of
/// its unit).
pub fn peak_coop_value(size: u32, rounds: u32, a: f32, b: f32) -> f32 {
    let mut x = 0f32;
    for _ in 0..rounds {
        x += size as f32 * a * b;
    }
    x
}
