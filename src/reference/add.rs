//! Reference for `shaders/add.wgsl`.

/// `relu?(a + b)` elementwise, or `relu?(a)` without `b`; ReLU keeps `v > 0` and maps everything
/// else (NaN included) to 0.
pub fn add(a: &[f32], b: Option<&[f32]>, relu: bool) -> Vec<f32> {
    (0..a.len())
        .map(|i| {
            let v = match b {
                Some(b) => a[i] + b[i],
                None => a[i],
            };
            // v > 0 keeps it; 0, negatives and NaN (not > 0) become 0.
            let keep = v > 0.0;
            if relu && !keep {
                0.0
            } else {
                v
            }
        })
        .collect()
}
