//! The training engine: every layer's backward against finite differences (fp32), the quantized
//! weight gradient unbiased against the exact product over seeds, checkpoints, determinism, bad
//! input, and a short training run on the embedded MNIST that must clear a bar a broken engine
//! cannot reach.

mod common;
use common::{data, gpu};
use lowbit::data::mnist::Mnist;
use lowbit::format::Format;
use lowbit::nn::{
    ForwardPrecision, GradPrecision, LayerScheme, LayerSpec, ModelSpec, OptimConfig, TrainScheme, Trainer,
};
use lowbit::scheme::{QuantLayout, Rounding};
use lowbit::{reference, Error};

/// One SGD step with lr 1, no momentum or decay, returns the gradients as `old − new`.
fn gradients(t: &mut Trainer, x: &[f32], labels: &[u32]) -> Vec<(String, Vec<f32>)> {
    let before = t.parameters().unwrap();
    t.step(x, labels, 1.0).unwrap();
    let after = t.parameters().unwrap();
    for (name, _, v) in &before {
        t.set_parameter(name, v).unwrap();
    }
    before
        .iter()
        .zip(after)
        .map(|((n, _, a), (_, _, b))| (n.clone(), a.iter().zip(&b).map(|(x, y)| x - y).collect()))
        .collect()
}

fn fd_check(spec: ModelSpec, batch: usize) {
    let opt = OptimConfig { lr: 1.0, momentum: 0.0, weight_decay: 0.0, batch, ..Default::default() };
    let mut t = Trainer::new(gpu(), spec.clone(), TrainScheme::preset("fp32").unwrap(), opt, 3).unwrap();
    common::fd_check(&mut t, &spec.name, batch);
}

#[test]
fn mlp_backward_matches_finite_differences() {
    fd_check(ModelSpec::mlp((4, 4, 1), &[12, 8], 3), 6);
}

#[test]
fn cnn_backward_matches_finite_differences() {
    fd_check(common::tiny_cnn(), 4);
    let pooled = ModelSpec {
        name: "tiny-avgpool".into(),
        input: (4, 4, 2),
        layers: vec![
            LayerSpec::Conv { channels: 3, kernel: 3, stride: 1, pad: 1, relu: true, bias: false },
            LayerSpec::AvgPool { k: 2 },
            LayerSpec::BatchNorm { relu: false },
            LayerSpec::Linear { outputs: 3, relu: false },
        ],
    };
    fd_check(pooled, 4);
}

#[test]
fn batch_norm_running_statistics_are_checkpointed() {
    let g = gpu();
    let spec = ModelSpec::cnn((8, 8, 1), &[4], 3);
    let opt = OptimConfig { batch: 4, ..Default::default() };
    let scheme = TrainScheme::preset("int8").unwrap();
    let x = data(4 * 64, 83, false);
    let labels = [0, 1, 2, 0];
    let mut a = Trainer::new(g, spec.clone(), scheme.clone(), opt, 2).unwrap();
    for _ in 0..3 {
        a.step(&x, &labels, 0.05).unwrap();
    }
    let params = a.parameters().unwrap();
    let mean = &params.iter().find(|p| p.0 == "layers.1.running_mean").expect("running mean").2;
    assert!(mean.iter().any(|&m| m != 0.0), "training steps must move the running mean");
    let path = std::env::temp_dir().join(format!("lowbit-bn-{}.safetensors", std::process::id()));
    a.save(&path).unwrap();
    let mut b = Trainer::new(g, spec, scheme, opt, 9).unwrap();
    b.load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    // Evaluation normalizes with the running statistics, so equal logits need them loaded.
    assert_eq!(a.logits(&x, 4).unwrap(), b.logits(&x, 4).unwrap());
    assert!(matches!(b.set_parameter("layers.1.running_var", &[1.0; 3]), Err(Error::Shape { .. })));
}

