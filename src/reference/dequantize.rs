//! Reference for `shaders/dequantize.wgsl`: `Format::dequantize` of every code (`ftz(decode(code) ·
//! s)`, a non-finite code's own value whatever `s`).

use crate::scheme::QuantLayout;

/// Dequantizes packed words into a `[rows, cols]` f32 tensor.
pub fn dequantize(codes: &[u32], scales: &[f32], l: &QuantLayout) -> Vec<f32> {
    let per_word = l.per_word();
    let b = l.format.bits();
    let mask = (1u32 << b) - 1;
    let mut out = vec![0f32; (l.rows * l.cols) as usize];
    for row in 0..l.rows {
        for word in 0..l.words_per_row {
            let col0 = word * per_word;
            let s = scales[l.group(row, col0) as usize];
            let packed = codes[(row * l.words_per_row + word) as usize];
            for i in 0..per_word {
                let col = col0 + i;
                if col < l.cols {
                    out[(row * l.cols + col) as usize] = l.format.dequantize((packed >> (i * b)) & mask, s);
                }
            }
        }
    }
    out
}
