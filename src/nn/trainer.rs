//! The training engine: GPU state of a [`ModelSpec`] under a [`TrainScheme`], one recorded
//! command buffer per step (forward, loss, backward, SGD), evaluation, and checkpoints.

use super::model::{LayerSpec, ModelSpec};
use super::scheme::{ForwardPrecision, GradPrecision, LayerScheme, TrainScheme, TINYSCRIPT_REFIT};
use crate::data::Dataset;
use crate::format::Format;
use crate::kernels::avgpool::AvgPool;
use crate::kernels::batchnorm::{BatchNorm, NormBuffers};
use crate::kernels::col_sum::ColSum;
use crate::kernels::gemm::Epilogue;
use crate::kernels::gemm_f32::{GemmF32, GemmShape};
use crate::kernels::gemm_fp8::GemmFp8;
use crate::kernels::gemm_int::GemmInt;
use crate::kernels::gemm_levels::GemmLevels;
use crate::kernels::hadamard::{Axis, Hadamard};
use crate::kernels::im2col::{ConvGeom, Im2col};
use crate::kernels::maxpool::{MaxPool, PoolGeom};
use crate::kernels::mse::Mse;
use crate::kernels::relu_backward::ReluBackward;
use crate::kernels::sgd::{Sgd, SgdStep};
use crate::kernels::softmax_xent::SoftmaxXent;
use crate::kernels::tinyscript::{TinyScript, TinyScriptTensor};
use crate::quant::{QuantizedTensor, Quantizer};
use crate::scheme::{QuantScheme, Rounding};
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::tinyscript::LevelTable;
use crate::Record;
use crate::{rng, Error, Gpu, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Optimizer and schedule.
#[derive(Copy, Clone, Debug)]
pub struct OptimConfig {
    /// Peak learning rate (cosine-annealed to 0 over the run).
    pub lr: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// L2 weight decay on weights (not biases).
    pub weight_decay: f32,
    /// Batch size.
    pub batch: usize,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, batch: 128 }
    }
}

/// Cosine learning rate at `step` of `total`.
pub fn cosine_lr(peak: f32, step: usize, total: usize) -> f32 {
    let t = step as f64 / total.max(1) as f64;
    (peak as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
}

/// A named parameter: `(name, shape, values)`.
pub type Parameter = (String, Vec<usize>, Vec<f32>);

/// What one training step reports.
#[derive(Copy, Clone, Debug)]
pub struct StepStats {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Correct predictions in the batch.
    pub correct: u32,
    /// Where the step's wall time went on the host, in seconds.
    pub host: StepHostTime,
}

/// A training step's wall time on the host, by phase: what a GPU time far below the wall time
/// leaves unexplained.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct StepHostTime {
    /// Uploading the batch, allocating the step's buffers and recording every pass (until the
    /// command buffer is finished).
    pub record: f64,
    /// `Queue::submit`.
    pub submit: f64,
    /// From the submission until the loss is read back (the GPU's work, TinyScript refits, and
    /// whatever the driver and wgpu do meanwhile).
    pub wait: f64,
}

/// Memory held between forward and backward in one step, in bytes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivationBytes {
    /// As the scheme stores it (quantized saved GEMM operands, plus f32 layer outputs kept for
    /// ReLU masks and pooling indices).
    pub stored: u64,
    /// The same with every saved operand in f32.
    pub fp32: u64,
}

struct GemmLayer {
    /// `[n, k]` master weights (f32), `[n]` bias, and their velocities.
    w: GpuBuffer<f32>,
    b: GpuBuffer<f32>,
    vw: GpuBuffer<f32>,
    vb: GpuBuffer<f32>,
    n: usize,
    k: usize,
    relu: bool,
    /// The convolution's geometry (with batch 1; the step sets the batch), if it is one.
    conv: Option<ConvGeom>,
    scheme: LayerScheme,
    index: usize,
    /// TinyScript gradient levels: for the weight-gradient operand dYᵀ and for dY.
    levels: Option<(LevelTable, LevelTable)>,
    /// TinyScript activation levels (a TinyScript forward): for the input X.
    act_levels: Option<LevelTable>,
}

struct NormLayer {
    channels: usize,
    /// γ then β, their velocity, and the running mean then variance.
    affine: GpuBuffer<f32>,
    v_affine: GpuBuffer<f32>,
    running: GpuBuffer<f32>,
    relu: bool,
    input: (usize, usize, usize),
    /// Transitional batch norm (Bit-Mixer): a state per (bits of the GEMM layer before, bits of
    /// the GEMM layer after), the base state above serving the key the model was built with.
    base_key: (u32, u32),
    key: (u32, u32),
    variants: Vec<((u32, u32), NormState)>,
}

struct NormState {
    affine: GpuBuffer<f32>,
    v_affine: GpuBuffer<f32>,
    running: GpuBuffer<f32>,
}

impl NormLayer {
    /// `(affine, velocity, running)` of the active state.
    fn active(&self) -> (&GpuBuffer<f32>, &GpuBuffer<f32>, &GpuBuffer<f32>) {
        match self.variants.iter().find(|v| v.0 == self.key) {
            Some((_, st)) => (&st.affine, &st.v_affine, &st.running),
            None => (&self.affine, &self.v_affine, &self.running),
        }
    }
}

enum Layer {
    Gemm(Box<GemmLayer>),
    Pool { k: usize, input: (usize, usize, usize) },
    AvgPool { k: usize, input: (usize, usize, usize) },
    Norm(NormLayer),
}

#[allow(clippy::large_enum_variant)] // a handful per step; boxing buys nothing
enum Saved {
    Gemm {
        rows: usize,
        geom: Option<ConvGeom>,
        /// The activation for an f32 weight-gradient product: `[rows, k]`, or `[k, rows]` when
        /// `cols_t` (the dequantized operand of a quantized forward, see `forward`).
        cols_f32: Option<GpuBuffer<f32>>,
        cols_t: bool,
        cols_q: Option<QuantizedTensor>,
        /// A TinyScript forward's activation codes `[rows, k]`.
        cols_ts: Option<TinyScriptTensor>,
        /// The f32 input, kept for refitting the TinyScript activation levels after the step.
        refit_x: Option<GpuBuffer<f32>>,
        /// With a quantized forward and an fp32 gradient: the weights as the quantized backward
        /// sees them, dequantized, `[k, n]`.
        w_t: Option<GpuBuffer<f32>>,
        y: GpuBuffer<f32>,
    },
    Pool {
        geom: PoolGeom,
        arg: GpuBuffer<u32>,
    },
    AvgPool {
        geom: PoolGeom,
    },
    Norm {
        rows: usize,
        x: GpuBuffer<f32>,
        y: GpuBuffer<f32>,
        stats: GpuBuffer<f32>,
    },
}

/// What a step fits: class labels (softmax cross-entropy) or values (squared error).
#[derive(Copy, Clone)]
enum Target<'a> {
    Labels(&'a [u32]),
    /// Squared error; with `per_sample` summed over each sample's outputs and averaged over the
    /// batch, else averaged over every output.
    Values {
        t: &'a [f32],
        per_sample: bool,
    },
}

/// Where a named parameter lives: `(name, shape, buffer, offset in elements)`.
type Slot<'a> = (String, Vec<usize>, &'a GpuBuffer<f32>, usize);

