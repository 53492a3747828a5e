//! Shared test helpers: one GPU per test binary, and exact comparison with readable failures.
#![allow(dead_code)]

use lowbit::Gpu;
use std::sync::OnceLock;

/// The test GPU. A missing adapter is a failure, never a skip: in CI lavapipe must be there.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let g = Gpu::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
        eprintln!("lowbit tests on: {}", g.report());
        g
    })
}

/// Whether this run must find the adapter's cooperative-matrix unit: CI runs the tests that use it
/// a second time on lavapipe of Mesa 26 (.ci/lavapipe-coop), which has it, with
/// `LOWBIT_EXPECT_COOP=1`, so that a kernel finding no unit fails there instead of passing through
/// its refusal or its SIMD fallback.
pub fn coop_expected() -> bool {
    std::env::var_os("LOWBIT_EXPECT_COOP").is_some_and(|v| v != "0")
}

/// Whether the adapter flushes f32 subnormals to zero in arithmetic, inputs and results (NVIDIA's
/// Vulkan driver does unless a shader asks to preserve them; lavapipe keeps them): measured once
/// with the `add` kernel on 2^-143 + 0.
pub fn flushes_subnormals() -> bool {
    static FTZ: OnceLock<bool> = OnceLock::new();
    *FTZ.get_or_init(|| {
        let g = gpu();
        let add = lowbit::kernels::add::Add::new(g).unwrap();
        let tiny = f32::from_bits(0x40); // 2^-143, a subnormal
        let (a, b) = (buf(&[tiny]), buf(&[0.0]));
        let y = lowbit::GpuBuffer::<f32>::zeros(g, "ftz probe", 1).unwrap();
        submit_with(|e| add.encode(g, e, &a, Some(&b), false, &y).unwrap());
        y.read(g).unwrap()[0] == 0.0
    })
}

/// `x` as an adapter's arithmetic sees it: subnormals as zeros of the same sign where the adapter
/// flushes them ([`flushes_subnormals`]), unchanged elsewhere.
pub fn as_adapter_sees(x: &[f32]) -> Vec<f32> {
    let ftz = flushes_subnormals();
    x.iter().map(|&v| if ftz && v.is_subnormal() { 0.0f32.copysign(v) } else { v }).collect()
}

/// Bitwise equality of u32 slices, listing the first mismatches.
pub fn assert_u32_eq(what: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    if !bad.is_empty() {
        let show: Vec<String> =
            bad.iter().take(8).map(|&i| format!("[{i}] gpu {:#010x} ref {:#010x}", got[i], want[i])).collect();
        panic!("{what}: {} of {} differ; first: {}", bad.len(), got.len(), show.join(", "));
    }
}

/// Bitwise equality of f32 slices (any NaN equals any NaN), listing the first mismatches.
pub fn assert_f32_bits_eq(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    let bad: Vec<usize> = (0..got.len()).filter(|&i| !same(got[i], want[i])).collect();
    if !bad.is_empty() {
        let show: Vec<String> = bad
            .iter()
            .take(8)
            .map(|&i| {
                format!("[{i}] gpu {:e} ({:#x}) ref {:e} ({:#x})", got[i], got[i].to_bits(), want[i], want[i].to_bits())
            })
            .collect();
        panic!("{what}: {} of {} differ; first: {}", bad.len(), got.len(), show.join(", "));
    }
}

/// Deterministic test data: normal-ish values of varied magnitude, with the awkward values
/// (zeros, subnormals, tiny, huge, ±inf, NaN) sprinkled in when `specials`.
pub fn data(n: usize, seed: u32, specials: bool) -> Vec<f32> {
    let k = lowbit::rng::key(seed, 99);
    (0..n as u32)
        .map(|i| {
            let u = lowbit::rng::uniform(k, 2 * i);
            let v = lowbit::rng::uniform(k, 2 * i + 1);
            let mag = 2f32.powf(-12.0 * v) * 3.0;
            let x = if u < 0.5 { -mag } else { mag };
            if !specials {
                return x;
            }
            match i % 97 {
                3 => 0.0,
                5 => -0.0,
                7 => f32::from_bits(0x0000_0123),
                11 => -f32::from_bits(0x0040_0000),
                13 => 1e-30,
                17 => f32::INFINITY,
                19 => f32::NEG_INFINITY,
                23 => f32::NAN,
                29 => 1e30,
                31 => -7.5e29,
                _ => x,
            }
        })
        .collect()
}

/// `v` uploaded to the test GPU.
pub fn buf(v: &[f32]) -> lowbit::GpuBuffer<f32> {
    lowbit::GpuBuffer::from_slice(gpu(), "t", v).unwrap()
}