#[test]
fn quantized_weight_gradient_is_unbiased_over_seeds() {
    // One Linear layer, INT8 forward, LUQ log4 gradient: dW = Q(dZ)ᵀ·Q(X) where Q(X) is the
    // saved (deterministic, nearest) activation and Q(dZ) is stochastic. Its mean over T seeds
    // must match the exact dZᵀ·deq(Q(X)) within Z standard errors (plus f32 rounding).
    const T: u32 = 64;
    const Z: f64 = 6.0;
    let g = gpu();
    let (batch, inputs, classes) = (32usize, 24usize, 5usize);
    let spec = ModelSpec::mlp((1, 1, inputs), &[], classes);
    let ls = LayerScheme { forward: ForwardPrecision::Int8, gradient: GradPrecision::Luq4, ..LayerScheme::FP32 };
    let scheme = TrainScheme::preset("fp32").unwrap().with_layer(0, ls).unwrap();
    let opt = OptimConfig { lr: 1.0, momentum: 0.0, weight_decay: 0.0, batch, ..Default::default() };
    let x = data(batch * inputs, 71, false);
    let labels: Vec<u32> = (0..batch as u32).map(|i| (i * 3) % classes as u32).collect();
    let base = Trainer::new(g, spec.clone(), scheme.clone(), opt, 1000).unwrap().parameters().unwrap();
    // Exact product with the trainer's own (quantized-forward) logits.
    let probe = Trainer::new(g, spec.clone(), scheme.clone(), opt, 1000).unwrap();
    let logits = probe.logits(&x, batch).unwrap();
    let (_, _, dz) = reference::softmax_xent::softmax_xent(&logits, &labels, classes, 1.0 / batch as f32);
    let l = QuantLayout::new(inputs, batch, Format::Int8, lowbit::scheme::Granularity::PerRow).unwrap();
    let amax = reference::absmax::absmax(&x, &l, true);
    let (scales, inv) = reference::scale::scale(&amax, Format::Int8);
    let codes = reference::quantize_transpose::quantize_transpose(&x, &inv, &l, Rounding::Nearest);
    let xq_t = reference::dequantize::dequantize(&codes, &scales, &l); // [inputs, batch]
    let exact =
        reference::gemm_f32::gemm_f32(&dz, &xq_t, classes, inputs, batch, true, false, &Default::default()).value;
    let n = classes * inputs;
    let (mut s1, mut s2) = (vec![0f64; n], vec![0f64; n]);
    for seed in 0..T {
        let mut t = Trainer::new(g, spec.clone(), scheme.clone(), opt, 2000 + seed).unwrap();
        for (name, _, v) in &base {
            t.set_parameter(name, v).unwrap();
        }
        let grads = gradients(&mut t, &x, &labels);
        for (i, v) in grads[0].1.iter().enumerate() {
            s1[i] += *v as f64;
            s2[i] += (*v as f64).powi(2);
        }
    }
    let tt = T as f64;
    for i in 0..n {
        let mean = s1[i] / tt;
        let var = ((s2[i] - tt * mean * mean) / (tt - 1.0)).max(0.0);
        let tol = Z * (var / tt).sqrt() + 1e-4 * exact[i].abs() + 1e-6;
        assert!((mean - exact[i]).abs() <= tol, "dW[{i}]: mean {mean} exact {} (tol {tol:e})", exact[i]);
    }
}

