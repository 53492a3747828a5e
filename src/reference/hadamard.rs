//! Reference for `shaders/hadamard.wgsl`: the same butterflies in the same order, then the scale.

/// Which dimension of a `[rows, cols]` tensor the blocks run along.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Along each row (the last, contiguous dimension).
    Cols,
    /// Down each column (the first dimension: e.g. the batch of a `[batch, features]` tensor).
    Rows,
}

/// `1/sqrt(block)` rounded to f32, as both sides use it.
pub fn scale(block: u32) -> f32 {
    (1.0 / (block as f64).sqrt()) as f32
}

/// Whether element `i` of a block is negated under the sign key `signs` (0: never).
pub fn negated(signs: u32, i: usize) -> bool {
    signs != 0 && crate::rng::draw(signs, i as u32) & 1 == 1
}

/// `x·H` blockwise along `axis` of the `[rows, cols]` tensor `x`.
pub fn hadamard(x: &[f32], rows: usize, cols: usize, block: usize, axis: Axis) -> Vec<f32> {
    hadamard_signed(x, rows, cols, block, axis, 0)
}

/// `x·D·H` blockwise, `D` the ±1 diagonal of sign key `signs` (see [`negated`]).
pub fn hadamard_signed(x: &[f32], rows: usize, cols: usize, block: usize, axis: Axis, signs: u32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let addr = |v: usize, i: usize| match axis {
        Axis::Cols => {
            let bpr = cols / block;
            (v / bpr) * cols + (v % bpr) * block + i
        }
        Axis::Rows => ((v / cols) * block + i) * cols + v % cols,
    };
    let s = scale(block as u32);
    for v in 0..rows * cols / block {
        let mut a: Vec<f32> =
            (0..block).map(|i| if negated(signs, i) { -x[addr(v, i)] } else { x[addr(v, i)] }).collect();
        let mut h = 1;
        while h < block {
            let prev = a.clone();
            for i in 0..block {
                a[i] = if i & h == 0 { prev[i] + prev[i ^ h] } else { prev[i ^ h] - prev[i] };
            }
            h *= 2;
        }
        for i in 0..block {
            out[addr(v, i)] = a[i] * s;
        }
    }
    out
}
