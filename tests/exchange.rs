//! The pieces of data-parallel training that need no MPI: a step split into `backward` and
//! `apply_gradients` is the step; the gradient codecs (fp32 exact; int8 and log4 unbiased with
//! the variance stochastic rounding has on their grids; error feedback's residual exact) over
//! two simulated replicas; the `error_feedback` kernel against its reference.

mod common;
use common::{assert_f32_bits_eq, data, gpu};
use lowbit::dist::{Codec, Exchange};
use lowbit::format::{scale::scale_for_amax, Format};
use lowbit::nn::{ModelSpec, OptimConfig, Optimizer, TrainScheme, Trainer};

const BATCH: usize = 16;

fn mlp(scheme: &str, optimizer: Optimizer, seed: u32) -> Trainer {
    let opt = OptimConfig { lr: 0.1, batch: BATCH, optimizer, ..Default::default() };
    Trainer::new(gpu(), ModelSpec::mlp((4, 4, 1), &[24], 5), TrainScheme::preset(scheme).unwrap(), opt, seed).unwrap()
}

fn batch(i: u32) -> (Vec<f32>, Vec<u32>) {
    let x = data(BATCH * 16, 100 + i, false);
    let y = (0..BATCH as u32).map(|j| lowbit::rng::draw(lowbit::rng::key(i, 9), j) % 5).collect();
    (x, y)
}

#[test]
fn backward_then_apply_gradients_is_a_step() {
    for (scheme, optimizer) in [("int8", Optimizer::Sgd), ("luq4+all", Optimizer::ADAMW), ("fp32", Optimizer::ADAMW)] {
        let (mut a, mut b) = (mlp(scheme, optimizer, 7), mlp(scheme, optimizer, 7));
        for i in 0..3 {
            let (x, y) = batch(i);
            a.step(&x, &y, 0.05).unwrap();
            b.backward(&x, &y).unwrap();
            b.apply_gradients(0.05).unwrap();
        }
        a.flush().unwrap();
        for ((n, _, p), (_, _, q)) in a.parameters().unwrap().iter().zip(b.parameters().unwrap()) {
            assert_f32_bits_eq(&format!("{scheme} {n}"), &q, p);
        }
    }
}

#[test]
fn apply_gradients_refuses_what_it_cannot_apply_and_changes_nothing() {
    let mut t = mlp("fp32", Optimizer::Sgd, 1);
    assert!(t.apply_gradients(0.1).is_err(), "no backward yet");
    let (x, y) = batch(0);
    t.backward(&x, &y).unwrap();
    assert!(t.apply_gradients(f32::NAN).is_err());
    let before = t.parameters().unwrap();
    let codec = Codec::new(&t, Exchange::FP32).unwrap();
    let mut g = codec.decode_mean(&[&codec.encode(0, 0, 1).unwrap()]).unwrap();
    g[0][3] = f32::INFINITY;
    codec.write(&g).unwrap();
    assert!(matches!(t.apply_gradients(0.1), Err(lowbit::Error::NonFinite { .. })));
    assert_eq!(t.parameters().unwrap(), before, "a non-finite gradient changed a parameter");
    assert!(codec.write(&g[1..]).is_err());
    assert!(codec.decode_mean(&[&[0u8; 12]]).is_err());
}

/// Two replicas (same initial parameters, different batches) and their codecs.
fn replicas(exchange: Exchange) -> [(Trainer, Codec); 2] {
    [0, 1].map(|r| {
        let mut t = mlp("fp32", Optimizer::Sgd, 3);
        t.set_replica(r, 2).unwrap();
        let (x, y) = batch(r + 1);
        t.backward(&x, &y).unwrap();
        let c = Codec::new(&t, exchange).unwrap();
        (t, c)
    })
}

