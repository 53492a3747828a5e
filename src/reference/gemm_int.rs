//! Reference for `shaders/gemm_int.wgsl`: integer products of packed int8 / int4 / int3 / int2 /
//! log4 codes,
//! exact i32 sums per scale chunk, folded with the group scales and averaged over SMP samples.

use super::gemm_f32::{epilogue, EpilogueRef, RefOut};
use crate::format::{fp4, int, Format};
use crate::scheme::QuantLayout;

/// The integer value a code contributes to the dot product (log4: `±2^(c-1)`; E2M1: twice the
/// value, see [`Format::lane_unit`]).
pub fn lane_value(code: u32, f: Format) -> i32 {
    match f {
        Format::Fp4E2M1 | Format::Mxfp4 | Format::Nvfp4 => fp4::lane(code),
        Format::Int8 => int::decode(code, 8),
        Format::Int4 | Format::Int3 => int::decode(code, 4),
        Format::Int2 => int::decode(code, 2),
        Format::Log4 => {
            let c = code & 7;
            let v = if c == 0 { 0 } else { 1 << (c - 1) };
            if code & 8 != 0 {
                -v
            } else {
                v
            }
        }
        _ => panic!("gemm_int reference: {f} is not an integer format"),
    }
}

/// The K integer values of row `row` of sample `sample`.
pub fn row_values(codes: &[u32], l: &QuantLayout, sample: usize, row: u32) -> Vec<i32> {
    let b = l.format.bits();
    let per = l.per_word();
    let base = (sample * l.rows as usize + row as usize) * l.words_per_row as usize;
    (0..l.cols)
        .map(|k| lane_value((codes[base + (k / per) as usize] >> ((k % per) * b)) & ((1 << b) - 1), l.format))
        .collect()
}

/// Exact `Σ_s Σ_k a_s(m,k)·b(n,k)` for every output (what `raw` mode writes).
pub fn gemm_int_raw(a_codes: &[u32], la: &QuantLayout, samples: usize, b_codes: &[u32], lb: &QuantLayout) -> Vec<i32> {
    let brows: Vec<Vec<i32>> = (0..lb.rows).map(|n| row_values(b_codes, lb, 0, n)).collect();
    let mut out = vec![0i32; (la.rows * lb.rows) as usize];
    for s in 0..samples {
        for m in 0..la.rows {
            let ar = row_values(a_codes, la, s, m);
            for (n, br) in brows.iter().enumerate() {
                out[m as usize * lb.rows as usize + n] += ar.iter().zip(br).map(|(x, y)| x * y).sum::<i32>();
            }
        }
    }
    out
}

/// The scaled result in f64: per chunk, exact integer sum × `sa` × `sb`; mean over samples; then
/// the epilogue. Also returns each output's magnitude for error bounds.
pub fn gemm_int(
    a_codes: &[u32],
    a_scales: &[f32],
    la: &QuantLayout,
    samples: usize,
    b_codes: &[u32],
    b_scales: &[f32],
    lb: &QuantLayout,
    e: &EpilogueRef,
) -> RefOut {
    let ch = la.shared_chunk(lb) as usize;
    let k = la.cols as usize;
    let (m_rows, n_rows) = (la.rows as usize, lb.rows as usize);
    let brows: Vec<Vec<i32>> = (0..lb.rows).map(|n| row_values(b_codes, lb, 0, n)).collect();
    let mut value = vec![0f64; m_rows * n_rows];
    let mut magnitude = vec![0f64; m_rows * n_rows];
    for s in 0..samples {
        for m in 0..m_rows {
            let ar = row_values(a_codes, la, s, m as u32);
            for n in 0..n_rows {
                for c0 in (0..k).step_by(ch) {
                    let isum: i64 = (c0..(c0 + ch).min(k)).map(|kk| ar[kk] as i64 * brows[n][kk] as i64).sum();
                    let sa = a_scales[s * la.n_groups as usize + la.group(m as u32, c0 as u32) as usize] as f64;
                    let sb = b_scales[lb.group(n as u32, c0 as u32) as usize] as f64;
                    let unit = (la.format.lane_unit() * lb.format.lane_unit()) as f64;
                    let t = isum as f64 * unit * sa * sb / samples as f64;
                    value[m * n_rows + n] += t;
                    magnitude[m * n_rows + n] += t.abs();
                }
            }
        }
    }
    for m in 0..m_rows {
        for n in 0..n_rows {
            let i = m * n_rows + n;
            (value[i], magnitude[i]) = epilogue(e, i, n, value[i], magnitude[i]);
        }
    }
    RefOut { value, magnitude }
}
