//! TinyScript: the Weibull fit recovers known parameters from samples (moments taken on the GPU),
//! the level search matches a brute-force search, the kernels match the spec bit for bit
//! (special values included), stochastic rounding is unbiased, and the fitted levels have less
//! variance than uniform ones on heavy-tailed data.

mod common;
use common::{assert_f32_bits_eq, assert_u32_eq, data, gpu};
use lowbit::kernels::tinyscript::TinyScript;
use lowbit::scheme::Rounding;
use lowbit::tinyscript::{discretize, expected_variance, optimal_levels, optimal_levels_as, LevelTable, Weibull};
use lowbit::{reference, GpuBuffer};

/// f32 sums of up to 2²⁰ values against f64: relative bound.
const MOMENT_RTOL: f64 = 1e-4;

fn weibull_samples(k: f64, lambda: f64, n: usize, seed: u32) -> Vec<f32> {
    let key = lowbit::rng::key(seed, 5);
    (0..n as u32)
        .map(|i| {
            let u = lowbit::rng::uniform(key, 2 * i) as f64;
            let mag = lambda * (-(1.0 - u).ln()).powf(1.0 / k);
            let s = if lowbit::rng::uniform(key, 2 * i + 1) < 0.5 { -1.0 } else { 1.0 };
            (s * mag) as f32
        })
        .collect()
}

#[test]
fn weibull_fit_recovers_known_parameters_from_gpu_moments() {
    let g = gpu();
    let ts = TinyScript::new(g).unwrap();
    for (k, lambda) in [(0.7, 0.01), (1.5, 2.0), (3.0, 0.5)] {
        let x = weibull_samples(k, lambda, 1 << 20, 3);
        let xb = GpuBuffer::from_slice(g, "x", &x).unwrap();
        let out = GpuBuffer::<f32>::zeros(g, "m", 3).unwrap();
        let mut enc = g.device.create_command_encoder(&Default::default());
        ts.encode_moments(g, &mut enc, &xb, &out).unwrap();
        g.queue.submit([enc.finish()]);
        let m = out.read(g).unwrap();
        let (a, q, amax) = reference::tinyscript::moments(&x);
        assert!((m[0] as f64 - a).abs() <= MOMENT_RTOL * a, "Σ|x| {} vs {a}", m[0]);
        assert!((m[1] as f64 - q).abs() <= MOMENT_RTOL * q, "Σx² {} vs {q}", m[1]);
        assert_eq!(m[2] as f64, amax);
        let n = x.len() as f64;
        let fit = Weibull::fit(m[0] as f64 / n, m[1] as f64 / n).unwrap();
        assert!((fit.shape / k - 1.0).abs() < 0.03, "shape {} vs {k}", fit.shape);
        assert!((fit.scale / lambda - 1.0).abs() < 0.03, "scale {} vs {lambda}", fit.scale);
    }
    assert!(Weibull::fit(0.0, 1.0).is_err() && Weibull::fit(1.0, f64::NAN).is_err());
}

#[test]
fn level_search_matches_brute_force_and_beats_uniform() {
    for k in [0.6, 1.0, 2.5] {
        let dist = Weibull { shape: k, scale: 0.3 };
        let n = 128;
        let (pts, w) = discretize(&dist, 1.0, n);
        // 3 bits: levels 0, a, b, 1 with a < b on the grid.
        let mut best = f64::INFINITY;
        for a in 1..n {
            for b in a + 1..n {
                let l = [0.0, a as f64 / n as f64, b as f64 / n as f64, 1.0];
                best = best.min(expected_variance(&l, &pts, &w));
            }
        }
        let found = optimal_levels(3, &pts, &w).unwrap();
        let v = expected_variance(&found, &pts, &w);
        assert!(v <= best * (1.0 + 1e-12), "k {k}: search {v} vs brute force {best} ({found:?})");
        // 4 bits: at most the uniform levels' variance; much less on a heavy tail.
        let found4 = optimal_levels(4, &pts, &w).unwrap();
        let uni: Vec<f64> = (0..8).map(|i| i as f64 / 7.0).collect();
        let (vf, vu) = (expected_variance(&found4, &pts, &w), expected_variance(&uni, &pts, &w));
        assert!(vf <= vu, "k {k}: {vf} vs uniform {vu}");
        if k < 1.0 {
            assert!(vf < 0.85 * vu, "k {k}: {vf} vs uniform {vu}");
        }
    }
    // An unsigned 2-bit table has the 4 levels of a signed 3-bit one (and 3 bits unsigned the 8
    // of 4 bits signed).
    let (pts, w) = discretize(&Weibull { shape: 0.8, scale: 0.2 }, 1.0, 256);
    assert_eq!(optimal_levels_as(2, false, &pts, &w).unwrap(), optimal_levels(3, &pts, &w).unwrap());
    assert_eq!(optimal_levels_as(3, false, &pts, &w).unwrap(), optimal_levels(4, &pts, &w).unwrap());
    assert!(optimal_levels(9, &[0.5; 1024], &[1.0; 1024]).is_err());
    assert!(LevelTable::new(3, vec![0, 5, 3, 1 << 24]).is_err());
    assert!(LevelTable::new(3, vec![0, 5, 9, 1 << 23]).is_err());
    assert!(LevelTable::with_sign(2, false, vec![0, 5, 1 << 24]).is_err(), "unsigned 2-bit tables have 4 levels");
    let u = LevelTable::uniform_as(2, false).unwrap();
    assert_eq!((u.levels.len(), u.signed), (4, false));
    assert_eq!(LevelTable::from_unit(2, &u.unit()).unwrap(), u, "the level count tells the sign");
}