#[test]
fn the_fp32_exchange_averages_exactly_in_rank_order() {
    let [(_, c0), (_, c1)] = replicas(Exchange::FP32);
    let (p0, p1) = (c0.encode(0, 0, 2).unwrap(), c1.encode(0, 1, 2).unwrap());
    assert_eq!(p0.len(), 4 * c0.values());
    let (g0, g1) = (c0.decode_mean(&[&p0]).unwrap(), c0.decode_mean(&[&p1]).unwrap());
    let mean = c0.decode_mean(&[&p0, &p1]).unwrap();
    for t in 0..mean.len() {
        let want: Vec<f32> = g0[t].iter().zip(&g1[t]).map(|(a, b)| (a + b) / 2.0).collect();
        assert_f32_bits_eq(&format!("tensor {t}"), &mean[t], &want);
    }
    assert_eq!(mean, c1.decode_mean(&[&p0, &p1]).unwrap(), "both replicas decode the same bits");
}

/// Row scales of a `[rows, cols]` tensor in `format`, per the spec.
fn row_scales(g: &[f32], cols: usize, format: Format) -> Vec<f32> {
    g.chunks(cols).map(|r| scale_for_amax(r.iter().fold(0f32, |m, v| m.max(v.abs())), format).0).collect()
}

/// The two grid points around `x` for `format` at scale `s` (stochastic rounding's outcomes).
fn neighbours(format: Format, x: f32, s: f32) -> (f64, f64) {
    let inv = lowbit::format::recip_rne(s);
    let lo = format.dequantize(format.quantize(x, inv, true, (1 << 24) - 1), s) as f64;
    let hi = format.dequantize(format.quantize(x, inv, true, 0), s) as f64;
    (lo.min(hi), lo.max(hi))
}

#[test]
fn compressed_exchanges_are_unbiased_with_their_grids_variance() {
    const DRAWS: u64 = 400;
    const Z: f64 = 6.0;
    for (exchange, format) in [("int8", Format::Int8), ("log4", Format::Log4)] {
        let exchange = Exchange::parse(exchange).unwrap();
        let [(t0, c0), (_, c1)] = replicas(exchange);
        let [(_, f0), (_, f1)] = replicas(Exchange::FP32);
        let shapes: std::collections::HashMap<String, Vec<usize>> =
            t0.parameters().unwrap().into_iter().map(|(n, s, _)| (n, s)).collect();
        let exact = [
            f0.decode_mean(&[&f0.encode(0, 0, 2).unwrap()]).unwrap(),
            f1.decode_mean(&[&f1.encode(0, 1, 2).unwrap()]).unwrap(),
        ];
        let n = c0.values();
        let (mut sum, mut sum2) = (vec![0f64; n], vec![0f64; n]);
        for step in 0..DRAWS {
            let mean = c0.decode_mean(&[&c0.encode(step, 0, 2).unwrap(), &c1.encode(step, 1, 2).unwrap()]).unwrap();
            for (i, v) in mean.iter().flatten().enumerate() {
                sum[i] += *v as f64;
                sum2[i] += (*v as f64).powi(2);
            }
        }
        // Per value: the mean of two independent roundings, each with variance (hi−x)(x−lo).
        let names = c0.names();
        let (mut i, mut var_th_sum, mut var_sum, mut bias_sum) = (0, 0f64, 0f64, 0f64);
        for (t, name) in names.iter().enumerate() {
            let (g0, g1) = (&exact[0][t], &exact[1][t]);
            // A row is a weight's output row; a bias is one row.
            let shape = &shapes[*name];
            let cols = if shape.len() > 1 { g0.len() / shape[0] } else { g0.len() };
            let (s0, s1) = (row_scales(g0, cols, format), row_scales(g1, cols, format));
            for j in 0..g0.len() {
                let (x0, x1) = (g0[j], g1[j]);
                let v = |x: f32, s: f32| {
                    let (lo, hi) = neighbours(format, x, s);
                    ((hi - x as f64) * (x as f64 - lo)).max(0.0)
                };
                let var_th = (v(x0, s0[j / cols]) + v(x1, s1[j / cols])) / 4.0;
                let want = (x0 as f64 + x1 as f64) / 2.0;
                let mean = sum[i] / DRAWS as f64;
                let var = sum2[i] / DRAWS as f64 - mean * mean;
                let step = (x0.abs().max(x1.abs()) as f64) * 1e-6;
                let tol = Z * (var_th / DRAWS as f64).sqrt()
                    + 2.0 * (var_th.sqrt() + step) * Z * Z / (3.0 * DRAWS as f64)
                    + step;
                assert!(
                    (mean - want).abs() <= tol,
                    "{exchange} {name}[{j}]: mean {mean:e} vs {want:e} (bound {tol:e})"
                );
                var_th_sum += var_th;
                var_sum += var * DRAWS as f64 / (DRAWS - 1) as f64;
                bias_sum += mean - want;
                i += 1;
            }
        }
        let ratio = var_sum / var_th_sum;
        eprintln!("{exchange}: {n} values, summed bias {bias_sum:+.3e}, variance measured/theory {ratio:.4}");
        assert!((ratio - 1.0).abs() < 0.1, "{exchange}: measured/theoretical variance {ratio:.4}");
        assert!(
            bias_sum.abs() <= Z * (var_th_sum / DRAWS as f64).sqrt() + 1e-6,
            "{exchange}: summed bias {bias_sum:e}"
        );
    }
}

