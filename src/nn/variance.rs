//! The variance meter: how much bias and variance each gradient quantizer adds to the weight
//! gradient, measured on the GPU (Chen et al., "A Statistical Framework for Low-bitwidth Training
//! of Deep Neural Networks", NeurIPS 2020, made practical).
//!
//! For a model, its parameters and one batch, the reference is the weight gradient with the
//! neural gradient kept in fp32 and everything else as the quantizers see it: the same quantized
//! forward, and the same quantized X and W operands in the gradient products (the trainer's
//! fp32-gradient path over a quantized forward uses them, dequantized), so only the gradient
//! quantizer differs. Each quantizer's weight gradient ĝ is then drawn `samples` times
//! (fresh stochastic rounding each time, same batch), and per weight layer:
//! - `bias` = ‖mean(ĝ) − g‖₂ (an unbiased quantizer leaves only sampling noise, whose expected
//!   square is `variance / samples`),
//! - `variance` = E‖ĝ − E ĝ‖² (the sum over the layer's weights of the per-element variance),
//! - `rel_variance` = `variance` / the gradient's own minibatch variance, E‖g_B − E g_B‖² over
//!   the other batches given (the noise SGD already lives with; Chen et al. show quantization
//!   costs accuracy when it is not small beside it).

use super::model::ModelSpec;
use super::scheme::{ForwardPrecision, GradPrecision, LayerScheme, TrainScheme};
use super::trainer::{OptimConfig, Parameter, Trainer};
use crate::scheme::Granularity;
use crate::{Error, Gpu, Result};

/// One gradient quantizer to measure.
#[derive(Clone, Debug)]
pub struct MeterQuantizer {
    /// Its name in reports (e.g. `psq+smp4`).
    pub name: String,
    /// Bits per gradient value.
    pub bits: u32,
    /// The layer scheme every trainable layer uses while it is measured.
    pub scheme: LayerScheme,
}

/// The quantizers the meter compares at `bits` (4 or 8) over the `forward` precision: uniform
/// with one scale per tensor, PSQ (per-row scales), BHQ (block-`rotate` Hadamard rotation, then
/// per-row scales) and, at 4 bits, LUQ's log format; each also with `smp` samples averaged when
/// `smp > 1`.
pub fn standard_quantizers(bits: u32, forward: ForwardPrecision, smp: u32, rotate: u32) -> Result<Vec<MeterQuantizer>> {
    let uniform = match bits {
        8 => GradPrecision::Int8,
        4 => GradPrecision::Int4,
        b => return Err(Error::InvalidArgument(format!("the meter compares 4- or 8-bit gradients, not {b}"))),
    };
    let base = LayerScheme { forward, gradient: uniform, ..LayerScheme::FP32 };
    let mut plain = vec![
        ("uniform-tensor", LayerScheme { grad_granularity: Granularity::PerTensor, ..base }),
        ("psq", base),
        ("bhq", LayerScheme { rotate: Some(rotate), ..base }),
    ];
    if bits == 4 {
        plain.push(("luq", LayerScheme { gradient: GradPrecision::Luq4, ..base }));
    }
    let mut out = Vec::new();
    for (name, s) in plain {
        s.check()?;
        out.push(MeterQuantizer { name: name.to_string(), bits, scheme: s });
        if smp > 1 {
            let s = LayerScheme { smp, ..s };
            s.check()?;
            out.push(MeterQuantizer { name: format!("{name}+smp{smp}"), bits, scheme: s });
        }
    }
    Ok(out)
}

/// What the meter reports for one weight layer and quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerVariance {
    /// The weight's parameter name (`layers.{i}.weight`).
    pub layer: String,
    /// The quantizer's name.
    pub quantizer: String,
    /// Bits per gradient value.
    pub bits: u32,
    /// ‖mean of the samples − reference gradient‖₂.
    pub bias: f64,
    /// E‖ĝ − E ĝ‖² over the samples (unbiased estimate).
    pub variance: f64,
    /// `variance / minibatch_variance`.
    pub rel_variance: f64,
    /// ‖g‖² of the reference gradient.
    pub grad_norm2: f64,
    /// The reference gradient's variance over the batches given.
    pub minibatch_variance: f64,
}