#[test]
fn quantize_and_dequantize_match_the_spec_bit_for_bit() {
    let g = gpu();
    let ts = TinyScript::new(g).unwrap();
    for bits in [2u32, 3, 4, 8] {
        let (_, fitted) = lowbit::tinyscript::levels_for(bits, 0.2, 0.09, 1.0).unwrap();
        let (_, fitted_u) = lowbit::tinyscript::levels_for_rows(bits, false, 0.2, 0.09, &[1.0]).unwrap();
        // Unsigned tables (for nonnegative data) encode the negative inputs as 0.
        for table in
            [LevelTable::uniform(bits).unwrap(), fitted, LevelTable::uniform_as(bits, false).unwrap(), fitted_u]
        {
            // (A CPU adapter's layouts quantize rows by threads from 128 rows or up to 2^18 values,
            // by workgroups otherwise (2 x 140,000; transposed, four rows a workgroup at
            // 8 x 33,000); reading x as vec4s where they can, at 132 x 44: a row's four values, or
            // transposed, a column's values in four rows.)
            let shapes =
                [(1usize, 1usize), (3, 1000), (33, 65), (2, 5000), (130, 37), (132, 44), (2, 140_000), (8, 33_000)];
            // A row of 97 values or more always holds data's 1e30, which would hide a wrong
            // maximum: such rows run without the specials too.
            let runs = shapes
                .into_iter()
                .flat_map(|(r, c)| [(r, c, true), (r, c, false)].into_iter().take(1 + (c >= 97) as usize));
            for (rows, cols, specials) in runs {
                let x = data(rows * cols, bits + rows as u32, specials);
                let xb = GpuBuffer::from_slice(g, "x", &x).unwrap();
                for rounding in [Rounding::Nearest, Rounding::Stochastic { seed: 7, stream: bits }] {
                    let mut enc = g.device.create_command_encoder(&Default::default());
                    let q = ts.encode_quantize(g, &mut enc, &xb, rows, cols, &table, rounding).unwrap();
                    let out = GpuBuffer::<f32>::zeros(g, "out", rows * cols).unwrap();
                    ts.encode_dequantize(g, &mut enc, &q, &out).unwrap();
                    g.queue.submit([enc.finish()]);
                    let what =
                        format!("tinyscript {bits}-bit signed={} {rows}x{cols} {rounding:?} {specials}", table.signed);
                    let (codes, scales) = reference::tinyscript::quantize(&x, rows, cols, &table, rounding);
                    assert_u32_eq(&format!("{what} codes"), &q.codes.read(g).unwrap(), &codes);
                    assert_f32_bits_eq(&format!("{what} scales"), &q.scales.read(g).unwrap(), &scales);
                    let want = reference::tinyscript::dequantize(&codes, &scales, rows, cols, &table);
                    assert_f32_bits_eq(&format!("{what} dequantized"), &out.read(g).unwrap(), &want);
                    // The same tensor stored transposed, [cols, rows], quantized as [rows, cols].
                    let xt: Vec<f32> = (0..rows * cols).map(|i| x[(i % rows) * cols + i / rows]).collect();
                    let xtb = GpuBuffer::from_slice(g, "xt", &xt).unwrap();
                    let mut enc = g.device.create_command_encoder(&Default::default());
                    let qt = ts.encode_quantize_as(g, &mut enc, &xtb, rows, cols, true, &table, rounding).unwrap();
                    g.queue.submit([enc.finish()]);
                    let (tc, tsc) = reference::tinyscript::quantize_transposed(&xt, rows, cols, &table, rounding);
                    assert_eq!((&tc, &tsc), (&codes, &scales), "{what}: transposed reference");
                    assert_u32_eq(&format!("{what} transposed codes"), &qt.codes.read(g).unwrap(), &codes);
                }
            }
        }
    }
}