#[test]
fn error_feedback_carries_exactly_what_the_encoding_lost() {
    let exchange = Exchange::parse("log4+ef").unwrap();
    let [(_, c), _] = replicas(exchange);
    let [(_, f), _] = replicas(Exchange::FP32);
    let g = f.decode_mean(&[&f.encode(0, 0, 2).unwrap()]).unwrap();
    let mut e: Vec<Vec<f32>> = g.iter().map(|t| vec![0.0; t.len()]).collect();
    for step in 0..4 {
        let d = c.decode_mean(&[&c.encode(step, 0, 1).unwrap()]).unwrap();
        // v = g + e (f32), then e' = v − d, as the add and error_feedback kernels compute it.
        for t in 0..g.len() {
            let v = lowbit::reference::add::add(&g[t], Some(&e[t]), false);
            e[t] = lowbit::reference::error_feedback::error_feedback(&v, &d[t]);
        }
        let got = c.residuals().unwrap();
        for t in 0..g.len() {
            assert_f32_bits_eq(&format!("step {step} residual {t}"), &got[t], &e[t]);
        }
    }
    assert!(Exchange::parse("fp32+ef").is_err() && Exchange::parse("int7").is_err());
}

#[test]
fn the_error_feedback_kernel_matches_its_reference() {
    use lowbit::{GpuBuffer, Recorder};
    let g = gpu();
    let n = 1000;
    let (v, d) = (data(n, 1, true), data(n, 2, true));
    let (vb, db) = (GpuBuffer::from_slice(g, "v", &v).unwrap(), GpuBuffer::from_slice(g, "d", &d).unwrap());
    let e = GpuBuffer::<f32>::zeros(g, "e", n).unwrap();
    let k = lowbit::kernels::error_feedback::ErrorFeedback::new(g).unwrap();
    let mut rec = Recorder::new(g, "test");
    k.encode(g, &mut rec, &vb, &db, &e).unwrap();
    g.submit([rec.finish()]);
    assert_f32_bits_eq(
        "error_feedback",
        &e.read(g).unwrap(),
        &lowbit::reference::error_feedback::error_feedback(&v, &d),
    );
    let short = GpuBuffer::<f32>::zeros(g, "short", n - 1).unwrap();
    let mut rec = Recorder::new(g, "test");
    assert!(k.encode(g, &mut rec, &vb, &short, &e).is_err());
}

#[test]
fn log4_exchanges_at_most_a_seventh_of_fp32s_bytes_for_the_mnist_models() {
    for model in ["mlp", "cnn"] {
        let spec = ModelSpec::by_name(model, (28, 28, 1), 10).unwrap();
        let t = Trainer::new(gpu(), spec, TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), 1).unwrap();
        let bytes = |e: &str| Codec::new(&t, Exchange::parse(e).unwrap()).unwrap().payload_bytes();
        let (fp32, int8, log4) = (bytes("fp32"), bytes("int8"), bytes("log4"));
        eprintln!("{model}: fp32 {fp32}, int8 {int8}, log4 {log4} bytes per replica per step");
        assert_eq!(fp32, 4 * Codec::new(&t, Exchange::FP32).unwrap().values());
        assert!(7 * log4 <= fp32, "{model}: log4 {log4} bytes vs fp32 {fp32}");
        assert!(int8 < fp32 / 3, "{model}: int8 {int8} bytes vs fp32 {fp32}");
    }
}
