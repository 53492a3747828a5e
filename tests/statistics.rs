//! Stochastic quantizers are unbiased and have the variance theory gives.
//!
//! For every format, N independent seeds quantize and dequantize the same tensor on the GPU.
//! With `lo`/`hi` the two grid values around x (in the dequantized domain), stochastic rounding
//! gives E = x and Var = (hi − x)(x − lo). Bounds, declared here:
//! - per element: |mean − x| ≤ Z·sqrt(Var/N) + (hi − lo)·Z²/(3N) + RESOLUTION, Z = 6
//!   (Bernstein's inequality: a false failure on a correct kernel has probability < 1e-7 per
//!   element even where the up-probability is tiny and the normal approximation fails; the draws
//!   are deterministic, so a pass is stable);
//! - all elements together: |Σ(mean − x)| ≤ Z·sqrt(ΣVar/N) (catches a small systematic bias);
//! - measured variance: Σ s² / Σ Var within ±VAR_TOL (its relative standard error here is < 1%).
//!
//! LUQ's pruning region (|x| < α) is checked on its own: there lo = 0 and hi = ±α, so
//! Var = |x|(α − |x|). The clipping formats (int3, int2) are checked below their top level, and
//! to saturate exactly above it. Each format runs at its own granularity (per row; the
//! block-scaled formats per 32 or 16), whose scales never clip.

mod common;
use common::gpu;
use lowbit::format::Format;
use lowbit::quant::Quantizer;
use lowbit::scheme::{Granularity, QuantScheme};
use lowbit::{rng, GpuTensor};

const N_SEEDS: u32 = 256;
const Z: f64 = 6.0;
const VAR_TOL: f64 = 0.05;
/// Stochastic decisions use 24-bit draws: probabilities are exact to 2^-24 of a step, and the
/// scaled value x·inv carries one f32 rounding: a relative 2^-22 covers both.
const RESOLUTION: f64 = 2.4e-7;

fn test_data(rows: usize, cols: usize) -> Vec<f32> {
    let k = rng::key(2024, 1);
    let mut x: Vec<f32> = (0..(rows * cols) as u32)
        .map(|i| {
            let mag = 2f32.powf(-14.0 * rng::uniform(k, 2 * i));
            if rng::uniform(k, 2 * i + 1) < 0.5 {
                -mag
            } else {
                mag
            }
        })
        .collect();
    for r in 0..rows {
        x[r * cols] = 1.0; // pins every row's amax to 1
    }
    x
}

struct Stats {
    mean: Vec<f64>,
    var: Vec<f64>,
}

/// Mean and variance over the seeds, and each element's scale (its group's, seed 0).
fn sample(format: Format, x: &[f32], rows: usize, cols: usize) -> (Stats, Vec<f32>) {
    let g = gpu();
    let qz = Quantizer::new(g).unwrap();
    let xg = GpuTensor::from_slice(g, x, &[rows, cols]).unwrap();
    let n = x.len();
    let (mut sum, mut sum2) = (vec![0f64; n], vec![0f64; n]);
    let mut scales = Vec::new();
    for batch in 0..N_SEEDS / 64 {
        let mut enc = g.device.create_command_encoder(&Default::default());
        let mut outs = Vec::new();
        for s in 0..64 {
            let scheme = QuantScheme::native(format).stochastic(batch * 64 + s, 0);
            let q = qz.quantize(g, &mut enc, &xg, scheme).unwrap();
            outs.push(qz.dequantize(g, &mut enc, &q).unwrap());
            if scales.is_empty() {
                scales.push(q);
            }
        }
        g.queue.submit([enc.finish()]);
        for o in outs {
            for (i, v) in o.read(g).unwrap().into_iter().enumerate() {
                sum[i] += v as f64;
                sum2[i] += (v as f64) * (v as f64);
            }
        }
    }
    let nn = N_SEEDS as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / nn).collect();
    let var = (0..n).map(|i| ((sum2[i] - nn * mean[i] * mean[i]) / (nn - 1.0)).max(0.0)).collect();
    let (l, group_scales) = (scales[0].layout, scales[0].scales.read(g).unwrap());
    let per_element = (0..n).map(|i| group_scales[l.group((i / cols) as u32, (i % cols) as u32) as usize]).collect();
    (Stats { mean, var }, per_element)
}

/// The grid values around x: the codes stochastic rounding chooses with the largest draw (never
/// up) and the smallest (up whenever there is a fraction).
fn neighbours(format: Format, x: f32, s: f32) -> (f64, f64) {
    let inv = lowbit::format::recip_rne(s);
    let lo = format.dequantize(format.quantize(x, inv, true, (1 << 24) - 1), s) as f64;
    let hi = format.dequantize(format.quantize(x, inv, true, 0), s) as f64;
    (lo.min(hi), lo.max(hi))
}