#[test]
fn quantizing_under_a_relu_mask_is_quantizing_relu_backwards_output() {
    use lowbit::kernels::relu_backward::ReluBackward;
    let g = gpu();
    let ts = TinyScript::new(g).unwrap();
    let relu = ReluBackward::new(g).unwrap();
    let (_, fitted) = lowbit::tinyscript::levels_for(3, 0.2, 0.09, 1.0).unwrap();
    // A CPU adapter's layouts quantize by threads (reading vec4s at 132 x 44, and at 36 x 132
    // transposed), and the 3 rows of 90,000 by workgroups (the 8 of 33,000 transposed four rows a
    // workgroup); both orientations (dY for dX, dYᵀ for dW); a mask with zeros, negatives and NaN.
    for (rows, cols) in [(33usize, 65usize), (130, 37), (132, 44), (36, 132), (3, 90_000), (33_000, 8)] {
        let dy = data(rows * cols, 61, true);
        let mut y = data(rows * cols, 62, false);
        for (i, v) in y.iter_mut().enumerate() {
            match i % 13 {
                3 => *v = f32::NAN,
                5 | 9 => *v = 0.0,
                7 => *v = -0.0,
                _ => {}
            }
        }
        let (dyb, yb) = (GpuBuffer::from_slice(g, "dy", &dy).unwrap(), GpuBuffer::from_slice(g, "y", &y).unwrap());
        let masked = GpuBuffer::<f32>::zeros(g, "masked", rows * cols).unwrap();
        let levels = GpuBuffer::from_slice(g, "levels", &fitted.levels).unwrap();
        for transposed in [false, true] {
            // dY stored [rows, cols]; transposed, its transpose [cols, rows] is quantized.
            let (qr, qc) = if transposed { (cols, rows) } else { (rows, cols) };
            for rounding in [Rounding::Nearest, Rounding::Stochastic { seed: 9, stream: 3 }] {
                let what = format!("{rows}x{cols} transposed={transposed} {rounding:?}");
                let mut enc = g.device.create_command_encoder(&Default::default());
                relu.encode(g, &mut enc, &yb, &dyb, &masked).unwrap();
                let want = ts
                    .encode_quantize_with(g, &mut enc, &masked, qr, qc, transposed, &fitted, &levels, rounding)
                    .unwrap();
                let got = ts
                    .encode_quantize_masked_with(g, &mut enc, &dyb, &yb, qr, qc, transposed, &fitted, &levels, rounding)
                    .unwrap();
                g.queue.submit([enc.finish()]);
                assert_u32_eq(&format!("{what}: codes"), &got.codes.read(g).unwrap(), &want.codes.read(g).unwrap());
                assert_f32_bits_eq(
                    &format!("{what}: scales"),
                    &got.scales.read(g).unwrap(),
                    &want.scales.read(g).unwrap(),
                );
                assert!(got.codes.read(g).unwrap().iter().any(|&c| c != 0), "{what}: all codes zero");
            }
        }
        // A mask of another length is refused.
        let short = GpuBuffer::from_slice(g, "short", &y[1..]).unwrap();
        let mut enc = g.device.create_command_encoder(&Default::default());
        let r = ts.encode_quantize_masked_with(
            g,
            &mut enc,
            &dyb,
            &short,
            rows,
            cols,
            false,
            &fitted,
            &levels,
            Rounding::Nearest,
        );
        assert!(r.is_err(), "a short mask was accepted");
    }
}

