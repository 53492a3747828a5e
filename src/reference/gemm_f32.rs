//! Reference for `shaders/gemm_f32.wgsl`: `C = epilogue(op(A)·op(B)ᵀ)` accumulated in f64, with
//! the magnitude each output's rounding error is bounded by.

/// The epilogue inputs, as the shaders apply them: `relu?((old or 0) + sum + bias[n])`.
#[derive(Default, Clone, Copy)]
pub struct EpilogueRef<'a> {
    /// Per-column bias.
    pub bias: Option<&'a [f32]>,
    /// ReLU.
    pub relu: bool,
    /// C's previous contents when accumulating.
    pub old: Option<&'a [f32]>,
}

/// An output computed in f64, and `Σ|terms|` for error bounds.
pub struct RefOut {
    /// Values.
    pub value: Vec<f64>,
    /// Sum of the magnitudes of everything added into each value.
    pub magnitude: Vec<f64>,
}

/// Applies the epilogue to one sum (with its magnitude).
pub fn epilogue(e: &EpilogueRef, idx: usize, col: usize, sum: f64, mag: f64) -> (f64, f64) {
    let mut v = sum;
    let mut m = mag;
    if let Some(old) = e.old {
        v += old[idx] as f64;
        m += (old[idx] as f64).abs();
    }
    if let Some(b) = e.bias {
        v += b[col] as f64;
        m += (b[col] as f64).abs();
    }
    if e.relu {
        v = v.max(0.0);
    }
    (v, m)
}

/// `op(A)` is `[m, k]` (A stored `[k, m]` if `trans_a`), `op(B)` `[n, k]` (stored `[k, n]` if
/// `trans_b`).
pub fn gemm_f32(
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    e: &EpilogueRef,
) -> RefOut {
    let mut value = vec![0f64; m * n];
    let mut magnitude = vec![0f64; m * n];
    for row in 0..m {
        for col in 0..n {
            let (mut s, mut g) = (0f64, 0f64);
            for kk in 0..k {
                let av = if trans_a { a[kk * m + row] } else { a[row * k + kk] } as f64;
                let bv = if trans_b { b[kk * n + col] } else { b[col * k + kk] } as f64;
                s += av * bv;
                g += (av * bv).abs();
            }
            let (v, mg) = epilogue(e, row * n + col, col, s, g);
            value[row * n + col] = v;
            magnitude[row * n + col] = mg;
        }
    }
    RefOut { value, magnitude }
}