#[test]
fn same_seed_same_run_and_checkpoints_round_trip() {
    let g = gpu();
    let spec = ModelSpec::mlp((4, 4, 1), &[16], 4);
    let opt = OptimConfig { batch: 8, ..Default::default() };
    let scheme = TrainScheme::preset("luq4+all4").unwrap();
    let x = data(8 * 16, 81, false);
    let labels: Vec<u32> = (0..8).map(|i| i % 4).collect();
    let run = || {
        let mut t = Trainer::new(g, spec.clone(), scheme.clone(), opt, 5).unwrap();
        for _ in 0..3 {
            t.step(&x, &labels, 0.1).unwrap();
        }
        t
    };
    let (a, b) = (run(), run());
    let (pa, pb) = (a.parameters().unwrap(), b.parameters().unwrap());
    for ((n, _, va), (_, _, vb)) in pa.iter().zip(&pb) {
        assert!(
            va.iter().zip(vb).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{n} differs between two runs with the same seed"
        );
    }
    let dir = std::env::temp_dir().join(format!("lowbit-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.safetensors");
    a.save(&path).unwrap();
    let mut c = Trainer::new(g, spec.clone(), scheme.clone(), opt, 99).unwrap();
    c.load(&path).unwrap();
    assert_eq!(c.logits(&x, 8).unwrap(), a.logits(&x, 8).unwrap());
    // A checkpoint of another model is refused and leaves the parameters alone.
    let other = Trainer::new(g, ModelSpec::mlp((4, 4, 1), &[8], 4), scheme.clone(), opt, 1).unwrap();
    let wrong = dir.join("wrong.safetensors");
    other.save(&wrong).unwrap();
    let before = c.parameters().unwrap();
    assert!(matches!(c.load(&wrong), Err(Error::Data { .. })));
    assert!(matches!(c.load(dir.join("missing.safetensors")), Err(Error::Io { .. })));
    std::fs::write(dir.join("junk.safetensors"), b"not a checkpoint").unwrap();
    assert!(matches!(c.load(dir.join("junk.safetensors")), Err(Error::Data { .. })));
    assert_eq!(
        before.iter().map(|p| p.2.clone()).collect::<Vec<_>>(),
        c.parameters().unwrap().iter().map(|p| p.2.clone()).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// How far a model's logits may move when a convolution's bias is folded into the batch norm
/// that follows it: the batch norm's input `(c + b) − m` becomes `c − (m − b)`, rounded in
/// another order (a few ulps of the values, times γ/σ), relative to the logit's magnitude
/// (observed: 1e-7).
const FOLDED_BIAS_TOL: f32 = 1e-5;

#[test]
fn a_convolutions_bias_before_batch_norm_folds_into_its_running_mean() {
    let g = gpu();
    let opt = OptimConfig { batch: 8, ..Default::default() };
    let scheme = TrainScheme::preset("fp32").unwrap();
    let x = data(8 * 16, 83, false);
    let labels: Vec<u32> = (0..8).map(|i| i % 4).collect();
    let spec = |bias: bool, bn: bool| ModelSpec {
        name: "conv-bn".into(),
        input: (4, 4, 1),
        layers: [LayerSpec::Conv { channels: 2, kernel: 3, stride: 1, pad: 1, relu: !bn, bias }]
            .into_iter()
            .chain(bn.then_some(LayerSpec::BatchNorm { relu: true }))
            .chain([LayerSpec::Linear { outputs: 4, relu: false }])
            .collect(),
    };
    let dir = std::env::temp_dir().join(format!("lowbit-fold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A CNN saved while its convolution had a bias (lowbit's CNNs had one before batch norm until
    // they dropped it), trained so that the running mean holds it.
    let mut biased = Trainer::new(g, spec(true, true), scheme.clone(), opt, 3).unwrap();
    biased.set_parameter("layers.0.bias", &[0.75, -1.5]).unwrap();
    for _ in 0..3 {
        biased.step(&x, &labels, 0.1).unwrap();
    }
    let old = dir.join("old.safetensors");
    biased.save(&old).unwrap();
    let mut plain = Trainer::new(g, spec(false, true), scheme.clone(), opt, 4).unwrap();
    plain.load(&old).unwrap();
    let (was, now) = (biased.parameters().unwrap(), plain.parameters().unwrap());
    let get = |ps: &[(String, Vec<usize>, Vec<f32>)], name: &str| ps.iter().find(|p| p.0 == name).unwrap().2.clone();
    let bias = get(&was, "layers.0.bias");
    assert!(bias.iter().all(|b| b.abs() > 0.5), "the bias stays: batch norm cancels its gradient ({bias:?})");
    let mean = get(&was, "layers.1.running_mean");
    let folded: Vec<f32> = mean.iter().zip(&bias).map(|(m, b)| m - b).collect();
    assert_eq!(get(&now, "layers.1.running_mean"), folded);
    for (name, _, v) in now.iter().filter(|p| p.0 != "layers.1.running_mean") {
        assert_eq!(&get(&was, name), v, "{name} loads as saved");
    }
    let (want, got) = (biased.logits(&x, 8).unwrap(), plain.logits(&x, 8).unwrap());
    for (i, (w, v)) in want.iter().zip(&got).enumerate() {
        assert!((w - v).abs() <= FOLDED_BIAS_TOL * (1.0 + w.abs()), "logit {i}: {v}, the biased model's {w}");
    }
    // A Bit-Mixer model's transitional states of the batch norm take the bias too.
    let int8 = TrainScheme::preset("int8").unwrap();
    let mut mixed = Trainer::new(g, spec(true, true), int8.clone(), opt, 7).unwrap();
    mixed.enable_transitional_bn().unwrap();
    mixed.set_parameter("layers.0.bias", &[0.75, -1.5]).unwrap();
    mixed.set_bits(0, 4).unwrap();
    mixed.step(&x, &labels, 0.1).unwrap();
    let old_mixed = dir.join("old_mixed.safetensors");
    mixed.save(&old_mixed).unwrap();
    let mut plain_mixed = Trainer::new(g, spec(false, true), int8, opt, 8).unwrap();
    plain_mixed.enable_transitional_bn().unwrap();
    plain_mixed.set_bits(0, 4).unwrap();
    plain_mixed.load(&old_mixed).unwrap();
    let (was, now) = (mixed.parameters().unwrap(), plain_mixed.parameters().unwrap());
    let bias = get(&was, "layers.0.bias");
    let means: Vec<&String> =
        now.iter().map(|p| &p.0).filter(|n| n.starts_with("layers.1.") && n.ends_with("running_mean")).collect();
    assert!(means.len() > 1 && means.iter().any(|n| n.contains("tbn4_8")), "{means:?}");
    for name in means {
        let folded: Vec<f32> = get(&was, name).iter().zip(&bias).map(|(m, b)| m - b).collect();
        assert_eq!(get(&now, name), folded, "{name}");
    }
    // No fold where no batch norm follows: such a bias changes the output, so the checkpoint is
    // refused by name, and nothing is changed.
    let no_bn = dir.join("no_bn.safetensors");
    Trainer::new(g, spec(true, false), scheme.clone(), opt, 5).unwrap().save(&no_bn).unwrap();
    let mut bare = Trainer::new(g, spec(false, false), scheme.clone(), opt, 6).unwrap();
    let kept = bare.parameters().unwrap();
    match bare.load(&no_bn) {
        Err(Error::Data { detail, .. }) => assert!(detail.contains("layers.0.bias"), "{detail}"),
        other => panic!("a bias with no batch norm to take it: {other:?}"),
    }
    assert_eq!(kept, bare.parameters().unwrap());
    // A bias of the wrong length is refused, naming both tensors, and nothing is changed.
    let bytes = std::fs::read(&old).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let long = [0.5f32; 3];
    let views: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| match n.as_str() {
            "layers.0.bias" => {
                let v = safetensors::tensor::TensorView::new(t.dtype(), vec![3], bytemuck::cast_slice(&long));
                (n, v.unwrap())
            }
            _ => (n, t),
        })
        .collect();
    let bad = dir.join("bad.safetensors");
    safetensors::serialize_to_file(views, &None, &bad).unwrap();
    let before = plain.parameters().unwrap();
    match plain.load(&bad) {
        Err(Error::Data { detail, .. }) => {
            assert!(detail.contains("layers.0.bias") && detail.contains("layers.1.running_mean"), "{detail}")
        }
        other => panic!("a bias of the wrong length: {other:?}"),
    }
    assert_eq!(before, plain.parameters().unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_training_input_is_an_error() {
    let g = gpu();
    let spec = ModelSpec::mlp((2, 2, 1), &[4], 3);
    let mut t =
        Trainer::new(g, spec, TrainScheme::preset("int8").unwrap(), OptimConfig { batch: 4, ..Default::default() }, 1)
            .unwrap();
    assert!(matches!(t.step(&[0.0; 15], &[0, 1, 2, 0], 0.1), Err(Error::Shape { .. })));
    assert!(matches!(t.step(&[0.0; 16], &[0, 1, 2, 3], 0.1), Err(Error::InvalidArgument(_))));
    assert!(matches!(t.step(&[], &[], 0.1), Err(Error::Empty(_))));
    assert!(matches!(t.set_parameter("layers.9.weight", &[0.0]), Err(Error::InvalidArgument(_))));
    let bad_model = ModelSpec {
        name: "x".into(),
        input: (2, 2, 1),
        layers: vec![LayerSpec::MaxPool { k: 4 }, LayerSpec::Linear { outputs: 2, relu: false }],
    };
    assert!(Trainer::new(g, bad_model, TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), 1).is_err());
    let rot = TrainScheme::preset("int8+rot16").unwrap();
    assert!(matches!(
        Trainer::new(g, ModelSpec::mlp((2, 2, 1), &[4], 3), rot, OptimConfig { batch: 24, ..Default::default() }, 1),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn short_training_on_embedded_mnist_learns() {
    // 40 steps of batch 128 on 5,120 real MNIST images. A broken engine stays near 10% test
    // accuracy and a loss of ln 10 = 2.30; a working one passes 80% (it reaches ~85%) and cuts the loss by half.
    const MIN_ACC: f64 = 0.80;
    let g = gpu();
    let mnist = Mnist::embedded().unwrap();
    let train = mnist.train.take(5120);
    for scheme in ["fp32", "luq4"] {
        let spec = ModelSpec::by_name("mlp", train.shape(), 10).unwrap();
        let mut t = Trainer::new(g, spec, TrainScheme::preset(scheme).unwrap(), OptimConfig::default(), 11).unwrap();
        let mut losses = Vec::new();
        t.train_epoch(&train, 0, 40, |_, s| losses.push(s.loss)).unwrap();
        let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
        let last: f32 = losses[losses.len() - 5..].iter().sum::<f32>() / 5.0;
        let (acc, _) = t.evaluate(&mnist.test).unwrap();
        eprintln!("{scheme}: loss {first:.3} -> {last:.3}, test acc {:.2}%", acc * 100.0);
        assert!(last < 0.5 * first, "{scheme}: loss did not fall enough ({first} -> {last})");
        assert!(acc >= MIN_ACC, "{scheme}: test accuracy {acc} below {MIN_ACC}");
        assert!(t.activation_bytes().stored <= t.activation_bytes().fp32);
    }
}

#[test]
fn trainer_gradients_are_what_a_step_applies() {
    let g = gpu();
    let spec = ModelSpec::mlp((4, 4, 1), &[12], 3);
    let opt = OptimConfig { lr: 1.0, momentum: 0.0, weight_decay: 0.0, batch: 8, ..Default::default() };
    let x = data(8 * 16, 71, false);
    let labels: Vec<u32> = (0..8).map(|i| i % 3).collect();
    let scheme = TrainScheme::preset("int8").unwrap();
    let mut a = Trainer::new(g, spec.clone(), scheme.clone(), opt, 4).unwrap();
    let mut b = Trainer::new(g, spec, scheme, opt, 4).unwrap();
    // Same seed and step count: the same stochastic rounding, so old − new equals the gradient
    // up to the rounding of the subtraction.
    let stepped = gradients(&mut a, &x, &labels);
    let direct = b.gradients(&x, &labels).unwrap();
    assert_eq!(b.parameters().unwrap(), a.parameters().unwrap(), "gradients() must not update parameters");
    for ((n, d), (m, _, v)) in stepped.iter().zip(&direct) {
        assert_eq!(n, m);
        for (p, q) in d.iter().zip(v) {
            assert!((p - q).abs() <= 1e-6 * (1.0 + q.abs()), "{n}: step {p} vs gradients() {q}");
        }
    }
}

#[test]
fn variance_meter_sees_unbiased_quantizers_and_smp_dividing_variance() {
    use lowbit::nn::variance::{measure, standard_quantizers};
    let g = gpu();
    let spec = ModelSpec::mlp((6, 6, 1), &[32], 4);
    let t = Trainer::new(g, spec.clone(), TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), 8).unwrap();
    let params = t.parameters().unwrap();
    let batches: Vec<_> = (0..4u32)
        .map(|b| (data(32 * 36, 90 + b, false), (0..32u32).map(|i| (i * 7 + b) % 4).collect::<Vec<_>>()))
        .collect();
    let qs = standard_quantizers(4, ForwardPrecision::Int8, 4, 8).unwrap();
    let names: Vec<&str> = qs.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        ["uniform-tensor", "uniform-tensor+smp4", "psq", "psq+smp4", "bhq", "bhq+smp4", "luq", "luq+smp4"]
    );
    let samples = 48;
    let mut calls = 0;
    let rows = measure(g, &spec, &params, ForwardPrecision::Int8, &batches, &qs, samples, |_, _| calls += 1).unwrap();
    assert_eq!(calls, batches.len() + qs.len() * samples);
    assert_eq!(rows.len(), 2 * qs.len(), "two weight layers per quantizer");
    let get = |layer: &str, q: &str| rows.iter().find(|r| r.layer == layer && r.quantizer == q).unwrap();
    for r in &rows {
        assert!(r.variance > 0.0 && r.minibatch_variance > 0.0, "{r:?}");
        assert!((r.rel_variance - r.variance / r.minibatch_variance).abs() <= 1e-12 * r.rel_variance, "{r:?}");
        // Unbiased: E‖mean − g‖² = variance / samples; allow 4× that.
        assert!(
            r.bias * r.bias <= 4.0 * r.variance / samples as f64,
            "{} {}: bias {} vs variance {}",
            r.layer,
            r.quantizer,
            r.bias,
            r.variance
        );
    }
    // At 8 bits the variance is small: a reference that differed from the quantizers in anything
    // but the gradient quantizer (the forward operands, the rotation) would show as bias.
    let q8: Vec<_> = standard_quantizers(8, ForwardPrecision::Int8, 1, 8).unwrap();
    let rows8 = measure(g, &spec, &params, ForwardPrecision::Int8, &batches, &q8, 32, |_, _| {}).unwrap();
    for r in &rows8 {
        assert!(
            r.bias * r.bias <= 4.0 * r.variance / 32.0,
            "8-bit {} {}: bias {} vs variance {}",
            r.layer,
            r.quantizer,
            r.bias,
            r.variance
        );
    }
    for layer in ["layers.0.weight", "layers.1.weight"] {
        for q in ["uniform-tensor", "psq", "bhq", "luq"] {
            let ratio = get(layer, &format!("{q}+smp4")).variance / get(layer, q).variance;
            assert!((0.15..0.4).contains(&ratio), "{layer} {q}: SMP 4 variance ratio {ratio}, theory 0.25");
        }
    }
}

#[test]
fn tinyscript_gradients_are_unbiased_and_train() {
    use lowbit::nn::variance::{measure, MeterQuantizer};
    let g = gpu();
    let spec = ModelSpec::mlp((6, 6, 1), &[32], 4);
    let t = Trainer::new(g, spec.clone(), TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), 8).unwrap();
    let params = t.parameters().unwrap();
    let batches: Vec<_> = (0..3u32)
        .map(|b| (data(32 * 36, 95 + b, false), (0..32u32).map(|i| (i * 5 + b) % 4).collect::<Vec<_>>()))
        .collect();
    // The gradient quantizers alone (+fwd32: fp32 forward, as the reference).
    let qs: Vec<MeterQuantizer> = ["tinyscript4", "levels4", "tinyscript3"]
        .iter()
        .map(|n| MeterQuantizer {
            name: n.to_string(),
            bits: 4,
            scheme: TrainScheme::preset(&format!("{n}+fwd32")).unwrap().default,
        })
        .collect();
    let samples = 48;
    let rows = measure(g, &spec, &params, ForwardPrecision::Fp32, &batches, &qs, samples, |_, _| {}).unwrap();
    for r in &rows {
        assert!(r.variance > 0.0, "{r:?}");
        assert!(
            r.bias * r.bias <= 4.0 * r.variance / samples as f64,
            "{} {}: bias {} vs variance {}",
            r.layer,
            r.quantizer,
            r.bias,
            r.variance
        );
    }
    // Fewer bits, more variance.
    for layer in ["layers.0.weight", "layers.1.weight"] {
        let v = |q: &str| rows.iter().find(|r| r.layer == layer && r.quantizer == q).unwrap().variance;
        assert!(v("tinyscript3") > v("tinyscript4"), "{layer}");
    }
    // It trains: a fixed batch is fitted (the levels are refit after the first step).
    let opt = OptimConfig { batch: 32, ..Default::default() };
    let mut tr = Trainer::new(g, spec, TrainScheme::preset("tinyscript4").unwrap(), opt, 3).unwrap();
    let (x, labels) = &batches[0];
    let first = tr.step(x, labels, 0.1).unwrap().loss;
    let mut last = first;
    for _ in 0..40 {
        last = tr.step(x, labels, 0.1).unwrap().loss;
    }
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert!(TrainScheme::preset("tinyscript9").is_err() && TrainScheme::preset("levels1").is_err());
    let bad = LayerScheme { forward: ForwardPrecision::Int8, ..TrainScheme::preset("tinyscript").unwrap().default };
    assert!(bad.check().is_err(), "TinyScript gradients need an fp32 or TinyScript forward");
    let bad = LayerScheme { gradient: GradPrecision::Int8, ..TrainScheme::preset("tinyscript").unwrap().default };
    assert!(bad.check().is_err(), "a TinyScript forward needs a TinyScript gradient");
    assert!(TrainScheme::preset("int8+fwd32").is_err());
}

#[test]
fn tinyscript_forward_quantizes_the_activations_and_checkpoints_its_levels() {
    use lowbit::reference::gemm_f32::EpilogueRef;
    use lowbit::tinyscript::LevelTable;
    use lowbit::GpuBuffer;
    let g = gpu();
    // One linear layer: the logits are Q(X)·Wᵀ + b exactly as the references compute them.
    let spec = ModelSpec::mlp((5, 7, 1), &[], 6);
    let opt = OptimConfig { batch: 16, ..Default::default() };
    let scheme = TrainScheme::preset("tinyscript3").unwrap();
    assert_eq!(scheme.default.forward, ForwardPrecision::TinyScript { bits: 3, fitted: true });
    let mut t = Trainer::new(g, spec.clone(), scheme, opt, 21).unwrap();
    let x = data(16 * 35, 301, false);
    let labels: Vec<u32> = (0..16).map(|i| i % 6).collect();
    let check_logits = |t: &Trainer, table: &LevelTable, what: &str| {
        let p = t.parameters().unwrap();
        let (w, b) = (&p[0].2, &p[1].2);
        let (codes, scales) = reference::tinyscript::quantize(&x, 16, 35, table, Rounding::Nearest);
        let want = reference::gemm_levels::gemm_levels(
            &codes,
            &scales,
            table,
            16,
            35,
            w,
            6,
            false,
            &EpilogueRef { bias: Some(b), relu: false, old: None },
        );
        let got = t.logits(&x, 16).unwrap();
        for (i, &v) in got.iter().enumerate() {
            let tol = 64.0 * 2f64.powi(-24) * want.magnitude[i] + 1e-30;
            assert!((v as f64 - want.value[i]).abs() <= tol, "{what} [{i}]: {v} vs {}", want.value[i]);
        }
    };
    // Before any step: evenly spaced levels, rounded to nearest in evaluation.
    check_logits(&t, &LevelTable::uniform(3).unwrap(), "uniform levels");
    let fp32 = {
        let mut f = Trainer::new(g, spec.clone(), TrainScheme::preset("tinyscript3+fwd32").unwrap(), opt, 21).unwrap();
        for (n, _, v) in t.parameters().unwrap() {
            f.set_parameter(&n, &v).unwrap();
        }
        f.logits(&x, 16).unwrap()
    };
    assert_ne!(t.logits(&x, 16).unwrap(), fp32, "the forward must see quantized activations");
    // The first step refits the activation levels to its input (the Weibull fit, here on the
    // host as the kernel does it on the device).
    t.step(&x, &labels, 0.05).unwrap();
    let xb = GpuBuffer::from_slice(g, "x", &x).unwrap();
    let (_, fitted) = lowbit::kernels::tinyscript::TinyScript::new(g).unwrap().fit(g, &xb, 16, 35, 3).unwrap();
    assert_ne!(fitted, LevelTable::uniform(3).unwrap());
    check_logits(&t, &fitted, "fitted levels");
    // A checkpoint carries the levels: a fresh trainer that loads it computes the same logits.
    let path = std::env::temp_dir().join(format!("lowbit-ts-fwd-{}.safetensors", std::process::id()));
    t.save(&path).unwrap();
    let mut u = Trainer::new(g, spec, TrainScheme::preset("tinyscript3").unwrap(), opt, 99).unwrap();
    u.load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(u.logits(&x, 16).unwrap(), t.logits(&x, 16).unwrap());
    // The saved activation is 3-bit codes plus a scale per row, not f32.
    let a = t.activation_bytes();
    assert!(a.stored < a.fp32 / 4, "{a:?}");
}

#[test]
fn tinyscript_quantizes_a_relu_output_with_an_unsigned_table() {
    use lowbit::reference::gemm_f32::EpilogueRef;
    use lowbit::tinyscript::LevelTable;
    let g = gpu();
    assert_eq!(ModelSpec::mlp((5, 7, 1), &[12, 9], 6).nonnegative_inputs(), vec![false, true, true]);
    // conv, bn+relu, pool, conv, bn+relu, pool, linear.
    let cnn = ModelSpec::cnn((8, 8, 1), &[4, 6], 3);
    assert_eq!(cnn.nonnegative_inputs(), vec![false, false, true, true, false, true, true]);
    // Layer 0 in fp32 with an identity-like weight, so the hidden layer is exactly relu(x[:, :12]);
    // layer 1 quantizes it onto an unsigned 3-bit table: 8 levels from 0 to the row's max.
    let spec = ModelSpec::mlp((5, 7, 1), &[12], 6);
    let opt = OptimConfig { batch: 16, ..Default::default() };
    let base = TrainScheme::preset("tinyscript3").unwrap();
    let fwd32 = TrainScheme::preset("tinyscript3+fwd32").unwrap().default;
    let mut t = Trainer::new(g, spec.clone(), base.with_layer(0, fwd32).unwrap(), opt, 5).unwrap();
    let w0: Vec<f32> = (0..12 * 35).map(|i| if i % 35 == i / 35 { 1.0 } else { 0.0 }).collect();
    t.set_parameter("layers.0.weight", &w0).unwrap();
    let x = data(16 * 35, 302, false);
    let h: Vec<f32> = (0..16 * 12).map(|i| x[(i / 12) * 35 + i % 12].max(0.0)).collect();
    let p = t.parameters().unwrap();
    let get = |n: &str| p.iter().find(|q| q.0 == n).unwrap().2.clone();
    let (w1, b1) = (get("layers.1.weight"), get("layers.1.bias"));
    let logits_with = |table: &LevelTable| {
        let (codes, scales) = reference::tinyscript::quantize(&h, 16, 12, table, Rounding::Nearest);
        let e = EpilogueRef { bias: Some(&b1), relu: false, old: None };
        reference::gemm_levels::gemm_levels(&codes, &scales, table, 16, 12, &w1, 6, false, &e)
    };
    let want = logits_with(&LevelTable::uniform_as(3, false).unwrap());
    let got = t.logits(&x, 16).unwrap();
    for (i, &v) in got.iter().enumerate() {
        let tol = 64.0 * 2f64.powi(-24) * want.magnitude[i] + 1e-30;
        assert!((v as f64 - want.value[i]).abs() <= tol, "[{i}]: {v} vs {}", want.value[i]);
    }
    let signed = logits_with(&LevelTable::uniform(3).unwrap());
    assert!(signed.value.iter().zip(&want.value).any(|(a, b)| (a - b).abs() > 1e-3), "a signed table loses levels");
    // Refits keep the table unsigned, and a checkpoint carries its 8 levels.
    t.step(&x, &(0..16).map(|i| i % 6).collect::<Vec<u32>>(), 0.05).unwrap();
    let path = std::env::temp_dir().join(format!("lowbit-ts-unsigned-{}.safetensors", std::process::id()));
    t.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let levels = st.tensor("layers.1.activation_levels").unwrap();
    assert_eq!(levels.shape(), [8]);
    let table = LevelTable::with_sign(3, false, bytemuck::pod_collect_to_vec::<u8, u32>(levels.data())).unwrap();
    assert_ne!(table, LevelTable::uniform_as(3, false).unwrap(), "refit to the step's input");
}

#[test]
fn dcq_sections_stitch_back_exactly_and_learn_the_teacher() {
    use lowbit::data::Dataset;
    use lowbit::nn::dcq::{section_spec, split, train_sections};
    let g = gpu();
    let spec = ModelSpec::cnn((8, 8, 1), &[4, 6], 3);
    let sections = split(&spec, 3).unwrap();
    assert_eq!(sections.len(), 3);
    assert_eq!(sections.first().unwrap().0, 0);
    assert_eq!(sections.last().unwrap().1, spec.layers.len());
    assert!(sections.iter().all(|&(a, _)| a == 0 || spec.layers[a].is_gemm()), "{sections:?}");
    assert!(split(&spec, 4).is_err() && section_spec(&spec, 2, 2).is_err());
    let n = 64;
    let data = Dataset::new(data(n * 64, 31, false), (0..n as u8).map(|i| i % 3).collect(), (8, 8, 1), 3).unwrap();
    let opt = OptimConfig { batch: 16, lr: 0.05, ..Default::default() };
    let mut teacher = Trainer::new(g, spec.clone(), TrainScheme::preset("fp32").unwrap(), opt, 1).unwrap();
    teacher.train_epoch(&data, 0, 4, |_, _| {}).unwrap();
    let tp = teacher.parameters().unwrap();
    let (x, _) = data.gather(&(0..16).collect::<Vec<_>>()).unwrap();
    // No training steps: the stitched student is the teacher, parameter for parameter.
    let fp32 = TrainScheme::preset("fp32").unwrap();
    let (same, _) = train_sections(g, &spec, &tp, &fp32, &sections, &data, 0, opt, 1, true, |_, _, _| {}).unwrap();
    let mut stitched = Trainer::new(g, spec.clone(), fp32, opt, 9).unwrap();
    for (name, _, v) in &same {
        stitched.set_parameter(name, v).unwrap();
    }
    assert_eq!(stitched.logits(&x, 16).unwrap(), teacher.logits(&x, 16).unwrap());
    // Quantized sections, from their own initialization, learn a trained teacher's features.
    for e in 1..30 {
        teacher.train_epoch(&data, e, 120, |_, _| {}).unwrap();
    }
    let tp = teacher.parameters().unwrap();
    let scheme = TrainScheme::preset("luq4+all4").unwrap();
    // The section loss sums each sample's squared feature error: a classification-scale step.
    let opt = OptimConfig { lr: 0.01, ..opt };
    let (_, reports) =
        train_sections(g, &spec, &tp, &scheme, &sections, &data, 40, opt, 1, false, |_, _, _| {}).unwrap();
    for r in &reports {
        assert!(r.last_mse < 0.5 * r.first_mse, "section {:?}: mse {} -> {}", r.layers, r.first_mse, r.last_mse);
    }
}

#[test]
fn set_bits_switches_kernels_and_transitional_batch_norm_keeps_a_state_per_pair() {
    use lowbit::nn::bitmixer::{sample_bits, train_epoch_mixed, MixSchedule};
    let g = gpu();
    let spec = ModelSpec::cnn((8, 8, 1), &[4], 3);
    let opt = OptimConfig { batch: 8, ..Default::default() };
    let x = data(8 * 64, 87, false);
    let labels: Vec<u32> = (0..8).map(|i| i % 3).collect();
    let mut t = Trainer::new(g, spec.clone(), TrainScheme::preset("int8").unwrap(), opt, 4).unwrap();
    t.step(&x, &labels, 0.05).unwrap();
    let params = t.parameters().unwrap();
    let at8 = t.logits(&x, 8).unwrap();
    t.set_bits(0, 4).unwrap();
    assert_eq!(t.bits(), vec![4, 8]);
    let at4 = t.logits(&x, 8).unwrap();
    assert_ne!(at4, at8, "4-bit operands must change the output");
    // The same as a model built with that layer at int4.
    let int4 = LayerScheme { forward: ForwardPrecision::Int4, ..LayerScheme::INT8 };
    let mut fixed =
        Trainer::new(g, spec.clone(), TrainScheme::preset("int8").unwrap().with_layer(0, int4).unwrap(), opt, 9)
            .unwrap();
    for (n, _, v) in &params {
        fixed.set_parameter(n, v).unwrap();
    }
    assert_eq!(fixed.logits(&x, 8).unwrap(), at4);
    // 3 and 2 bits: each its own output, each the same as a model built at that precision.
    let mut outs = vec![at8.clone(), at4.clone()];
    for (bits, fp) in [(3, ForwardPrecision::Int3), (2, ForwardPrecision::Int2)] {
        t.set_bits(0, bits).unwrap();
        let out = t.logits(&x, 8).unwrap();
        assert!(outs.iter().all(|o| *o != out), "{bits}-bit operands must change the output");
        let ls = LayerScheme { forward: fp, ..LayerScheme::INT8 };
        let mut fixed =
            Trainer::new(g, spec.clone(), TrainScheme::preset("int8").unwrap().with_layer(0, ls).unwrap(), opt, 9)
                .unwrap();
        for (n, _, v) in &params {
            fixed.set_parameter(n, v).unwrap();
        }
        assert_eq!(fixed.logits(&x, 8).unwrap(), out, "{bits} bits");
        outs.push(out);
    }
    t.set_bits(0, 8).unwrap();
    assert_eq!(t.logits(&x, 8).unwrap(), at8);
    assert!(t.set_bits(0, 5).is_err() && t.set_bits(5, 4).is_err());
    assert!(t.set_bits(0, 32).is_err(), "an int8 gradient needs a quantized forward");
    // Transitional batch norm: training at (4, 8) moves that pair's state only.
    t.enable_transitional_bn().unwrap();
    t.set_bits(0, 4).unwrap();
    t.step(&x, &labels, 0.05).unwrap();
    let p = t.parameters().unwrap();
    let get = |n: &str| p.iter().find(|q| q.0 == n).unwrap_or_else(|| panic!("no {n}")).2.clone();
    let base = params.iter().find(|q| q.0 == "layers.1.running_mean").unwrap().2.clone();
    assert_eq!(get("layers.1.running_mean"), base, "the base (8-bit) state is untouched");
    assert_ne!(get("layers.1.tbn4_8.running_mean"), base, "the (4, 8) state trained");
    // Mixed training runs and samples reproducibly.
    assert_eq!(sample_bits(&[4, 8], 1, 7, 3).unwrap(), sample_bits(&[4, 8], 1, 7, 3).unwrap());
    assert!(sample_bits(&[], 1, 7, 3).is_err());
    let ds = lowbit::data::Dataset::new(x.clone(), vec![0, 1, 2, 0, 1, 2, 0, 1], (8, 8, 1), 3).unwrap();
    train_epoch_mixed(&mut t, &ds, 0, 4, &[4, 8], MixSchedule::LAYERWISE, |_, _| {}).unwrap();
    assert!(train_epoch_mixed(&mut t, &ds, 0, 4, &[], MixSchedule::LAYERWISE, |_, _| {}).is_err());
}

#[test]
fn feature_loss_is_the_per_sample_sum_of_the_regression_loss() {
    let g = gpu();
    let spec = ModelSpec::mlp((4, 4, 1), &[12], 7);
    let opt = OptimConfig { batch: 8, weight_decay: 0.0, ..Default::default() };
    let x = data(8 * 16, 404, false);
    let t = data(8 * 7, 405, false);
    let make = || Trainer::new(g, spec.clone(), TrainScheme::preset("fp32").unwrap(), opt, 5).unwrap();
    let (mut a, mut b) = (make(), make());
    // Summed over 7 outputs: 7 times the loss and the gradient, so lr/7 takes the same step.
    let la = a.step_regression(&x, &t, 0.07).unwrap();
    let lb = b.step_features(&x, &t, 0.01).unwrap();
    assert!((lb as f64 - 7.0 * la as f64).abs() <= 1e-5 * lb.abs() as f64, "{lb} vs 7 × {la}");
    for ((n, _, va), (_, _, vb)) in a.parameters().unwrap().iter().zip(b.parameters().unwrap()) {
        for (p, q) in va.iter().zip(&vb) {
            assert!((p - q).abs() <= 1e-6 * (1.0 + p.abs()), "{n}: {p} vs {q}");
        }
    }
}
