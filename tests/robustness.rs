//! The public API driven with bad and extreme inputs: sizes that overflow, zero and huge
//! dimensions, NaN and infinity in data, weights and learning rate, inconsistent datasets, empty
//! choice lists, corrupt checkpoints. Each gives a typed error or the documented result, never a
//! panic; a step that goes non-finite leaves parameters, optimizer state, batch-norm statistics
//! and the step counter as they were.

mod common;
use common::{data, gpu};
use lowbit::data::Dataset;
use lowbit::nn::{LayerSpec, ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::{Error, GpuBuffer, GpuTensor};

#[test]
fn sizes_that_overflow_are_errors() {
    let g = gpu();
    assert!(GpuTensor::zeros(g, &[usize::MAX, 2]).is_err());
    assert!(GpuTensor::zeros(g, &[usize::MAX / 2 + 1, 2, 2]).is_err());
    assert!(GpuBuffer::<f32>::zeros(g, "huge", usize::MAX / 2).is_err());
    assert!(GpuBuffer::<u32>::zeros(g, "huge", usize::MAX).is_err());
    let b = GpuBuffer::<f32>::zeros(g, "b", 4).unwrap();
    assert!(GpuBuffer::<f32>::from_wgpu(b.buffer().clone(), usize::MAX).is_err());
    assert!(GpuBuffer::<f32>::from_wgpu(b.buffer().clone(), 5).is_err(), "more than the buffer holds");
    // A convolution whose padding overflows the shape arithmetic.
    let spec = ModelSpec {
        name: "pad".into(),
        input: (4, 4, 1),
        layers: vec![
            LayerSpec::Conv { channels: 2, kernel: 3, stride: 1, pad: usize::MAX, relu: false, bias: true },
            LayerSpec::Linear { outputs: 2, relu: false },
        ],
    };
    assert!(matches!(spec.layer_shapes(), Err(Error::InvalidArgument(_))));
    assert!(Trainer::new(g, spec, TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), 1).is_err());
    // An IDX header whose dimensions multiply past usize.
    let mut idx = vec![0u8, 0, 8, 3];
    idx.extend(std::iter::repeat_n(0xffu8, 12));
    assert!(matches!(lowbit::data::mnist::parse_idx(&idx, "x", 3), Err(Error::Data { .. })));
}