fn check(format: Format, region: &str, idx: &[usize], x: &[f32], st: &Stats, lohi: &[(f64, f64)]) {
    assert!(idx.len() > 50, "{format} {region}: too few elements ({}) to test", idx.len());
    let nn = N_SEEDS as f64;
    let (mut bias_sum, mut var_th_sum, mut var_meas_sum) = (0f64, 0f64, 0f64);
    for &i in idx {
        let xv = x[i] as f64;
        let (lo, hi) = lohi[i];
        let var_th = ((hi - xv) * (xv - lo)).max(0.0);
        // Bernstein's inequality for a mean of N two-valued draws: the Z·σ term, plus
        // (hi − lo)·Z²/(3N) for rare outcomes (tiny up-probabilities on coarse grids).
        let tol = Z * (var_th / nn).sqrt()
            + (hi - lo).abs() * Z * Z / (3.0 * nn)
            + RESOLUTION * (hi - lo).abs().max(xv.abs());
        assert!((st.mean[i] - xv).abs() <= tol, "{format} {region}: element {i} x={xv:e}: mean over {N_SEEDS} seeds {:e}, |bias| {:e} > bound {tol:e} (grid {lo:e}..{hi:e})", st.mean[i], (st.mean[i] - xv).abs());
        bias_sum += st.mean[i] - xv;
        var_th_sum += var_th;
        var_meas_sum += st.var[i];
    }
    let total_tol = Z * (var_th_sum / nn).sqrt() + RESOLUTION * idx.len() as f64;
    assert!(bias_sum.abs() <= total_tol, "{format} {region}: summed bias {bias_sum:e} exceeds {total_tol:e}");
    let ratio = var_meas_sum / var_th_sum;
    assert!((ratio - 1.0).abs() <= VAR_TOL, "{format} {region}: measured/theoretical variance = {ratio:.4}");
    eprintln!(
        "{format:>9} {region:<10} n={:>5}  summed bias {bias_sum:+.3e} (bound {total_tol:.1e})  var ratio {ratio:.4}",
        idx.len()
    );
}

#[test]
fn stochastic_rounding_is_unbiased_with_the_theoretical_variance() {
    let (rows, cols) = (8, 517);
    let x = test_data(rows, cols);
    for f in Format::ALL {
        let (st, scales) = sample(f, &x, rows, cols);
        let lohi: Vec<(f64, f64)> = (0..x.len()).map(|i| neighbours(f, x[i], scales[i])).collect();
        // Clipping formats (int3, int2) saturate above their top level: every sample lands on it.
        let top = |i: usize| f.top() as f64 * scales[i] as f64;
        // (1 + 2⁻²⁰: the scale's own rounding, e.g. 127·(1/127) just below 1.)
        let (all, clipped): (Vec<usize>, Vec<usize>) =
            (0..x.len()).partition(|&i| (x[i].abs() as f64) <= top(i) * (1.0 + 2f64.powi(-20)));
        check(f, "all", &all, &x, &st, &lohi);
        assert_eq!(clipped.is_empty(), f.top() == f.qmax(), "{f}: clipping");
        for &i in &clipped {
            let want = top(i).copysign(x[i] as f64);
            assert!(st.mean[i] == want && st.var[i] == 0.0, "{f}: x={} must saturate at {want}", x[i]);
        }
        if f == Format::Log4 {
            // LUQ's stochastic underflow: below α = amax·2^-6 values become 0 or ±α, unbiased.
            let pruned: Vec<usize> = (0..x.len()).filter(|&i| (x[i].abs() as f64) < scales[i] as f64).collect();
            for &i in &pruned {
                let (lo, hi) = lohi[i];
                let alpha = scales[i] as f64;
                assert!(lo == 0.0 || hi == 0.0, "log4: x={} below α must round between 0 and ±α, got {lo}..{hi}", x[i]);
                assert!((hi - lo - alpha).abs() < 1e-12 * alpha, "log4 pruning grid");
            }
            check(f, "pruned", &pruned, &x, &st, &lohi);
        }
    }
}

#[test]
fn nearest_rounding_is_within_half_a_step() {
    let g = gpu();
    let qz = Quantizer::new(g).unwrap();
    let (rows, cols) = (4, 300);
    let x = test_data(rows, cols);
    let xg = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
    for f in [Format::Int8, Format::Int4] {
        let mut enc = g.device.create_command_encoder(&Default::default());
        let q = qz
            .quantize(
                g,
                &mut enc,
                &xg,
                QuantScheme {
                    format: f,
                    granularity: Granularity::PerRow,
                    rounding: lowbit::scheme::Rounding::Nearest,
                },
            )
            .unwrap();
        let back = qz.dequantize(g, &mut enc, &q).unwrap();
        g.queue.submit([enc.finish()]);
        let s = q.scales.read(g).unwrap();
        for (i, v) in back.read(g).unwrap().iter().enumerate() {
            let step = s[i / cols] as f64;
            assert!(((*v as f64) - x[i] as f64).abs() <= 0.5 * step * (1.0 + 1e-6), "{f}: element {i}");
        }
    }
}