#[test]
fn stochastic_rounding_is_unbiased_and_beats_uniform_levels_on_heavy_tails() {
    let g = gpu();
    let ts = TinyScript::new(g).unwrap();
    let (rows, cols, seeds) = (8usize, 512usize, 200u32);
    let x = weibull_samples(0.7, 1.0, rows * cols, 11);
    let xb = GpuBuffer::from_slice(g, "x", &x).unwrap();
    let (_, fitted) = ts.fit(g, &xb, rows, cols, 4).unwrap();
    let mut total_var = Vec::new();
    for table in [fitted, LevelTable::uniform(4).unwrap()] {
        let (mut sum, mut sq) = (vec![0f64; x.len()], vec![0f64; x.len()]);
        for s in 0..seeds {
            let mut enc = g.device.create_command_encoder(&Default::default());
            let q = ts
                .encode_quantize(g, &mut enc, &xb, rows, cols, &table, Rounding::Stochastic { seed: s, stream: 1 })
                .unwrap();
            let out = GpuBuffer::<f32>::zeros(g, "out", x.len()).unwrap();
            ts.encode_dequantize(g, &mut enc, &q, &out).unwrap();
            g.queue.submit([enc.finish()]);
            for (i, v) in out.read(g).unwrap().into_iter().enumerate() {
                sum[i] += v as f64;
                sq[i] += (v as f64) * (v as f64);
            }
        }
        let scales = reference::tinyscript::quantize(&x, rows, cols, &table, Rounding::Nearest).1;
        let mut var_sum = 0.0;
        for i in 0..x.len() {
            // Theory: between the two levels around x, variance (hi − x)(x − lo).
            let s = scales[i / cols] as f64;
            let u = (x[i].abs() as f64) / s;
            let unit = table.unit();
            let j = unit.partition_point(|&l| l <= u).clamp(1, unit.len() - 1);
            let (lo, hi) = (unit[j - 1] * s, unit[j] * s);
            let a = x[i].abs() as f64;
            let var = ((hi - a) * (a - lo)).max(0.0);
            let mean = sum[i] / seeds as f64;
            let bound = 6.0 * (var / seeds as f64).sqrt() + 1e-6 * s;
            assert!((mean - x[i] as f64).abs() <= bound, "element {i}: mean {mean} vs {} (bound {bound})", x[i]);
            var_sum += var;
        }
        total_var.push(var_sum);
    }
    assert!(total_var[0] < 0.8 * total_var[1], "fitted {} vs uniform {}", total_var[0], total_var[1]);
}