#[test]
fn zero_dimensions_and_bad_models_are_refused_when_built() {
    let g = gpu();
    let fp32 = TrainScheme::preset("fp32").unwrap();
    let opt = OptimConfig::default();
    let zero_out = ModelSpec::mlp((2, 2, 1), &[0], 3);
    assert!(matches!(Trainer::new(g, zero_out, fp32.clone(), opt, 1), Err(Error::InvalidArgument(_))));
    for (kernel, channels, stride) in [(0, 2, 1), (3, 0, 1), (3, 2, 0)] {
        let spec = ModelSpec {
            name: "c".into(),
            input: (4, 4, 1),
            layers: vec![
                LayerSpec::Conv { channels, kernel, stride, pad: 1, relu: false, bias: true },
                LayerSpec::Linear { outputs: 2, relu: false },
            ],
        };
        assert!(matches!(Trainer::new(g, spec, fp32.clone(), opt, 1), Err(Error::InvalidArgument(_))));
    }
    assert!(Trainer::new(g, ModelSpec::mlp((0, 2, 1), &[], 3), fp32.clone(), opt, 1).is_err());
    assert!(
        Trainer::new(g, ModelSpec::mlp((2, 2, 1), &[], 3), fp32.clone(), OptimConfig { batch: 0, ..opt }, 1).is_err()
    );
    for bad in [f32::NAN, f32::INFINITY] {
        let o = OptimConfig { lr: bad, ..opt };
        assert!(Trainer::new(g, ModelSpec::mlp((2, 2, 1), &[], 3), fp32.clone(), o, 1).is_err());
    }
    let mut t = Trainer::new(g, ModelSpec::mlp((2, 2, 1), &[], 3), fp32, opt, 1).unwrap();
    assert!(matches!(t.logits(&[], 0), Err(Error::Shape { .. })));
    assert!(matches!(t.logits(&[0.0; 4], usize::MAX), Err(Error::Shape { .. })));
    assert!(matches!(t.step(&[0.0; 4], &[3], 0.1), Err(Error::InvalidArgument(_))), "label past the classes");
    // No message repeats its own prefix.
    let e = Trainer::new(g, ModelSpec::mlp((2, 2, 1), &[0], 3), TrainScheme::preset("fp32").unwrap(), opt, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(!e.contains("invalid argument: invalid argument"), "{e}");
    assert!(matches!(t.set_read_every(0), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_learning_rate_that_is_not_finite_changes_nothing() {
    let g = gpu();
    let mut t = Trainer::new(
        g,
        ModelSpec::mlp((2, 2, 1), &[4], 3),
        TrainScheme::preset("int8").unwrap(),
        OptimConfig { batch: 4, ..Default::default() },
        1,
    )
    .unwrap();
    let before = t.parameters().unwrap();
    for lr in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert!(matches!(t.step(&data(16, 1, false), &[0, 1, 2, 0], lr), Err(Error::InvalidArgument(_))));
    }
    assert_eq!(t.steps(), 0);
    assert_eq!(t.parameters().unwrap(), before);
}

/// A small CNN (batch norm included) and a batch of 8.
fn bn_model() -> (ModelSpec, Vec<f32>, Vec<u32>) {
    (common::tiny_cnn(), data(8 * 72, 5, false), (0..8).map(|i| i % 3).collect())
}

fn fresh(spec: &ModelSpec, scheme: &str) -> Trainer {
    let opt = OptimConfig { batch: 8, lr: 0.05, ..Default::default() };
    Trainer::new(gpu(), spec.clone(), TrainScheme::preset(scheme).unwrap(), opt, 3).unwrap()
}

#[test]
fn a_step_that_goes_non_finite_changes_nothing_and_training_goes_on() {
    // A NaN in one image: the step returns an error and leaves parameters, velocities, running
    // statistics and the step counter as they were — the steps that follow give exactly what a
    // trainer that never saw the bad batch gives.
    let (spec, x, labels) = bn_model();
    let mut bad_x = x.clone();
    bad_x[3 * 72 + 10] = f32::NAN;
    for scheme in ["fp32", "int8", "luq4+all"] {
        let mut t = fresh(&spec, scheme);
        let mut clean = fresh(&spec, scheme);
        t.step(&x, &labels, 0.05).unwrap();
        clean.step(&x, &labels, 0.05).unwrap();
        let before = t.parameters().unwrap();
        match t.step(&bad_x, &labels, 0.05) {
            Err(Error::NonFinite { step, .. }) => assert_eq!(step, 1, "{scheme}"),
            other => panic!("{scheme}: a NaN image gave {other:?}"),
        }
        assert_eq!(t.steps(), 1, "{scheme}: the step counter stays");
        assert_eq!(t.parameters().unwrap(), before, "{scheme}: parameters and running statistics stay");
        for _ in 0..2 {
            t.step(&x, &labels, 0.05).unwrap();
            clean.step(&x, &labels, 0.05).unwrap();
        }
        assert_eq!(t.parameters().unwrap(), clean.parameters().unwrap(), "{scheme}: velocities stayed too");
        // An infinite input, and a NaN weight, likewise.
        let mut inf_x = x.clone();
        inf_x[0] = f32::INFINITY;
        assert!(matches!(t.step(&inf_x, &labels, 0.05), Err(Error::NonFinite { .. })), "{scheme}");
        let w = t.parameters().unwrap().into_iter().find(|p| p.0 == "layers.4.weight").unwrap();
        let mut nan_w = w.2.clone();
        nan_w[1] = f32::NAN;
        t.set_parameter("layers.4.weight", &nan_w).unwrap();
        let held = t.parameters().unwrap();
        assert!(matches!(t.step(&x, &labels, 0.05), Err(Error::NonFinite { .. })), "{scheme}");
        let now = t.parameters().unwrap();
        for ((n, _, a), (_, _, b)) in held.iter().zip(&now) {
            assert!(a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits()), "{scheme}: {n} changed");
        }
    }
}

#[test]
fn a_bad_step_among_queued_ones_is_found_when_the_losses_are_read() {
    // Reading every 4 steps: steps 0 and 1 are good, step 2 has a NaN image, step 3 is good but
    // queued after it. The read after step 3 reports step 2; steps 2 and 3 changed nothing, and
    // the counter is back at 2.
    let (spec, x, labels) = bn_model();
    let mut bad_x = x.clone();
    bad_x[5] = f32::NAN;
    let mut t = fresh(&spec, "int8");
    t.set_read_every(4).unwrap();
    let mut clean = fresh(&spec, "int8");
    for _ in 0..2 {
        t.step(&x, &labels, 0.05).unwrap();
        clean.step(&x, &labels, 0.05).unwrap();
    }
    t.step(&bad_x, &labels, 0.05).unwrap(); // queued, not read yet
    match t.step(&x, &labels, 0.05) {
        Err(Error::NonFinite { step, .. }) => assert_eq!(step, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.steps(), 2);
    assert_eq!(t.parameters().unwrap(), clean.parameters().unwrap());
    // And training goes on from there, as the clean trainer does.
    t.step(&x, &labels, 0.05).unwrap();
    clean.step(&x, &labels, 0.05).unwrap();
    t.flush().unwrap();
    assert_eq!(t.parameters().unwrap(), clean.parameters().unwrap());
}

#[test]
fn inconsistent_datasets_and_empty_choices_are_errors() {
    let g = gpu();
    assert!(Dataset::new(vec![0.0; 10], vec![0, 1], (2, 2, 1), 2).is_err(), "pixels for 2.5 images");
    assert!(Dataset::new(vec![0.0; 8], vec![0, 5], (2, 2, 1), 2).is_err(), "a label past the classes");
    assert!(Dataset::new(vec![], vec![], (0, 2, 1), 2).is_err());
    assert!(Dataset::new(vec![0.0; 8], vec![0, 1], (2, 2, 1), 0).is_err());
    assert!(Dataset::new(vec![0.0; 8], vec![0, 1], (usize::MAX, 2, 1), 2).is_err());
    let d = Dataset::new(data(8 * 16, 2, false), (0..8).map(|i| i % 3).collect(), (4, 4, 1), 3).unwrap();
    assert!(matches!(d.gather(&[0, 8]), Err(Error::InvalidArgument(_))));
    let mut t = Trainer::new(
        g,
        ModelSpec::mlp((4, 4, 1), &[], 3),
        TrainScheme::preset("int8").unwrap(),
        OptimConfig { batch: 4, ..Default::default() },
        1,
    )
    .unwrap();
    let other = Dataset::new(data(8 * 9, 2, false), vec![0; 8], (3, 3, 1), 3).unwrap();
    assert!(matches!(t.evaluate(&other), Err(Error::Shape { .. })), "images of another shape");
    assert!(t.train_epoch(&other, 0, 2, |_, _| {}).is_err());
    use lowbit::nn::bitmixer::{sample_bits, train_epoch_mixed, MixSchedule};
    assert!(sample_bits(&[], 1, 0, 3).is_err());
    assert_eq!(MixSchedule::LAYERWISE.config(&[4, 8], 1, 0, 0).unwrap(), Vec::<u32>::new());
    assert!(MixSchedule::LAYERWISE.config(&[], 1, 0, 3).is_err());
    assert!(train_epoch_mixed(&mut t, &d, 0, 2, &[], MixSchedule::LAYERWISE, |_, _| {}).is_err());
}

#[test]
fn corrupt_checkpoints_are_errors_and_change_nothing() {
    let g = gpu();
    let spec = ModelSpec::mlp((4, 4, 1), &[8], 3);
    let t = Trainer::new(g, spec.clone(), TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), 1).unwrap();
    let dir = std::env::temp_dir().join(format!("lowbit-robust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.safetensors");
    t.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let mut u = Trainer::new(g, spec, TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), 2).unwrap();
    let before = u.parameters().unwrap();
    for (name, content) in
        [("truncated", bytes[..bytes.len() / 2].to_vec()), ("empty", Vec::new()), ("header only", bytes[..12].to_vec())]
    {
        let p = dir.join(format!("{name}.safetensors"));
        std::fs::write(&p, &content).unwrap();
        assert!(matches!(u.load(&p), Err(Error::Data { .. })), "{name}");
        assert_eq!(u.parameters().unwrap(), before, "{name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_save_replaces_a_checkpoint_whole_and_leaves_no_temporary_file() {
    // Trainer::save writes beside the path under a temporary name and renames it over the path:
    // a second save replaces the first whole, and a save that fails (the path a directory, or in
    // one that does not exist) changes nothing there and leaves no temporary file behind.
    let g = gpu();
    let spec = ModelSpec::mlp((4, 4, 1), &[8], 3);
    let fresh = |seed| {
        Trainer::new(g, spec.clone(), TrainScheme::preset("fp32").unwrap(), OptimConfig::default(), seed).unwrap()
    };
    let dir = std::env::temp_dir().join(format!("lowbit-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listing = || {
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let path = dir.join("model.safetensors");
    fresh(1).save(&path).unwrap();
    let second = fresh(2);
    second.save(&path).unwrap();
    let mut loaded = fresh(3);
    loaded.load(&path).unwrap();
    assert_eq!(loaded.parameters().unwrap(), second.parameters().unwrap());
    assert_eq!(listing(), ["model.safetensors"]);
    // A directory where the checkpoint would go: an error naming it; the directory and its file
    // stay, and no temporary file is left.
    let taken = dir.join("taken.safetensors");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("keep"), b"kept").unwrap();
    let err = second.save(&taken).unwrap_err();
    assert!(matches!(&err, Error::Data { path, .. } if path.ends_with("taken.safetensors")), "{err}");
    assert_eq!(std::fs::read(taken.join("keep")).unwrap(), b"kept");
    assert_eq!(listing(), ["model.safetensors", "taken.safetensors"]);
    let err = second.save(dir.join("missing").join("model.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err}");
    assert_eq!(listing(), ["model.safetensors", "taken.safetensors"]);
    // The checkpoint itself is untouched by the failed saves.
    loaded.load(&path).unwrap();
    assert_eq!(loaded.parameters().unwrap(), second.parameters().unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn integer_products_past_the_i32_range_are_exact_through_the_trainer() {
    // One Linear of 140,000 inputs, all ones, int8: 127²·K wraps past 2³¹ without chunked sums.
    let g = gpu();
    let k = 140_000;
    let spec = ModelSpec::mlp((1, 1, k), &[], 2);
    let opt = OptimConfig { batch: 2, ..Default::default() };
    let x = vec![1.0f32; 2 * k];
    let mut logits = Vec::new();
    for scheme in ["int8", "fp32"] {
        let mut t = Trainer::new(g, spec.clone(), TrainScheme::preset(scheme).unwrap(), opt, 1).unwrap();
        t.set_parameter("layers.0.weight", &vec![1.0; 2 * k]).unwrap();
        logits.push(t.logits(&x, 2).unwrap());
    }
    assert_eq!(logits[0], vec![140000.0; 4], "int8");
    assert_eq!(logits[0], logits[1], "int8 against fp32");
}

#[test]
fn set_bits_to_32_makes_a_tinyscript_forward_fp32() {
    let g = gpu();
    let spec = ModelSpec::mlp((4, 4, 1), &[12], 3);
    let opt = OptimConfig { batch: 8, ..Default::default() };
    let x = data(8 * 16, 9, false);
    let mut t = Trainer::new(g, spec.clone(), TrainScheme::preset("tinyscript3").unwrap(), opt, 4).unwrap();
    let quantized = t.logits(&x, 8).unwrap();
    t.set_bits(0, 32).unwrap();
    t.set_bits(1, 32).unwrap();
    assert_eq!(t.bits(), vec![32, 32]);
    let switched = t.logits(&x, 8).unwrap();
    assert_ne!(switched, quantized, "the forward must change");
    let fwd32 = Trainer::new(g, spec, TrainScheme::preset("tinyscript3+fwd32").unwrap(), opt, 4).unwrap();
    assert_eq!(switched, fwd32.logits(&x, 8).unwrap(), "the same as a tinyscript+fwd32 model");
}

#[test]
fn relu_maps_nan_to_zero_in_every_kernel_that_has_one() {
    use lowbit::kernels::gemm::Epilogue;
    use lowbit::kernels::gemm_f32::{GemmF32, GemmShape};
    let g = gpu();
    // A NaN input row gives NaN sums; the fused ReLU turns them into 0 (documented: NaN is not
    // > 0), and the other rows are untouched.
    let (m, n, k) = (3, 5, 7);
    let mut a = data(m * k, 3, false);
    a[k + 2] = f32::NAN;
    let b = data(n * k, 4, false);
    let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
    let gemm = GemmF32::new(g).unwrap();
    common::submit_with(|e| {
        gemm.encode(
            g,
            e,
            &common::buf(&a),
            &common::buf(&b),
            GemmShape::nt(m, n, k),
            &Epilogue { relu: true, ..Default::default() },
            &c,
        )
        .unwrap()
    });
    let y = c.read(g).unwrap();
    assert!(y[n..2 * n].iter().all(|&v| v == 0.0), "{:?}", &y[n..2 * n]);
    assert!(y.iter().all(|v| !v.is_nan()));
}