/// Lazily built kernels the engine needs.
struct Kernels {
    qz: Quantizer,
    f32: GemmF32,
    int: Mutex<HashMap<(Format, Format), Arc<GemmInt>>>,
    fp8: Mutex<HashMap<(Format, Format), Arc<GemmFp8>>>,
    im2col: Im2col,
    pool: MaxPool,
    avgpool: AvgPool,
    norm: BatchNorm,
    relu: ReluBackward,
    colsum: ColSum,
    xent: SoftmaxXent,
    mse: Mse,
    sgd: Sgd,
    hadamard: Hadamard,
    ts: TinyScript,
    levels: GemmLevels,
}

impl Kernels {
    fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Kernels {
            qz: Quantizer::new(gpu)?,
            f32: GemmF32::new(gpu)?,
            int: Mutex::new(HashMap::new()),
            fp8: Mutex::new(HashMap::new()),
            im2col: Im2col::new(gpu)?,
            pool: MaxPool::new(gpu)?,
            avgpool: AvgPool::new(gpu)?,
            norm: BatchNorm::new(gpu)?,
            relu: ReluBackward::new(gpu)?,
            colsum: ColSum::new(gpu)?,
            xent: SoftmaxXent::new(gpu)?,
            mse: Mse::new(gpu)?,
            sgd: Sgd::new(gpu)?,
            hadamard: Hadamard::new(gpu)?,
            ts: TinyScript::new(gpu)?,
            levels: GemmLevels::new(gpu)?,
        })
    }

    /// `x` `[rows, cols]` rotated by a block-`block` Hadamard along the rows (BHQ), or `x`
    /// itself without a block.
    #[allow(clippy::too_many_arguments)]
    fn rotated(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        block: Option<u32>,
        label: &str,
    ) -> Result<GpuBuffer<f32>> {
        match block {
            Some(b) => {
                let r = GpuBuffer::<f32>::zeros(gpu, label, rows * cols)?;
                self.hadamard.encode(gpu, enc, x, &r, rows, cols, b, Axis::Rows)?;
                Ok(r)
            }
            None => Ok(x.clone()),
        }
    }

    /// `c ← epilogue(A·Bᵀ)` for packed operands, with whichever kernel multiplies their formats.
    fn packed(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let key = (a.layout.format, b.layout.format);
        if matches!(key.0, Format::Fp8E4M3 | Format::Fp8E5M2) {
            let k = {
                let mut m = self.fp8.lock().unwrap_or_else(|e| e.into_inner());
                match m.get(&key) {
                    Some(k) => k.clone(),
                    None => m.entry(key).or_insert(Arc::new(GemmFp8::new(gpu, key.0, key.1)?)).clone(),
                }
            };
            k.encode(gpu, enc, a, b, epi, c)
        } else {
            let k = {
                let mut m = self.int.lock().unwrap_or_else(|e| e.into_inner());
                match m.get(&key) {
                    Some(k) => k.clone(),
                    None => m.entry(key).or_insert(Arc::new(GemmInt::new(gpu, key.0, key.1)?)).clone(),
                }
            };
            k.encode(gpu, enc, a, b, epi, c)
        }
    }
}

/// A model being trained on one GPU.
pub struct Trainer<'g> {
    gpu: &'g Gpu,
    k: Kernels,
    spec: ModelSpec,
    scheme: TrainScheme,
    opt: OptimConfig,
    layers: Vec<Layer>,
    seed: u32,
    step: u64,
    last_activation: ActivationBytes,
    /// Evaluate batch norm with batch statistics (for gradient checks); normally false.
    batch_stats_in_eval: bool,
    /// Transitional batch norm (Bit-Mixer).
    transitional: bool,
}

