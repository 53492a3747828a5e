//! Reference for `shaders/embedding.wgsl` (same order of summation: exact).

/// The row of token id `id`, if it is an integer in `[0, vocab)`.
fn row(id: f32, vocab: usize) -> Option<usize> {
    (id >= 0.0 && id < vocab as f32 && id.floor() == id).then_some(id as usize)
}

/// `y[i, c] = table[id_i, c] + pos[i % t, c]`; NaN rows for invalid ids.
pub fn forward(ids: &[f32], table: &[f32], pos: &[f32], t: usize, dim: usize, vocab: usize) -> Vec<f32> {
    let mut y = vec![f32::NAN; ids.len() * dim];
    for (i, &id) in ids.iter().enumerate() {
        if let Some(v) = row(id, vocab) {
            for c in 0..dim {
                y[i * dim + c] = table[v * dim + c] + pos[(i % t) * dim + c];
            }
        }
    }
    y
}

/// `(dtable, dpos)`: each token's gradient summed into its id's row, in token order, and over
/// the batch per position, in batch order.
pub fn backward(ids: &[f32], dy: &[f32], t: usize, dim: usize, vocab: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut dtable, mut dpos) = (vec![0f32; vocab * dim], vec![0f32; t * dim]);
    for (i, &id) in ids.iter().enumerate() {
        if let Some(v) = row(id, vocab) {
            for c in 0..dim {
                dtable[v * dim + c] += dy[i * dim + c];
            }
        }
    }
    for i in 0..ids.len() {
        for c in 0..dim {
            dpos[(i % t) * dim + c] += dy[i * dim + c];
        }
    }
    (dtable, dpos)
}
