//! Reference for `shaders/softmax_xent.wgsl`, in f64.

/// `(loss, correct, dz)` per row.
pub fn softmax_xent(z: &[f32], labels: &[u32], classes: usize, grad_scale: f32) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let mut loss = Vec::new();
    let mut correct = Vec::new();
    let mut dz = vec![0f32; z.len()];
    for (b, &t) in labels.iter().enumerate() {
        let row = &z[b * classes..(b + 1) * classes];
        let mut arg = 0;
        for c in 1..classes {
            if row[c] > row[arg] {
                arg = c;
            }
        }
        let m = row[arg] as f64;
        let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        loss.push((s.ln() - (row[t as usize] as f64 - m)) as f32);
        correct.push((arg == t as usize) as u32);
        for c in 0..classes {
            let p = (row[c] as f64 - m).exp() / s - if c == t as usize { 1.0 } else { 0.0 };
            dz[b * classes + c] = (p * grad_scale as f64) as f32;
        }
    }
    (loss, correct, dz)
}