/// A weight's name and gradient.
type NamedGrad = (String, Vec<f32>);

/// A batch: `(inputs, labels)` as [`Trainer::step`] takes them.
pub type Batch = (Vec<f32>, Vec<u32>);

/// Measures every quantizer on `batches[0]` with `samples` draws each, the minibatch variance
/// over all of `batches` (at least 2). `params` come from [`Trainer::parameters`] of a model of
/// `spec`; `forward` is the forward precision of the reference. `progress(done, total)` is
/// called after every gradient computed. Returns one row per (weight layer, quantizer).
#[allow(clippy::too_many_arguments)]
pub fn measure(
    gpu: &Gpu,
    spec: &ModelSpec,
    params: &[Parameter],
    forward: ForwardPrecision,
    batches: &[Batch],
    quantizers: &[MeterQuantizer],
    samples: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<LayerVariance>> {
    if batches.len() < 2 {
        return Err(Error::InvalidArgument("the minibatch variance needs at least 2 batches".into()));
    }
    if samples < 2 {
        return Err(Error::InvalidArgument("the variance needs at least 2 samples".into()));
    }
    let batch = batches[0].1.len();
    if batches.iter().any(|b| b.1.len() != batch) {
        return Err(Error::InvalidArgument("all batches must have the same size".into()));
    }
    let total = batches.len() + quantizers.len() * samples;
    let mut done = 0;
    let trainer = |scheme: LayerScheme, name: &str| -> Result<Trainer> {
        let ts = TrainScheme {
            name: name.to_string(),
            default: scheme,
            keep_sensitive: false,
            attention: false,
            overrides: vec![],
        };
        let opt = OptimConfig { batch, ..OptimConfig::default() };
        let mut t = Trainer::new(gpu, spec.clone(), ts, opt, 0x5eed)?;
        for (n, _, v) in params {
            t.set_parameter(n, v)?;
        }
        Ok(t)
    };
    let weights = |g: Vec<Parameter>| -> Vec<(String, Vec<f32>)> {
        g.into_iter().filter(|p| p.1.len() == 2).map(|p| (p.0, p.2)).collect()
    };
    // Reference gradients, one per batch; the first is the one the quantizers are measured on.
    let reference_scheme = LayerScheme { forward, gradient: GradPrecision::Fp32, ..LayerScheme::FP32 };
    reference_scheme.check()?;
    let mut reference = trainer(reference_scheme, "meter reference")?;
    let mut per_batch = Vec::new();
    for (x, labels) in batches {
        per_batch.push(weights(reference.gradients(x, labels)?));
        done += 1;
        progress(done, total);
    }
    let layers: Vec<String> = per_batch[0].iter().map(|w| w.0.clone()).collect();
    let mut out = Vec::new();
    let mut mb_var = Vec::new();
    for li in 0..layers.len() {
        let n = per_batch[0][li].1.len();
        let mut var = 0f64;
        for i in 0..n {
            let vals: Vec<f64> = per_batch.iter().map(|b| b[li].1[i] as f64).collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            var += vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (vals.len() - 1) as f64;
        }
        mb_var.push(var);
    }
    let (x0, l0) = &batches[0];
    // Rotated quantizers are compared with the reference that rotates the same way.
    let mut rotated_refs: Vec<(u32, Vec<NamedGrad>)> = Vec::new();
    for q in quantizers {
        let base = match q.scheme.rotate {
            None => &per_batch[0],
            Some(b) => {
                if !rotated_refs.iter().any(|r| r.0 == b) {
                    let s = LayerScheme { rotate: Some(b), ..reference_scheme };
                    s.check()?;
                    let mut t = trainer(s, "meter rotated reference")?;
                    rotated_refs.push((b, weights(t.gradients(x0, l0)?)));
                }
                &rotated_refs.iter().find(|r| r.0 == b).expect("just added").1
            }
        };
        let mut t = trainer(q.scheme, &q.name)?;
        let mut moments: Vec<Moments> = per_batch[0].iter().map(|w| Moments::new(w.1.len())).collect();
        for _ in 0..samples {
            for (li, (_, g)) in weights(t.gradients(x0, l0)?).into_iter().enumerate() {
                moments[li].add(&g);
            }
            done += 1;
            progress(done, total);
        }
        for (li, name) in layers.iter().enumerate() {
            let g = &base[li].1;
            let (bias2, var) = moments[li].bias2_and_variance(g);
            let norm2: f64 = g.iter().map(|&v| (v as f64).powi(2)).sum();
            out.push(LayerVariance {
                layer: name.clone(),
                quantizer: q.name.clone(),
                bits: q.bits,
                bias: bias2.sqrt(),
                variance: var,
                rel_variance: if mb_var[li] > 0.0 { var / mb_var[li] } else { f64::INFINITY },
                grad_norm2: norm2,
                minibatch_variance: mb_var[li],
            });
        }
    }
    Ok(out)
}

/// Bias and variance of quantizing the tensor `x` (`[rows, cols]`, one scale per row) onto
/// `table` with stochastic rounding, over `samples` seeds on the GPU: `(‖mean − x‖₂, Σ of the
/// per-element variances)`. This is how the meter compares TinyScript's fitted levels with
/// uniform ones at equal bits on real gradient tensors.
pub fn level_quantizer_variance(
    gpu: &Gpu,
    ts: &crate::kernels::tinyscript::TinyScript,
    x: &[f32],
    rows: usize,
    cols: usize,
    table: &crate::tinyscript::LevelTable,
    samples: usize,
) -> Result<(f64, f64)> {
    if samples < 2 {
        return Err(Error::InvalidArgument("the variance needs at least 2 samples".into()));
    }
    let xb = crate::tensor::GpuBuffer::from_slice(gpu, "meter tensor", x)?;
    let out = crate::tensor::GpuBuffer::<f32>::zeros(gpu, "meter dequantized", x.len())?;
    let mut moments = Moments::new(x.len());
    for s in 0..samples as u32 {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let rounding = crate::scheme::Rounding::Stochastic { seed: 0x7157, stream: s };
        let q = ts.encode_quantize(gpu, &mut enc, &xb, rows, cols, table, rounding)?;
        ts.encode_dequantize(gpu, &mut enc, &q, &out)?;
        gpu.submit([enc.finish()]);
        moments.add(&out.read(gpu)?);
    }
    let (bias2, var) = moments.bias2_and_variance(x);
    Ok((bias2.sqrt(), var))
}

/// Per-element running sums of repeated draws of a tensor, for its sample mean and variance.
struct Moments {
    draws: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Moments {
    fn new(len: usize) -> Self {
        Moments { draws: 0, sum: vec![0.0; len], sq: vec![0.0; len] }
    }

    fn add(&mut self, draw: &[f32]) {
        for (i, &v) in draw.iter().enumerate() {
            self.sum[i] += v as f64;
            self.sq[i] += v as f64 * v as f64;
        }
        self.draws += 1;
    }

    /// `(‖mean − target‖², Σ of the unbiased per-element variances)`.
    fn bias2_and_variance(&self, target: &[f32]) -> (f64, f64) {
        let n = self.draws as f64;
        let (mut bias2, mut var) = (0f64, 0f64);
        for (i, &t) in target.iter().enumerate() {
            let mean = self.sum[i] / n;
            bias2 += (mean - t as f64).powi(2);
            var += ((self.sq[i] - n * mean * mean) / (n - 1.0)).max(0.0);
        }
        (bias2, var)
    }
}