/// A TinyScript fit's result, or `None` when there was nothing to fit (an all-zero tensor: the
/// layer then keeps the levels it had).
fn fitted<T>(fit: Result<T>) -> Result<Option<T>> {
    match fit {
        Ok(t) => Ok(Some(t)),
        Err(Error::InvalidArgument(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn uniform_init(n: usize, bound: f32, key: u32) -> Vec<f32> {
    (0..n as u32).map(|i| (rng::uniform(key, i) * 2.0 - 1.0) * bound).collect()
}

impl<'g> Trainer<'g> {
    /// Builds the model on `gpu` with weights drawn from `seed` (He-uniform, zero biases).
    pub fn new(gpu: &'g Gpu, spec: ModelSpec, scheme: TrainScheme, opt: OptimConfig, seed: u32) -> Result<Self> {
        let shapes = spec.layer_shapes()?;
        if opt.batch == 0 {
            return Err(Error::InvalidArgument("batch size must be at least 1".into()));
        }
        let n_train = spec.layers.iter().filter(|l| l.is_gemm()).count();
        let mut layers = Vec::new();
        let mut input = spec.input;
        let nonneg_inputs = spec.nonnegative_inputs();
        let mut index = 0;
        for (li, l) in spec.layers.iter().enumerate() {
            match *l {
                LayerSpec::MaxPool { k } => layers.push(Layer::Pool { k, input }),
                LayerSpec::AvgPool { k } => layers.push(Layer::AvgPool { k, input }),
                LayerSpec::BatchNorm { relu } => {
                    let c = input.2;
                    let affine: Vec<f32> = (0..2 * c).map(|i| if i < c { 1.0 } else { 0.0 }).collect();
                    let running: Vec<f32> = (0..2 * c).map(|i| if i < c { 0.0 } else { 1.0 }).collect();
                    layers.push(Layer::Norm(NormLayer {
                        channels: c,
                        affine: GpuBuffer::from_slice(gpu, "bn affine", &affine)?,
                        v_affine: GpuBuffer::zeros(gpu, "bn velocity", 2 * c)?,
                        running: GpuBuffer::from_slice(gpu, "bn running", &running)?,
                        relu,
                        input,
                        base_key: (0, 0),
                        key: (0, 0),
                        variants: Vec::new(),
                    }));
                }
                LayerSpec::Linear { outputs, relu } | LayerSpec::Conv { channels: outputs, relu, .. } => {
                    let (kdim, conv) = match *l {
                        LayerSpec::Conv { kernel, stride, pad, .. } => {
                            let g = ConvGeom {
                                batch: 1,
                                h: input.0,
                                w: input.1,
                                c: input.2,
                                kh: kernel,
                                kw: kernel,
                                stride,
                                pad,
                            };
                            (kernel * kernel * input.2, Some(g))
                        }
                        _ => (input.0 * input.1 * input.2, None),
                    };
                    let ls = scheme.layer(index, n_train);
                    ls.check()?;
                    if let Some(b) = ls.rotate {
                        if !(2..=256).contains(&b) || !b.is_power_of_two() || !opt.batch.is_multiple_of(b as usize) {
                            return Err(Error::InvalidArgument(format!(
                                "rotation block {b} must be a power of two in 2..=256 dividing the batch ({})",
                                opt.batch
                            )));
                        }
                    }
                    let bound = if relu { (6.0 / kdim as f32).sqrt() } else { (3.0 / kdim as f32).sqrt() };
                    let w = uniform_init(outputs * kdim, bound, rng::key(seed, 0x1000 + li as u32));
                    layers.push(Layer::Gemm(Box::new(GemmLayer {
                        w: GpuBuffer::from_slice(gpu, "weight", &w)?,
                        b: GpuBuffer::zeros(gpu, "bias", outputs)?,
                        vw: GpuBuffer::zeros(gpu, "weight velocity", outputs * kdim)?,
                        vb: GpuBuffer::zeros(gpu, "bias velocity", outputs)?,
                        n: outputs,
                        k: kdim,
                        relu,
                        conv,
                        scheme: ls,
                        index,
                        levels: match ls.gradient {
                            GradPrecision::TinyScript { bits, .. } => {
                                Some((LevelTable::uniform(bits)?, LevelTable::uniform(bits)?))
                            }
                            _ => None,
                        },
                        // After a ReLU the input is nonnegative: an unsigned table, twice the levels.
                        act_levels: match ls.forward {
                            ForwardPrecision::TinyScript { bits, .. } => {
                                Some(LevelTable::uniform_as(bits, !nonneg_inputs[li])?)
                            }
                            _ => None,
                        },
                    })));
                    index += 1;
                }
            }
            input = shapes[li];
        }
        Ok(Trainer {
            gpu,
            k: Kernels::new(gpu)?,
            spec,
            scheme,
            opt,
            layers,
            seed,
            step: 0,
            last_activation: ActivationBytes::default(),
            batch_stats_in_eval: false,
            transitional: false,
        })
    }

    /// The model.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The scheme.
    pub fn scheme(&self) -> &TrainScheme {
        &self.scheme
    }

    /// The optimizer settings.
    pub fn optim(&self) -> &OptimConfig {
        &self.opt
    }

    /// The seed the trainer was built with.
    pub fn seed(&self) -> u32 {
        self.seed
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Makes forward-only passes ([`Trainer::logits`], [`Trainer::evaluate`]) normalize with the
    /// batch's statistics instead of the running ones, as the training step does. Meant for
    /// gradient checks: it also updates the running statistics on every such pass.
    pub fn set_batch_stats_in_eval(&mut self, on: bool) {
        self.batch_stats_in_eval = on;
    }

    /// The forward bit-width of every trainable layer: 2, 3, 4 (int2/int3/int4), 8 (int8 or
    /// fp8) or 32 (fp32).
    pub fn bits(&self) -> Vec<u32> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                Layer::Gemm(g) => Some(g.scheme.forward.bits()),
                _ => None,
            })
            .collect()
    }

    /// Sets trainable layer `layer`'s forward bit-width at run time (Bit-Mixer): 2, 3, 4, 8 →
    /// int2, int3, int4, int8 operands, 32 → fp32; the gradient precision stays, so the
    /// combination must be one a GEMM runs ([`LayerScheme::check`]). With transitional batch
    /// norm on, each batch norm switches to the state of its (bits before, bits after) pair,
    /// created from its base state the first time the pair is used.
    pub fn set_bits(&mut self, layer: usize, bits: u32) -> Result<()> {
        let forward = super::scheme::ForwardPrecision::from_bits(bits)
            .ok_or_else(|| Error::InvalidArgument(format!("run-time bit-widths are 2, 3, 4, 8 or 32, not {bits}")))?;
        let g = self
            .layers
            .iter_mut()
            .filter_map(|l| match l {
                Layer::Gemm(g) => Some(g),
                _ => None,
            })
            .nth(layer)
            .ok_or_else(|| Error::InvalidArgument(format!("no trainable layer {layer}")))?;
        let s = LayerScheme { forward, ..g.scheme };
        s.check()?;
        g.scheme = s;
        self.update_norm_keys()
    }

    /// Turns transitional batch norm on: from now on each batch norm keeps a state per pair of
    /// neighbouring bit-widths (see [`Trainer::set_bits`]).
    pub fn enable_transitional_bn(&mut self) -> Result<()> {
        self.transitional = true;
        for l in &mut self.layers {
            if let Layer::Norm(n) = l {
                n.variants.clear();
            }
        }
        let keys = self.norm_keys();
        for (l, k) in self.layers.iter_mut().zip(keys) {
            if let (Layer::Norm(n), Some(k)) = (l, k) {
                n.base_key = k;
                n.key = k;
            }
        }
        Ok(())
    }

    /// Each batch norm's (bits of the GEMM layer before it, bits of the one after; 32 if none).
    fn norm_keys(&self) -> Vec<Option<(u32, u32)>> {
        let bits = self.bits();
        let mut seen = 0usize;
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Gemm(_) => {
                    seen += 1;
                    None
                }
                Layer::Norm(_) => {
                    Some((if seen == 0 { 32 } else { bits[seen - 1] }, bits.get(seen).copied().unwrap_or(32)))
                }
                _ => None,
            })
            .collect()
    }

    fn update_norm_keys(&mut self) -> Result<()> {
        if !self.transitional {
            return Ok(());
        }
        let keys = self.norm_keys();
        let gpu = self.gpu;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for (l, k) in self.layers.iter_mut().zip(keys) {
            if let (Layer::Norm(n), Some(k)) = (l, k) {
                n.key = k;
                if k != n.base_key && !n.variants.iter().any(|v| v.0 == k) {
                    let copy =
                        |enc: &mut wgpu::CommandEncoder, src: &GpuBuffer<f32>, label| -> Result<GpuBuffer<f32>> {
                            let dst = GpuBuffer::<f32>::zeros(gpu, label, src.len())?;
                            enc.copy_buffer_to_buffer(src.buffer(), 0, dst.buffer(), 0, src.bytes());
                            Ok(dst)
                        };
                    let st = NormState {
                        affine: copy(&mut enc, &n.affine, "tbn affine")?,
                        v_affine: GpuBuffer::zeros(gpu, "tbn velocity", n.v_affine.len())?,
                        running: copy(&mut enc, &n.running, "tbn running")?,
                    };
                    n.variants.push((k, st));
                }
            }
        }
        gpu.submit([enc.finish()]);
        Ok(())
    }

    /// Activation memory of the last training step.
    pub fn activation_bytes(&self) -> ActivationBytes {
        self.last_activation
    }

    fn stream(&self, layer: usize, purpose: u32) -> u32 {
        (self.step as u32).wrapping_mul(4096).wrapping_add(layer as u32 * 32 + purpose * 16)
    }

    /// Records the forward pass of `x` (`batch` samples); returns the logits and, when
    /// `train`, what the backward pass needs.
    fn forward(
        &self,
        enc: &mut impl Record,
        x: GpuBuffer<f32>,
        batch: usize,
        train: bool,
    ) -> Result<(GpuBuffer<f32>, Vec<Saved>, ActivationBytes)> {
        let gpu = self.gpu;
        let mut cur = x;
        let mut saved = Vec::new();
        let mut bytes = ActivationBytes::default();
        for layer in &self.layers {
            match layer {
                Layer::Pool { k, input } => {
                    let geom = PoolGeom { batch, h: input.0, w: input.1, c: input.2, k: *k };
                    let y = GpuBuffer::<f32>::zeros(gpu, "pool y", geom.out_len())?;
                    let arg = GpuBuffer::<u32>::zeros(gpu, "pool arg", geom.out_len())?;
                    self.k.pool.encode_forward(gpu, enc, &geom, &cur, &y, &arg)?;
                    if train {
                        bytes.stored += arg.bytes();
                        bytes.fp32 += arg.bytes();
                        saved.push(Saved::Pool { geom, arg });
                    }
                    cur = y;
                }
                Layer::AvgPool { k, input } => {
                    let geom = PoolGeom { batch, h: input.0, w: input.1, c: input.2, k: *k };
                    let y = GpuBuffer::<f32>::zeros(gpu, "avgpool y", geom.out_len())?;
                    self.k.avgpool.encode_forward(gpu, enc, &geom, &cur, &y)?;
                    if train {
                        saved.push(Saved::AvgPool { geom });
                    }
                    cur = y;
                }
                Layer::Norm(n) => {
                    let rows = batch * n.input.0 * n.input.1;
                    let stats = GpuBuffer::<f32>::zeros(gpu, "bn stats", 2 * n.channels)?;
                    let y = GpuBuffer::<f32>::zeros(gpu, "bn y", rows * n.channels)?;
                    let (affine, _, running) = n.active();
                    let b =
                        NormBuffers { x: &cur, stats: &stats, affine, running, y: &y, dy: None, dx: None, sums: None };
                    if train || self.batch_stats_in_eval {
                        self.k.norm.encode_train_forward(gpu, enc, &b, rows, n.channels, n.relu)?;
                    } else {
                        self.k.norm.encode_eval_forward(gpu, enc, &b, rows, n.channels, n.relu)?;
                    }
                    if train {
                        bytes.stored += cur.bytes() + y.bytes();
                        bytes.fp32 += cur.bytes() + y.bytes();
                        saved.push(Saved::Norm { rows, x: cur.clone(), y: y.clone(), stats });
                    }
                    cur = y;
                }
                Layer::Gemm(l) => {
                    let (cols, rows, geom) = match l.conv {
                        Some(g1) => {
                            let g = ConvGeom { batch, ..g1 };
                            let cols = GpuBuffer::<f32>::zeros(gpu, "im2col", g.rows() * g.kdim())?;
                            self.k.im2col.encode_unfold(gpu, enc, &g, &cur, &cols)?;
                            (cols, g.rows(), Some(g))
                        }
                        None => (cur.clone(), batch, None),
                    };
                    let y = GpuBuffer::<f32>::zeros(gpu, "layer y", rows * l.n)?;
                    let epi = Epilogue { bias: Some(&l.b), relu: l.relu, ..Default::default() };
                    let xt = GpuTensor::from_buffer(cols.clone(), &[rows, l.k])?;
                    let mut cols_ts = None;
                    match (&l.act_levels, l.scheme.forward.format()) {
                        (Some(table), _) => {
                            // TinyScript: Q(X)·Wᵀ, X stochastically rounded in training (unbiased),
                            // to nearest in evaluation; W [n, k] is op(B) as stored.
                            let rounding = if train {
                                Rounding::Stochastic { seed: self.seed, stream: self.stream(l.index, 2) }
                            } else {
                                Rounding::Nearest
                            };
                            let qx = self.k.ts.encode_quantize(gpu, enc, &cols, rows, l.k, table, rounding)?;
                            self.k.levels.encode(gpu, enc, &qx, &l.w, l.n, false, &epi, &y)?;
                            cols_ts = Some(qx);
                        }
                        (None, None) => {
                            self.k.f32.encode(gpu, enc, &cols, &l.w, GemmShape::nt(rows, l.n, l.k), &epi, &y)?
                        }
                        (None, Some(f)) => {
                            let qa = self.k.qz.quantize(gpu, enc, &xt, QuantScheme::per_row(f))?;
                            let wt = GpuTensor::from_buffer(l.w.clone(), &[l.n, l.k])?;
                            let qw = self.k.qz.quantize(gpu, enc, &wt, QuantScheme::per_row(f))?;
                            self.k.packed(gpu, enc, &qa, &qw, &epi, &y)?;
                        }
                    }
                    if train {
                        let f32_bytes = cols.bytes();
                        let (mut cols_t, mut w_t) = (false, None);
                        let (cols_f32, cols_q) = match (l.scheme.gradient, l.scheme.forward.format()) {
                            _ if cols_ts.is_some() => (None, None),
                            (GradPrecision::Fp32, Some(f)) => {
                                // The operands a quantized gradient would meet (X and W quantized
                                // along the other dimension), dequantized: with them the fp32
                                // gradient differs from the quantized one by the gradient
                                // quantizer alone.
                                let r = self.k.rotated(gpu, enc, &cols, rows, l.k, l.scheme.rotate, "rotated x")?;
                                let src = GpuTensor::from_buffer(r, &[rows, l.k])?;
                                let qxt = self.k.qz.quantize_transposed(gpu, enc, &src, QuantScheme::per_row(f))?;
                                let wt = GpuTensor::from_buffer(l.w.clone(), &[l.n, l.k])?;
                                let qwt = self.k.qz.quantize_transposed(gpu, enc, &wt, QuantScheme::per_row(f))?;
                                w_t = Some(self.k.qz.dequantize(gpu, enc, &qwt)?.buffer().clone());
                                cols_t = true;
                                (Some(self.k.qz.dequantize(gpu, enc, &qxt)?.buffer().clone()), None)
                            }
                            (GradPrecision::Fp32, None) | (_, None) => (Some(cols.clone()), None),
                            (_, Some(f)) => {
                                let r = self.k.rotated(gpu, enc, &cols, rows, l.k, l.scheme.rotate, "rotated x")?;
                                let src = GpuTensor::from_buffer(r, &[rows, l.k])?;
                                (None, Some(self.k.qz.quantize_transposed(gpu, enc, &src, QuantScheme::per_row(f))?))
                            }
                        };
                        let kept = match (&cols_q, &cols_ts) {
                            (Some(q), _) => q.bytes(),
                            (_, Some(t)) => t.codes.bytes() + t.scales.bytes(),
                            _ => f32_bytes,
                        };
                        bytes.stored += kept + if l.relu { y.bytes() } else { 0 };
                        bytes.fp32 += f32_bytes + if l.relu { y.bytes() } else { 0 };
                        // TinyScript: refit the activation levels from this step's input.
                        let refit_x = match l.scheme.forward {
                            ForwardPrecision::TinyScript { fitted: true, .. }
                                if self.step.is_multiple_of(TINYSCRIPT_REFIT) =>
                            {
                                Some(cols.clone())
                            }
                            _ => None,
                        };
                        saved.push(Saved::Gemm {
                            rows,
                            geom,
                            cols_f32,
                            cols_t,
                            cols_q,
                            cols_ts,
                            refit_x,
                            w_t,
                            y: y.clone(),
                        });
                    }
                    cur = y;
                }
            }
        }
        Ok((cur, saved, bytes))
    }

    fn check_batch(&self, x: &[f32], labels: &[u32]) -> Result<usize> {
        self.spec.shapes().map_err(|e| {
            Error::InvalidArgument(format!("{e}: this model has no logits to classify with (use step_regression)"))
        })?;
        let dim = self.spec.input.0 * self.spec.input.1 * self.spec.input.2;
        if labels.is_empty() {
            return Err(Error::Empty("Trainer::step"));
        }
        if x.len() != labels.len() * dim {
            return Err(Error::Shape {
                op: "Trainer::step",
                detail: format!(
                    "{} labels need {} input values ({} per sample), got {}",
                    labels.len(),
                    labels.len() * dim,
                    dim,
                    x.len()
                ),
            });
        }
        let classes = self.spec.classes() as u32;
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(Error::InvalidArgument(format!("label {bad} out of range for {classes} classes")));
        }
        Ok(labels.len())
    }

    /// One SGD step on a batch (`x`: samples × `h·w·c` values, channels last) with learning rate
    /// `lr`. Returns the batch's mean loss and correct count. The whole step is one submission.
    pub fn step(&mut self, x: &[f32], labels: &[u32], lr: f32) -> Result<StepStats> {
        Ok(self.run_step(x, Target::Labels(labels), lr, false)?.0)
    }

    /// One SGD step regressing the model's outputs onto `targets` (samples × output size) with
    /// the mean squared error over every output of the batch (PyTorch's `MSELoss`); returns
    /// that loss. The training step of divide-and-conquer distillation ([`super::dcq`]).
    pub fn step_regression(&mut self, x: &[f32], targets: &[f32], lr: f32) -> Result<f32> {
        Ok(self.run_step(x, Target::Values { t: targets, per_sample: false }, lr, false)?.0.loss)
    }

    /// As [`Trainer::step_regression`] with the squared distance between a sample's output and
    /// its target summed over the output's values and averaged over the batch (`‖f_s − f_t‖²`
    /// per sample, the feature loss of DCQ): its gradients have the scale of a classification
    /// step's whatever the output's width, so the same learning rate serves a 10-value and a
    /// 256-value section. Returns that loss.
    pub fn step_features(&mut self, x: &[f32], targets: &[f32], lr: f32) -> Result<f32> {
        Ok(self.run_step(x, Target::Values { t: targets, per_sample: true }, lr, false)?.0.loss)
    }

    /// Values per sample of the model's output.
    pub fn output_len(&self) -> usize {
        self.spec.layer_shapes().ok().and_then(|s| s.last().copied()).map_or(0, |(h, w, c)| h * w * c)
    }

    fn check_regression(&self, x: &[f32], t: &[f32]) -> Result<usize> {
        let dim = self.spec.input.0 * self.spec.input.1 * self.spec.input.2;
        let out = self.output_len();
        if x.is_empty() || dim == 0 || out == 0 {
            return Err(Error::Empty("Trainer::step_regression"));
        }
        let batch = x.len() / dim;
        if x.len() != batch * dim || t.len() != batch * out {
            return Err(Error::Shape {
                op: "Trainer::step_regression",
                detail: format!(
                    "inputs are samples of {dim} values and targets of {out}; got {} and {}",
                    x.len(),
                    t.len()
                ),
            });
        }
        Ok(batch)
    }

    /// The gradient of the batch's mean loss for every parameter, as the step computes it under
    /// the scheme (quantized products, stochastic rounding), without updating anything but the
    /// step counter (so the next call draws fresh rounding) and batch-norm running statistics.
    /// Named and shaped as in [`Trainer::parameters`], without the running statistics.
    pub fn gradients(&mut self, x: &[f32], labels: &[u32]) -> Result<Vec<Parameter>> {
        let (_, grads) = self.run_step(x, Target::Labels(labels), 0.0, true)?;
        let mut out = Vec::new();
        for (name, shape, buf, off) in grads {
            let len: usize = shape.iter().product();
            let v = buf.read(self.gpu)?;
            out.push((name, shape, v[off..off + len].to_vec()));
        }
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn run_step(
        &mut self,
        x: &[f32],
        target: Target,
        lr: f32,
        collect: bool,
    ) -> Result<(StepStats, Vec<(String, Vec<usize>, GpuBuffer<f32>, usize)>)> {
        let batch = match target {
            Target::Labels(labels) => self.check_batch(x, labels)?,
            Target::Values { t, .. } => self.check_regression(x, t)?,
        };
        if let Some(l) = self.layers.iter().find_map(|l| match l {
            Layer::Gemm(g) => g.scheme.rotate.filter(|b| !batch.is_multiple_of(*b as usize)),
            _ => None,
        }) {
            return Err(Error::InvalidArgument(format!(
                "batch of {batch} is not a multiple of the rotation block {l}"
            )));
        }
        let gpu = self.gpu;
        let t_start = std::time::Instant::now();
        // The step's buffers are the last step's (same shapes), not fresh allocations.
        let _recycle = gpu.recycling();
        let xb = GpuBuffer::from_slice(gpu, "batch x", x)?;
        // Consecutive kernels share compute passes (a pass per dispatch cost the H100 ~35 µs).
        let mut enc = crate::Recorder::new(gpu, "lowbit train step");
        let (logits, saved, bytes) = self.forward(&mut enc, xb, batch, true)?;
        let outputs = logits.len() / batch;
        let loss = GpuBuffer::<f32>::zeros(gpu, "loss", batch)?;
        let correct = GpuBuffer::<u32>::zeros(gpu, "correct", batch)?;
        let mut grad = GpuBuffer::<f32>::zeros(gpu, "dlogits", batch * outputs)?;
        match target {
            Target::Labels(labels) => {
                let lb = GpuBuffer::from_slice(gpu, "batch labels", labels)?;
                let scale = 1.0 / batch as f32;
                self.k.xent.encode(gpu, &mut enc, &logits, &lb, outputs, scale, &loss, &correct, &grad)?;
            }
            Target::Values { t, per_sample } => {
                let tb = GpuBuffer::from_slice(gpu, "batch targets", t)?;
                let scale = 1.0 / (batch * if per_sample { 1 } else { outputs }) as f32;
                self.k.mse.encode(gpu, &mut enc, &logits, &tb, batch, outputs, scale, &loss, &grad)?;
            }
        }
        let sgd = |wd: f32| SgdStep { lr, momentum: self.opt.momentum, weight_decay: wd };
        let mut grads = Vec::new();
        let mut refit = Vec::new();
        let mut refit_x_list = Vec::new();
        for (li, (layer, sv)) in self.layers.iter().zip(saved.iter()).enumerate().rev() {
            let need_dx = li > 0;
            match (layer, sv) {
                (Layer::Pool { .. }, Saved::Pool { geom, arg }) => {
                    let dx = GpuBuffer::<f32>::zeros(gpu, "pool dx", geom.in_len())?;
                    self.k.pool.encode_backward(gpu, &mut enc, geom, &grad, arg, &dx)?;
                    grad = dx;
                }
                (Layer::AvgPool { .. }, Saved::AvgPool { geom }) => {
                    let dx = GpuBuffer::<f32>::zeros(gpu, "avgpool dx", geom.in_len())?;
                    self.k.avgpool.encode_backward(gpu, &mut enc, geom, &grad, &dx)?;
                    grad = dx;
                }
                (Layer::Norm(n), Saved::Norm { rows, x, y, stats }) => {
                    let dx = GpuBuffer::<f32>::zeros(gpu, "bn dx", rows * n.channels)?;
                    let sums = GpuBuffer::<f32>::zeros(gpu, "bn grads", 2 * n.channels)?;
                    let (affine, v_affine, running) = n.active();
                    let b =
                        NormBuffers { x, stats, affine, running, y, dy: Some(&grad), dx: Some(&dx), sums: Some(&sums) };
                    self.k.norm.encode_backward(gpu, &mut enc, &b, *rows, n.channels, n.relu)?;
                    if collect {
                        let c = n.channels;
                        grads.push((format!("layers.{li}.bias"), vec![c], sums.clone(), c));
                        grads.push((format!("layers.{li}.weight"), vec![c], sums.clone(), 0));
                    } else {
                        self.k.sgd.encode(gpu, &mut enc, affine, v_affine, &sums, sgd(0.0))?;
                    }
                    grad = dx;
                }
                (Layer::Gemm(l), Saved::Gemm { rows, geom, cols_f32, cols_t, cols_q, cols_ts, refit_x, w_t, y }) => {
                    let rows = *rows;
                    let g = if l.relu {
                        let g = GpuBuffer::<f32>::zeros(gpu, "relu dy", rows * l.n)?;
                        self.k.relu.encode(gpu, &mut enc, y, &grad, &g)?;
                        g
                    } else {
                        grad.clone()
                    };
                    let db = GpuBuffer::<f32>::zeros(gpu, "db", l.n)?;
                    self.k.colsum.encode(gpu, &mut enc, &g, rows, l.n, &db)?;
                    let dw = GpuBuffer::<f32>::zeros(gpu, "dw", l.n * l.k)?;
                    let dcols = if need_dx { Some(GpuBuffer::<f32>::zeros(gpu, "dcols", rows * l.k)?) } else { None };
                    let none = Epilogue::default();
                    if let (GradPrecision::TinyScript { fitted, .. }, Some((t_w, t_x))) = (l.scheme.gradient, &l.levels)
                    {
                        let r =
                            |purpose| Rounding::Stochastic { seed: self.seed, stream: self.stream(l.index, purpose) };
                        // dW = Q(dYᵀ)·X: dY [rows, n] read transposed; X [rows, k] (f32, or the
                        // TinyScript forward's codes) is op(B) stored [K, N].
                        let qgt = self.k.ts.encode_quantize_as(gpu, &mut enc, &g, l.n, rows, true, t_w, r(0))?;
                        match (cols_f32, cols_ts) {
                            (_, Some(qx)) => self.k.levels.encode_coded(gpu, &mut enc, &qgt, qx, true, &none, &dw)?,
                            (Some(cols), None) => {
                                self.k.levels.encode(gpu, &mut enc, &qgt, cols, l.k, true, &none, &dw)?
                            }
                            (None, None) => unreachable!("a TinyScript gradient saves X as f32 or as codes"),
                        }
                        if let Some(dc) = &dcols {
                            // dX = Q(dY)·W: W [n, k] is op(B) stored [K, N].
                            let qg = self.k.ts.encode_quantize(gpu, &mut enc, &g, rows, l.n, t_x, r(1))?;
                            self.k.levels.encode(gpu, &mut enc, &qg, &l.w, l.k, true, &none, dc)?;
                        }
                        if fitted && self.step.is_multiple_of(TINYSCRIPT_REFIT) {
                            refit.push((li, g.clone(), rows, l.n));
                        }
                        if let Some(x) = refit_x {
                            refit_x_list.push((li, x.clone(), rows, l.k));
                        }
                    } else {
                        match (l.scheme.gradient.format(), cols_f32) {
                            (None, Some(cols)) | (Some(_), Some(cols)) => {
                                // A rotated operand (meter reference) meets the gradient rotated the same way.
                                let block = l.scheme.rotate.filter(|_| *cols_t);
                                let g_dw = self.k.rotated(gpu, &mut enc, &g, rows, l.n, block, "rotated dy")?;
                                self.k.f32.encode(
                                    gpu,
                                    &mut enc,
                                    &g_dw,
                                    cols,
                                    GemmShape { m: l.n, n: l.k, k: rows, trans_a: true, trans_b: !*cols_t },
                                    &none,
                                    &dw,
                                )?;
                                if let Some(dc) = &dcols {
                                    // W stored [n, k] is op(B) as [K, N]; its dequantized transpose [k, n] is [N, K].
                                    let (wb, tb) = match w_t {
                                        Some(wt) => (wt, false),
                                        None => (&l.w, true),
                                    };
                                    self.k.f32.encode(
                                        gpu,
                                        &mut enc,
                                        &g,
                                        wb,
                                        GemmShape { m: rows, n: l.k, k: l.n, trans_a: false, trans_b: tb },
                                        &none,
                                        dc,
                                    )?;
                                }
                            }
                            (Some(gf), None) => {
                                let ff = l.scheme.forward.format().expect("quantized saves imply a quantized forward");
                                let rounding = |purpose| {
                                    if l.scheme.stochastic {
                                        Rounding::Stochastic { seed: self.seed, stream: self.stream(l.index, purpose) }
                                    } else {
                                        Rounding::Nearest
                                    }
                                };
                                let gscheme = |purpose| QuantScheme {
                                    format: gf,
                                    granularity: l.scheme.grad_granularity,
                                    rounding: rounding(purpose),
                                };
                                let g_rot =
                                    self.k.rotated(gpu, &mut enc, &g, rows, l.n, l.scheme.rotate, "rotated dy")?;
                                let gt = GpuTensor::from_buffer(g_rot, &[rows, l.n])?;
                                let qgt = if l.scheme.smp > 1 {
                                    self.k.qz.quantize_transposed_samples(
                                        gpu,
                                        &mut enc,
                                        &gt,
                                        gscheme(0),
                                        l.scheme.smp,
                                    )?
                                } else {
                                    self.k.qz.quantize_transposed(gpu, &mut enc, &gt, gscheme(0))?
                                };
                                let saved_q = cols_q.as_ref().expect("quantized activation saved");
                                self.k.packed(gpu, &mut enc, &qgt, saved_q, &none, &dw)?;
                                if let Some(dc) = &dcols {
                                    let gplain = GpuTensor::from_buffer(g.clone(), &[rows, l.n])?;
                                    let qg = if l.scheme.smp > 1 {
                                        self.k.qz.quantize_samples(gpu, &mut enc, &gplain, gscheme(1), l.scheme.smp)?
                                    } else {
                                        self.k.qz.quantize(gpu, &mut enc, &gplain, gscheme(1))?
                                    };
                                    let wt = GpuTensor::from_buffer(l.w.clone(), &[l.n, l.k])?;
                                    let qwt =
                                        self.k.qz.quantize_transposed(gpu, &mut enc, &wt, QuantScheme::per_row(ff))?;
                                    self.k.packed(gpu, &mut enc, &qg, &qwt, &none, dc)?;
                                }
                            }
                            (None, None) => unreachable!("an fp32 gradient always saves f32 activations"),
                        }
                    }
                    if collect {
                        grads.push((format!("layers.{li}.bias"), vec![l.n], db.clone(), 0));
                        grads.push((format!("layers.{li}.weight"), vec![l.n, l.k], dw.clone(), 0));
                    } else {
                        self.k.sgd.encode(gpu, &mut enc, &l.w, &l.vw, &dw, sgd(self.opt.weight_decay))?;
                        self.k.sgd.encode(gpu, &mut enc, &l.b, &l.vb, &db, sgd(0.0))?;
                    }
                    if let Some(dc) = dcols {
                        grad = match geom {
                            Some(gm) => {
                                let dx = GpuBuffer::<f32>::zeros(gpu, "conv dx", gm.input_len())?;
                                self.k.im2col.encode_fold(gpu, &mut enc, gm, &dc, &dx)?;
                                dx
                            }
                            None => dc,
                        };
                    }
                }
                _ => unreachable!("saved state matches its layer"),
            }
        }
        // Loss and correct counts come back with the step's own submission: one round trip.
        let (lb, cb) = (loss.buffer().size(), correct.buffer().size());
        let back = crate::tensor::staging(gpu, lb + cb);
        loss.copy_into(enc.encoder(), &back, 0);
        correct.copy_into(enc.encoder(), &back, lb);
        let cmd = enc.finish();
        let t_recorded = std::time::Instant::now();
        gpu.submit([cmd]);
        let t_submitted = std::time::Instant::now();
        // TinyScript: fit the levels to this step's gradients, for the steps that follow.
        for (li, g, rows, n) in refit {
            if let Layer::Gemm(l) = &mut self.layers[li] {
                if let Some((old_w, old_x)) = &l.levels {
                    // dY [rows, n]: scaled per row for dY·W (t_x), per column for dYᵀ·X (t_w).
                    let kind = |t: &LevelTable| (t.bits, t.signed);
                    let fit = self.k.ts.fit_rows_and_columns(gpu, &g, (rows, n), kind(old_x), kind(old_w));
                    if let Some((_, t_x, t_w)) = fitted(fit)? {
                        l.levels = Some((t_w, t_x));
                    }
                }
            }
        }
        // And the activation levels to this step's inputs.
        for (li, x, rows, k) in refit_x_list {
            if let Layer::Gemm(l) = &mut self.layers[li] {
                if let Some(old) = &l.act_levels {
                    if let Some((_, table)) = fitted(self.k.ts.fit_as(gpu, &x, rows, k, false, old.bits, old.signed))? {
                        l.act_levels = Some(table);
                    }
                }
            }
        }
        let raw = crate::tensor::map_read(gpu, &back)?;
        let host = StepHostTime {
            record: (t_recorded - t_start).as_secs_f64(),
            submit: (t_submitted - t_recorded).as_secs_f64(),
            wait: t_submitted.elapsed().as_secs_f64(),
        };
        let losses: Vec<f32> = bytemuck::pod_collect_to_vec(&raw[..4 * batch]);
        let correct: Vec<u32> = bytemuck::pod_collect_to_vec(&raw[lb as usize..lb as usize + 4 * batch]);
        self.step += 1;
        self.last_activation = bytes;
        let per = match target {
            Target::Labels(_) => batch,
            Target::Values { per_sample: true, .. } => batch,
            Target::Values { per_sample: false, .. } => batch * outputs,
        };
        let mean = losses.iter().map(|&l| l as f64).sum::<f64>() / per as f64;
        if !mean.is_finite() {
            return Err(Error::InvalidArgument(format!("training diverged at step {}: loss {mean}", self.step)));
        }
        grads.reverse();
        Ok((StepStats { loss: mean as f32, correct: correct.iter().sum(), host }, grads))
    }

    /// Test accuracy and mean loss on `data`, forward only, in the scheme's forward precision.
    pub fn evaluate(&self, data: &Dataset) -> Result<(f64, f64)> {
        if data.is_empty() {
            return Err(Error::Empty("Trainer::evaluate"));
        }
        let gpu = self.gpu;
        let classes = self.spec.classes();
        let (mut right, mut loss_sum) = (0u64, 0f64);
        let chunk = self.opt.batch;
        let order: Vec<usize> = (0..data.len()).collect();
        for idx in order.chunks(chunk) {
            let (x, labels) = data.gather(idx);
            let batch = self.check_batch(&x, &labels)?;
            // Each batch reuses the last one's buffers (see `run_step`).
            let _recycle = gpu.recycling();
            let mut enc = crate::Recorder::new(gpu, "lowbit evaluation");
            let (logits, _, _) = self.forward(&mut enc, GpuBuffer::from_slice(gpu, "eval x", &x)?, batch, false)?;
            let lb = GpuBuffer::from_slice(gpu, "eval labels", &labels)?;
            let loss = GpuBuffer::<f32>::zeros(gpu, "loss", batch)?;
            let correct = GpuBuffer::<u32>::zeros(gpu, "correct", batch)?;
            let dz = GpuBuffer::<f32>::zeros(gpu, "dz", batch * classes)?;
            self.k.xent.encode(gpu, &mut enc, &logits, &lb, classes, 0.0, &loss, &correct, &dz)?;
            let lbytes = loss.buffer().size();
            let back = crate::tensor::staging(gpu, lbytes + correct.buffer().size());
            loss.copy_into(enc.encoder(), &back, 0);
            correct.copy_into(enc.encoder(), &back, lbytes);
            gpu.submit([enc.finish()]);
            let raw = crate::tensor::map_read(gpu, &back)?;
            let losses: Vec<f32> = bytemuck::pod_collect_to_vec(&raw[..4 * batch]);
            let rights: Vec<u32> = bytemuck::pod_collect_to_vec(&raw[lbytes as usize..lbytes as usize + 4 * batch]);
            right += rights.iter().map(|&c| c as u64).sum::<u64>();
            loss_sum += losses.iter().map(|&l| l as f64).sum::<f64>();
        }
        Ok((right as f64 / data.len() as f64, loss_sum / data.len() as f64))
    }

    /// The logits of a batch (forward only).
    pub fn logits(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        let dim = self.spec.input.0 * self.spec.input.1 * self.spec.input.2;
        if batch == 0 || x.len() != batch * dim {
            return Err(Error::Shape {
                op: "Trainer::logits",
                detail: format!("{batch} samples need {} values, got {}", batch * dim, x.len()),
            });
        }
        let (logits, _, _) = self.forward(&mut enc, GpuBuffer::from_slice(self.gpu, "x", x)?, batch, false)?;
        self.gpu.submit([enc.finish()]);
        logits.read(self.gpu)
    }

    /// Every named parameter and where it lives.
    fn slots(&self) -> Vec<Slot<'_>> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            match l {
                Layer::Gemm(g) => {
                    out.push((format!("layers.{i}.weight"), vec![g.n, g.k], &g.w, 0));
                    out.push((format!("layers.{i}.bias"), vec![g.n], &g.b, 0));
                }
                Layer::Norm(n) => {
                    let c = n.channels;
                    let states = std::iter::once((String::new(), &n.affine, &n.running))
                        .chain(n.variants.iter().map(|((a, b), st)| (format!("tbn{a}_{b}."), &st.affine, &st.running)));
                    for (tag, affine, running) in states {
                        out.push((format!("layers.{i}.{tag}weight"), vec![c], affine, 0));
                        out.push((format!("layers.{i}.{tag}bias"), vec![c], affine, c));
                        out.push((format!("layers.{i}.{tag}running_mean"), vec![c], running, 0));
                        out.push((format!("layers.{i}.{tag}running_var"), vec![c], running, c));
                    }
                }
                Layer::Pool { .. } | Layer::AvgPool { .. } => {}
            }
        }
        out
    }

    /// Parameters as `(name, shape, values)`: `layers.{i}.weight` `[out, in]` (for convolutions
    /// `[out, kh·kw·in_c]`, kernel-row-major and channels last) and `layers.{i}.bias` `[out]`,
    /// with `i` the layer's position in the model; a batch norm has `weight` (γ), `bias` (β),
    /// `running_mean` and `running_var`, each `[channels]`, as in PyTorch.
    pub fn parameters(&self) -> Result<Vec<Parameter>> {
        let mut out = Vec::new();
        let mut cache: Vec<(&GpuBuffer<f32>, Vec<f32>)> = Vec::new();
        for (name, shape, buf, off) in self.slots() {
            let len: usize = shape.iter().product();
            let pos = match cache.iter().position(|(b, _)| std::ptr::eq(*b, buf)) {
                Some(p) => p,
                None => {
                    cache.push((buf, buf.read(self.gpu)?));
                    cache.len() - 1
                }
            };
            out.push((name, shape, cache[pos].1[off..off + len].to_vec()));
        }
        Ok(out)
    }

    /// Overwrites one parameter (named as in [`Trainer::parameters`]) with `values`.
    pub fn set_parameter(&mut self, name: &str, values: &[f32]) -> Result<()> {
        let slot = self.slots().into_iter().find(|s| s.0 == name);
        let Some((_, shape, buf, off)) = slot else {
            return Err(Error::InvalidArgument(format!("no parameter named {name}")));
        };
        let len: usize = shape.iter().product();
        if values.len() != len {
            return Err(Error::Shape {
                op: "Trainer::set_parameter",
                detail: format!("{name} has {len} values ({shape:?}), got {}", values.len()),
            });
        }
        buf.write_at(self.gpu, off, values)
    }

    /// The activation level tables of the TinyScript-forward layers as `(checkpoint name
    /// `layers.{i}.activation_levels`, layer position i, table)` (u32 fixed point, [`LevelTable`]).
    fn level_slots(&self) -> Vec<(String, usize, &LevelTable)> {
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match l {
                Layer::Gemm(g) => g.act_levels.as_ref().map(|t| (format!("layers.{i}.activation_levels"), i, t)),
                _ => None,
            })
            .collect()
    }

    /// Writes the parameters to a safetensors file (readable by PyTorch's `safetensors.torch`
    /// and numpy's `safetensors.numpy`), with the model, scheme and step in its metadata. A
    /// TinyScript forward's activation levels go with them (u32 tensors
    /// `layers.{i}.activation_levels`), so that a loaded model evaluates the same.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let params = self.parameters()?;
        let mut bytes: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = params
            .into_iter()
            .map(|(n, s, v)| (n, s, bytemuck::cast_slice::<f32, u8>(&v).to_vec(), safetensors::Dtype::F32))
            .collect();
        for (name, _, t) in self.level_slots() {
            let b = bytemuck::cast_slice::<u32, u8>(&t.levels).to_vec();
            bytes.push((name, vec![t.levels.len()], b, safetensors::Dtype::U32));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
            .iter()
            .map(|(n, s, b, d)| safetensors::tensor::TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::InvalidArgument(format!("safetensors: {e}")))?;
        let meta: HashMap<String, String> = [
            ("model".to_string(), format!("{:?}", self.spec)),
            ("scheme".to_string(), self.scheme.name.clone()),
            ("step".to_string(), self.step.to_string()),
        ]
        .into();
        let path = path.as_ref();
        safetensors::serialize_to_file(views, &Some(meta), path).map_err(|e| Error::Data {
            path: path.display().to_string(),
            detail: format!("could not write checkpoint: {e}"),
        })
    }

    /// Loads parameters saved by [`Trainer::save`] for the same model. Velocities are reset.
    /// Nothing is changed unless every tensor is present with the right shape.
    pub fn load(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let err = |d: String| Error::Data { path: path.display().to_string(), detail: d };
        let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| err(format!("not a safetensors file: {e}")))?;
        let mut staged = Vec::new();
        for (name, shape, buf, off) in self.slots() {
            let t = st.tensor(&name).map_err(|_| err(format!("missing tensor {name}")))?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(err(format!("{name}: expected f32 {shape:?}, found {:?} {:?}", t.dtype(), t.shape())));
            }
            staged.push((buf, off, bytemuck::pod_collect_to_vec::<u8, f32>(t.data())));
        }
        let mut tables = Vec::new();
        for (name, i, have) in self.level_slots() {
            let t = st.tensor(&name).map_err(|_| err(format!("missing tensor {name}")))?;
            let want = [have.levels.len()];
            if t.dtype() != safetensors::Dtype::U32 || t.shape() != want {
                return Err(err(format!("{name}: expected u32 {want:?}, found {:?} {:?}", t.dtype(), t.shape())));
            }
            let table =
                LevelTable::with_sign(have.bits, have.signed, bytemuck::pod_collect_to_vec::<u8, u32>(t.data()))
                    .map_err(|e| err(format!("{name}: {e}")))?;
            tables.push((i, table));
        }
        for (buf, off, data) in staged {
            buf.write_at(self.gpu, off, &data)?;
        }
        for (i, table) in tables {
            if let Layer::Gemm(g) = &mut self.layers[i] {
                g.act_levels = Some(table);
            }
        }
        for l in &self.layers {
            match l {
                Layer::Gemm(g) => {
                    g.vw.write(self.gpu, &vec![0.0; g.vw.len()])?;
                    g.vb.write(self.gpu, &vec![0.0; g.vb.len()])?;
                }
                Layer::Norm(n) => {
                    n.v_affine.write(self.gpu, &vec![0.0; n.v_affine.len()])?;
                    for (_, st) in &n.variants {
                        st.v_affine.write(self.gpu, &vec![0.0; st.v_affine.len()])?;
                    }
                }
                Layer::Pool { .. } | Layer::AvgPool { .. } => {}
            }
        }
        Ok(())
    }

    /// Trains one epoch over `data` in the seeded order of `epoch` (incomplete last batch
    /// dropped), with the cosine schedule over `total_steps`; `on_step(step_in_epoch, stats)`
    /// is called after every step. Returns `(mean loss, train accuracy)`.
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        epoch: u32,
        total_steps: usize,
        mut on_step: impl FnMut(usize, StepStats),
    ) -> Result<(f64, f64)> {
        let order = data.order(self.seed, epoch);
        let b = self.opt.batch;
        if data.len() < b {
            return Err(Error::InvalidArgument(format!("{} samples is less than one batch of {b}", data.len())));
        }
        let (mut loss, mut right, mut seen) = (0f64, 0u64, 0usize);
        for (i, idx) in order.chunks_exact(b).enumerate() {
            let (x, labels) = data.gather(idx);
            let lr = cosine_lr(self.opt.lr, self.step as usize, total_steps);
            let s = self.step(&x, &labels, lr)?;
            loss += s.loss as f64;
            right += s.correct as u64;
            seen += b;
            on_step(i, s);
        }
        let steps = (data.len() / b).max(1);
        Ok((loss / steps as f64, right as f64 / seen.max(1) as f64))
    }
}