#[test]
fn gemm_levels_matches_the_decoded_reference() {
    use lowbit::kernels::gemm::{Epilogue, Tile};
    use lowbit::kernels::gemm_levels::GemmLevels;
    use lowbit::reference::gemm_f32::EpilogueRef;
    let g = gpu();
    let ts = TinyScript::new(g).unwrap();
    let gemm = GemmLevels::new(g).unwrap();
    // Includes a long K that the launcher splits.
    for (m, n, k) in [(1usize, 1usize, 1usize), (33, 65, 17), (70, 9, 300), (7, 5, 5003)] {
        // A signed, or unsigned on nonnegative data (a layer input after a ReLU).
        for (bits, signed) in [(3u32, true), (4, true), (3, false)] {
            let mut a = data(m * k, 40 + bits, false);
            if !signed {
                a.iter_mut().for_each(|v| *v = v.abs());
            }
            let b = data(n * k, 41, false);
            let table = LevelTable::uniform_as(bits, signed).unwrap();
            let ab = GpuBuffer::from_slice(g, "a", &a).unwrap();
            let mut enc = g.device.create_command_encoder(&Default::default());
            let q = ts
                .encode_quantize(g, &mut enc, &ab, m, k, &table, Rounding::Stochastic { seed: 1, stream: 2 })
                .unwrap();
            g.queue.submit([enc.finish()]);
            let (codes, scales) = (q.codes.read(g).unwrap(), q.scales.read(g).unwrap());
            for trans_b in [false, true] {
                let bstore: Vec<f32> =
                    if trans_b { (0..n * k).map(|i| b[(i % n) * k + i / n]).collect() } else { b.clone() };
                let bsb = GpuBuffer::from_slice(g, "b", &bstore).unwrap();
                let want = reference::gemm_levels::gemm_levels(
                    &codes,
                    &scales,
                    &table,
                    m,
                    k,
                    &bstore,
                    n,
                    trans_b,
                    &EpilogueRef::default(),
                );
                // B coded as well (fitted-looking levels beside A's table, signed beside an
                // unsigned A and unsigned beside a signed one; B's negative values encode as 0
                // in the unsigned table), scaled per stored row.
                let (brows, bcols) = if trans_b { (k, n) } else { (n, k) };
                let btable = if signed {
                    LevelTable::from_unit(2, &[0.0, 0.05, 0.15, 1.0]).unwrap()
                } else {
                    LevelTable::from_unit(3, &[0.0, 0.05, 0.15, 1.0]).unwrap()
                };
                let mut enc = g.device.create_command_encoder(&Default::default());
                let qb = ts.encode_quantize(g, &mut enc, &bsb, brows, bcols, &btable, Rounding::Nearest).unwrap();
                g.queue.submit([enc.finish()]);
                let want_coded = reference::gemm_levels::gemm_levels_coded(
                    &codes,
                    &scales,
                    &table,
                    m,
                    k,
                    &qb.codes.read(g).unwrap(),
                    &qb.scales.read(g).unwrap(),
                    &btable,
                    n,
                    trans_b,
                    &EpilogueRef::default(),
                );
                for (tile, coded) in Tile::ALL.into_iter().flat_map(|t| [(t, false), (t, true)]) {
                    let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
                    let mut enc = g.device.create_command_encoder(&Default::default());
                    let none = Epilogue::default();
                    if coded {
                        gemm.encode_coded_with(g, &mut enc, tile, &q, &qb, trans_b, &none, &c).unwrap();
                    } else {
                        gemm.encode_with(g, &mut enc, tile, &q, &bsb, n, trans_b, &none, &c).unwrap();
                    }
                    g.queue.submit([enc.finish()]);
                    let got = c.read(g).unwrap();
                    let want = if coded { &want_coded } else { &want };
                    // f32 accumulation over k terms (and split-K partials): (k + 8)·2⁻²⁴ of Σ|terms|.
                    let bound = (k as f64 + 8.0) * 2f64.powi(-24);
                    for (i, &gv) in got.iter().enumerate() {
                        let tol = bound * want.magnitude[i] + 1e-30;
                        let what = format!(
                            "gemm_levels {m}x{n}x{k} {bits}b signed={signed} tb={trans_b} coded={coded} {tile:?} [{i}]"
                        );
                        assert!(((gv as f64) - want.value[i]).abs() <= tol, "{what}: {gv} vs {}", want.value[i]);
                    }
                }
            }
        }
    }
    let mut enc = g.device.create_command_encoder(&Default::default());
    let x = GpuBuffer::from_slice(g, "x", &[1f32; 6]).unwrap();
    let q = ts.encode_quantize(g, &mut enc, &x, 2, 3, &LevelTable::uniform(4).unwrap(), Rounding::Nearest).unwrap();
    let c = GpuBuffer::<f32>::zeros(g, "c", 4).unwrap();
    assert!(gemm.encode(g, &mut enc, &q, &x, 3, false, &Epilogue::default(), &c).is_err(), "b of the wrong size");
}

#[test]
fn fitting_rows_and_columns_at_once_gives_the_tables_of_two_fits() {
    let g = gpu();
    let ts = TinyScript::new(g).unwrap();
    let (rows, cols) = (37usize, 300usize);
    let x = weibull_samples(0.8, 0.3, rows * cols, 21);
    let xb = GpuBuffer::from_slice(g, "x", &x).unwrap();
    let (fit, by_row, by_col) = ts.fit_rows_and_columns(g, &xb, (rows, cols), (3, true), (4, false)).unwrap();
    let (fit_r, want_row) = ts.fit_as(g, &xb, rows, cols, false, 3, true).unwrap();
    let (_, want_col) = ts.fit_as(g, &xb, cols, rows, true, 4, false).unwrap();
    assert_eq!((fit, by_row, by_col), (fit_r, want_row, want_col));
    let zeros = GpuBuffer::<f32>::zeros(g, "zeros", rows * cols).unwrap();
    assert!(ts.fit_rows_and_columns(g, &zeros, (rows, cols), (3, true), (3, true)).is_err(), "nothing to fit");
    assert!(ts.fit_rows_and_columns(g, &xb, (rows, cols + 1), (3, true), (3, true)).is_err(), "wrong size");
}