/// Records with `f` into one encoder and submits it.
pub fn submit_with(f: impl FnOnce(&mut wgpu::CommandEncoder)) {
    let g = gpu();
    let mut enc = g.device.create_command_encoder(&Default::default());
    f(&mut enc);
    g.queue.submit([enc.finish()]);
}

/// Mean softmax cross-entropy of logits, in f64.
pub fn loss_of(logits: &[f32], labels: &[u32], classes: usize) -> f64 {
    let mut l = 0.0;
    for (b, &t) in labels.iter().enumerate() {
        let row: Vec<f64> = logits[b * classes..(b + 1) * classes].iter().map(|&v| v as f64).collect();
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        l += s.ln() - (row[t as usize] - m);
    }
    l / labels.len() as f64
}

/// Checks every trainable parameter's gradient (six random entries each) of an fp32 trainer
/// against central differences of the loss on one batch; batch norm uses the batch's statistics
/// in the probes, as in the step. Returns the number of parameters checked.
pub fn fd_check(t: &mut lowbit::nn::Trainer, what: &str, batch: usize) -> usize {
    let dim: usize = {
        let s = t.graph().input_shape();
        s.0 * s.1 * s.2
    };
    let classes = t.graph().classes();
    let x = data(batch * dim, 61, false);
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % classes as u32).collect();
    // Small enough that a batch-norm shift rarely moves a pre-ReLU value across 0 (β moves a
    // whole channel), large enough that f32 rounding in the loss stays under 1e-3 absolute.
    fd_check_on(t, what, &x, &labels, 3e-4, 2e-3)
}

/// [`fd_check`] on a given batch (`labels` one per output position of each sample), step `h`
/// and absolute tolerance `atol` (f32 rounding of the loss over `2h`, plus the O(h²) error).
pub fn fd_check_on(t: &mut lowbit::nn::Trainer, what: &str, x: &[f32], labels: &[u32], h: f32, atol: f64) -> usize {
    t.set_batch_stats_in_eval(true);
    let dim: usize = {
        let s = t.graph().input_shape();
        s.0 * s.1 * s.2
    };
    let batch = x.len() / dim;
    let classes = t.graph().classes();
    let grads = t.gradients(x, labels).unwrap();
    let params = t.parameters().unwrap();
    let mut checked = 0;
    for (name, _, gvec) in &grads {
        let w = &params.iter().find(|p| &p.0 == name).expect("a gradient's parameter").2;
        checked += 1;
        let key = lowbit::rng::key(7, name.len() as u32);
        for j in 0..6u32 {
            // Half the probes at the largest gradients (rows a sparse gradient touches).
            let i = if j < 3 {
                let mut idx: Vec<usize> = (0..w.len()).collect();
                idx.sort_by(|&a, &b| gvec[b].abs().total_cmp(&gvec[a].abs()));
                idx[j as usize % idx.len()]
            } else {
                (lowbit::rng::draw(key, j) as usize) % w.len()
            };
            let mut wp = w.clone();
            wp[i] = w[i] + h;
            t.set_parameter(name, &wp).unwrap();
            let lp = loss_of(&t.logits(x, batch).unwrap(), labels, classes);
            wp[i] = w[i] - h;
            t.set_parameter(name, &wp).unwrap();
            let lm = loss_of(&t.logits(x, batch).unwrap(), labels, classes);
            t.set_parameter(name, w).unwrap();
            let fd = (lp - lm) / (2.0 * h as f64);
            let an = gvec[i] as f64;
            // Central differences in f32 forward passes: error O(h²) plus rounding / h; a ReLU
            // kink inside ±h would show as a large mismatch on one entry only.
            assert!(
                (fd - an).abs() <= 0.05 * an.abs().max(fd.abs()) + atol,
                "{what} {name}[{i}]: finite difference {fd:.6} vs backward {an:.6}"
            );
        }
    }
    assert!(checked >= 2, "{what}: no parameters checked");
    checked
}

/// A small CNN on 6×6×2 inputs: conv, batch norm with ReLU, a strided conv with ReLU, max
/// pooling, a linear classifier of 3 classes (every layer with a bias, as the fixture of
/// `tests/graph.rs` recorded it).
pub fn tiny_cnn() -> lowbit::nn::ModelSpec {
    use lowbit::nn::LayerSpec;
    lowbit::nn::ModelSpec {
        name: "tiny-cnn".into(),
        input: (6, 6, 2),
        layers: vec![
            LayerSpec::Conv { channels: 3, kernel: 3, stride: 1, pad: 1, relu: false, bias: true },
            LayerSpec::BatchNorm { relu: true },
            LayerSpec::Conv { channels: 4, kernel: 3, stride: 2, pad: 1, relu: true, bias: true },
            LayerSpec::MaxPool { k: 2 },
            LayerSpec::Linear { outputs: 3, relu: false },
        ],
    }
}
