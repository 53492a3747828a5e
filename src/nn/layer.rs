//! Quantized Linear and Conv2d on your own tensors, without a [`super::Trainer`]: what another
//! framework calls into to run its layers' products in low precision.
//!
//! A layer is built once with a [`LayerScheme`] (the same policy a trainer gives one of its
//! layers: see [`super::policy`]). `forward` records `y = relu?(x·Wᵀ + b)` into any
//! [`Record`] — a command encoder, a [`crate::Recorder`], or a step plan's tape — and, in
//! training, returns what `backward` needs; `backward` records the weight and bias gradients
//! into buffers you give it and returns dX. Weights stay yours, in f32 (a master copy): the layer
//! quantizes them, and the activations and gradients, as its scheme says.
//!
//! Stochastic rounding draws from `(seed, stream)`: a call uses streams `stream ..
//! stream + streams()` (one block per product, each as long as the scheme's SMP count), plus the
//! recorder's step base (0 outside a plan). Give each call its own streams — for instance
//! `step · streams() · layers + layer · streams()` — so no two roundings share their draws.
//!
//! ```no_run
//! use lowbit::nn::layer::QuantLinear;
//! use lowbit::nn::TrainScheme;
//! use lowbit::{Gpu, GpuBuffer, GpuTensor};
//! let gpu = Gpu::new()?;
//! let int8 = TrainScheme::preset("int8")?.default;
//! let fc = QuantLinear::new(&gpu, int8, 42)?;
//! let x = GpuTensor::from_slice(&gpu, &vec![0.5; 32 * 64], &[32, 64])?;
//! let w = GpuTensor::from_slice(&gpu, &vec![0.01; 10 * 64], &[10, 64])?;
//! let b = GpuBuffer::<f32>::zeros(&gpu, "b", 10)?;
//! let mut enc = gpu.device.create_command_encoder(&Default::default());
//! let (y, saved) = fc.forward(&mut enc, &x, &w, &b, false, true, 0)?;
//! let dy = GpuTensor::from_slice(&gpu, &vec![0.1; 32 * 10], &[32, 10])?;
//! let (dw, db) = (GpuBuffer::<f32>::zeros(&gpu, "dw", 640)?, GpuBuffer::<f32>::zeros(&gpu, "db", 10)?);
//! let dx = fc.backward(&mut enc, saved.expect("training"), &dy, &w, &dw, &db, true)?;
//! gpu.submit([enc.finish()]);
//! println!("{:?}", (y.read(&gpu)?.len(), dx.expect("asked for").read(&gpu)?.len(), dw.read(&gpu)?[0]));
//! # Ok::<(), lowbit::Error>(())
//! ```

use super::gemm::{self, GemmSaved};
use super::kernels::Kernels;
use super::op::{Cx, GemmSite, Mode, NodeCx, ParamBuf, Shape, SiteLevels};
use super::ops::conv::{self, ConvSaved};
use super::scheme::{ForwardPrecision, GradPrecision, LayerScheme};
use super::trainer::ActivationBytes;
use crate::kernels::im2col::ConvGeom;
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::tinyscript::LevelTable;
use crate::{Error, Gpu, Record, Result};
use std::sync::Arc;

/// What both layers share: the device, kernels, scheme, seed and TinyScript tables.
struct Core {
    gpu: Gpu,
    k: Arc<Kernels>,
    scheme: LayerScheme,
    seed: u32,
    levels: Option<SiteLevels>,
}

impl Core {
    fn new(gpu: &Gpu, scheme: LayerScheme, seed: u32) -> Result<Self> {
        scheme.check()?;
        let table = |bits| -> Result<(LevelTable, GpuBuffer<u32>)> {
            let t = LevelTable::uniform(bits)?;
            let b = GpuBuffer::from_slice(gpu, "level table", &t.levels)?;
            Ok((t, b))
        };
        let grad = match scheme.gradient {
            GradPrecision::TinyScript { bits, .. } => Some(bits),
            _ => None,
        };
        let act = match scheme.forward {
            ForwardPrecision::TinyScript { bits, .. } => Some(bits),
            _ => None,
        };
        let levels = if grad.is_some() || act.is_some() {
            let grad_cols = grad.map(table).transpose()?;
            let activation = act.map(table).transpose()?;
            let both = match (&grad_cols, &activation) {
                (Some(g), Some(a)) => {
                    let v: Vec<u32> = g.0.levels.iter().chain(&a.0.levels).copied().collect();
                    Some(GpuBuffer::from_slice(gpu, "level tables", &v)?)
                }
                _ => None,
            };
            Some(SiteLevels { grad_cols, grad_rows: grad.map(table).transpose()?, activation, both })
        } else {
            None
        };
        Ok(Core { gpu: gpu.clone(), k: gpu.shared_kernels(Kernels::new)?, scheme, seed, levels })
    }

    fn streams(&self) -> u32 {
        3 * self.scheme.smp
    }

    /// Runs `f` with the context a GEMM layer records in: parameters `w` and `b` (gradients into
    /// `dw`, `db` when given), `rows` samples' rows.
    #[allow(clippy::too_many_arguments)]
    fn with<R: Record, T>(
        &self,
        rec: &mut R,
        rows: usize,
        training: bool,
        stream: u32,
        params: [ParamBuf; 2],
        shapes: (Shape, Shape),
        f: impl FnOnce(&mut Cx<R>, &NodeCx) -> Result<T>,
    ) -> Result<T> {
        let mode = if training { Mode::Train } else { Mode::Eval { batch_stats: false } };
        let mut cx = Cx {
            gpu: &self.gpu,
            rec,
            kernels: &self.k,
            batch: rows,
            mode,
            seed: self.seed,
            saved: ActivationBytes::default(),
            deferred: Vec::new(),
            norm_commits: Vec::new(),
            unfused: false,
            maxima_ask: None,
            grad_maxima: None,
        };
        let smp = self.scheme.smp;
        let node = NodeCx {
            index: 0,
            name: "layer",
            params: &params,
            inputs: std::slice::from_ref(&shapes.0),
            nonnegative: &[false],
            output: shapes.1,
            gemm: Some(GemmSite {
                index: 0,
                scheme: self.scheme,
                streams: [stream, stream + smp, stream + 2 * smp],
                levels: self.levels.as_ref(),
                refit: (None, None),
                // (A layer's backward says whether it wants dX only then.)
                input_grad: true,
            }),
            attention: None,
        };
        f(&mut cx, &node)
    }
}

fn params(w: &GpuTensor, b: &GpuBuffer<f32>, grads: Option<(&GpuBuffer<f32>, &GpuBuffer<f32>)>) -> [ParamBuf; 2] {
    [
        ParamBuf { value: w.buffer().clone(), velocity: None, grad: grads.map(|g| g.0.clone()) },
        ParamBuf { value: b.clone(), velocity: None, grad: grads.map(|g| g.1.clone()) },
    ]
}

/// The dimensions of a matrix.
fn dims(op: &'static str, t: &GpuTensor, what: &str) -> Result<(usize, usize)> {
    match *t.shape() {
        [r, c] => Ok((r, c)),
        ref s => Err(Error::Shape { op, detail: format!("{what} must be 2-D, got {s:?}") }),
    }
}

/// What [`QuantLinear::backward`] needs of a forward pass.
pub struct LinearSaved {
    saved: GemmSaved,
    stream: u32,
    x_shape: (usize, usize),
}

/// A fully connected layer's products under a precision policy (see the module docs).
pub struct QuantLinear {
    core: Core,
}

impl QuantLinear {
    /// The layer under `scheme`, drawing stochastic rounding from `seed`. A TinyScript scheme
    /// starts from evenly spaced level tables.
    pub fn new(gpu: &Gpu, scheme: LayerScheme, seed: u32) -> Result<Self> {
        Ok(QuantLinear { core: Core::new(gpu, scheme, seed)? })
    }

    /// Its scheme.
    pub fn scheme(&self) -> LayerScheme {
        self.core.scheme
    }

    /// Random streams one forward + backward uses (see the module docs).
    pub fn streams(&self) -> u32 {
        self.core.streams()
    }

    /// Records `y = relu?(x·Wᵀ + b)` for `x` `[rows, k]`, `w` `[n, k]`, `b` `[n]`; returns `y`
    /// `[rows, n]` and, when `training`, what [`QuantLinear::backward`] needs (in training a
    /// TinyScript forward rounds `x` stochastically, else to nearest).
    #[allow(clippy::too_many_arguments)]
    pub fn forward<R: Record>(
        &self,
        rec: &mut R,
        x: &GpuTensor,
        w: &GpuTensor,
        b: &GpuBuffer<f32>,
        relu: bool,
        training: bool,
        stream: u32,
    ) -> Result<(GpuTensor, Option<LinearSaved>)> {
        let op = "QuantLinear::forward";
        let (rows, k) = dims(op, x, "x")?;
        let (n, kw) = dims(op, w, "w")?;
        if kw != k {
            return Err(Error::Shape { op, detail: format!("x is [{rows}, {k}] but w is [{n}, {kw}]") });
        }
        crate::kernels::check_len(op, "b", b.len(), n)?;
        let shapes = ((1, 1, k), (1, 1, n));
        let (y, saved) = self.core.with(rec, rows, training, stream, params(w, b, None), shapes, |cx, node| {
            gemm::forward(cx, node, x.buffer(), None, rows, k, n, relu)
        })?;
        let saved = saved.map(|saved| LinearSaved { saved, stream, x_shape: (rows, k) });
        Ok((GpuTensor::from_buffer(y, &[rows, n])?, saved))
    }

    /// Records the backward of a forward pass from `dy` `[rows, n]`: the gradient of `w` into
    /// `dw` (`n·k` values) and of `b` into `db` (`n`), and returns dX `[rows, k]` when `need_dx`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<R: Record>(
        &self,
        rec: &mut R,
        saved: LinearSaved,
        dy: &GpuTensor,
        w: &GpuTensor,
        dw: &GpuBuffer<f32>,
        db: &GpuBuffer<f32>,
        need_dx: bool,
    ) -> Result<Option<GpuTensor>> {
        let op = "QuantLinear::backward";
        let (rows, k) = saved.x_shape;
        let (n, _) = dims(op, w, "w")?;
        crate::kernels::check_len(op, "dy", dy.len(), rows * n)?;
        crate::kernels::check_len(op, "dw", dw.len(), n * k)?;
        crate::kernels::check_len(op, "db", db.len(), n)?;
        let b = db.clone(); // the bias's values are not read by the backward
        let shapes = ((1, 1, k), (1, 1, n));
        let dx = self.core.with(rec, rows, true, saved.stream, params(w, &b, Some((dw, db))), shapes, |cx, node| {
            gemm::backward(cx, node, saved.saved, dy.buffer(), need_dx, None)
        })?;
        dx.map(|d| GpuTensor::from_buffer(d, &[rows, k])).transpose()
    }
}

/// What [`QuantConv2d::backward`] needs of a forward pass.
pub struct ConvLayerSaved {
    saved: ConvSaved,
    stream: u32,
    x_shape: [usize; 4],
}

/// A square-kernel 2-D convolution on NHWC tensors (im2col + the GEMM products) under a
/// precision policy (see the module docs).
pub struct QuantConv2d {
    core: Core,
    kernel: usize,
    stride: usize,
    pad: usize,
}

impl QuantConv2d {
    /// A `kernel`×`kernel` convolution with `stride` and zero `pad`ding under `scheme`.
    pub fn new(gpu: &Gpu, scheme: LayerScheme, seed: u32, kernel: usize, stride: usize, pad: usize) -> Result<Self> {
        if kernel == 0 || stride == 0 {
            return Err(Error::InvalidArgument(format!(
                "QuantConv2d: kernel {kernel} and stride {stride} must be at least 1"
            )));
        }
        Ok(QuantConv2d { core: Core::new(gpu, scheme, seed)?, kernel, stride, pad })
    }

    /// Random streams one forward + backward uses.
    pub fn streams(&self) -> u32 {
        self.core.streams()
    }

    fn geom(&self, x: &GpuTensor) -> Result<ConvGeom> {
        match *x.shape() {
            [batch, h, w, c] => {
                let g =
                    ConvGeom { batch, h, w, c, kh: self.kernel, kw: self.kernel, stride: self.stride, pad: self.pad };
                g.check()?;
                Ok(g)
            }
            ref s => Err(Error::Shape { op: "QuantConv2d", detail: format!("x must be [batch, h, w, c], got {s:?}") }),
        }
    }

    /// Records the convolution of `x` `[batch, h, w, c]` with `w` `[channels, kernel·kernel·c]`
    /// (kernel-row-major, channels last) plus `b` `[channels]`, ReLU after it if `relu`;
    /// returns `y` `[batch, oh, ow, channels]` and, when `training`, what the backward needs.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<R: Record>(
        &self,
        rec: &mut R,
        x: &GpuTensor,
        w: &GpuTensor,
        b: &GpuBuffer<f32>,
        relu: bool,
        training: bool,
        stream: u32,
    ) -> Result<(GpuTensor, Option<ConvLayerSaved>)> {
        let op = "QuantConv2d::forward";
        let g = self.geom(x)?;
        let (n, kw) = dims(op, w, "w")?;
        if kw != g.kdim() {
            return Err(Error::Shape { op, detail: format!("w is [{n}, {kw}], the kernel needs [{n}, {}]", g.kdim()) });
        }
        crate::kernels::check_len(op, "b", b.len(), n)?;
        let shapes = ((g.h, g.w, g.c), (g.oh(), g.ow(), n));
        let (y, saved) = self.core.with(rec, g.batch, training, stream, params(w, b, None), shapes, |cx, node| {
            conv::forward(cx, node, g, x.buffer(), n, relu)
        })?;
        let saved = saved.map(|saved| ConvLayerSaved { saved, stream, x_shape: [g.batch, g.h, g.w, g.c] });
        Ok((GpuTensor::from_buffer(y, &[g.batch, g.oh(), g.ow(), n])?, saved))
    }

    /// Records the backward from `dy` `[batch, oh, ow, channels]`: the gradients of `w` and `b`
    /// into `dw` and `db`, and dX `[batch, h, w, c]` when `need_dx`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<R: Record>(
        &self,
        rec: &mut R,
        saved: ConvLayerSaved,
        dy: &GpuTensor,
        w: &GpuTensor,
        dw: &GpuBuffer<f32>,
        db: &GpuBuffer<f32>,
        need_dx: bool,
    ) -> Result<Option<GpuTensor>> {
        let op = "QuantConv2d::backward";
        let [batch, h, wd, c] = saved.x_shape;
        let (n, k) = dims(op, w, "w")?;
        crate::kernels::check_len(op, "dw", dw.len(), n * k)?;
        crate::kernels::check_len(op, "db", db.len(), n)?;
        let g = ConvGeom { batch, h, w: wd, c, kh: self.kernel, kw: self.kernel, stride: self.stride, pad: self.pad };
        crate::kernels::check_len(op, "dy", dy.len(), g.rows() * n)?;
        let b = db.clone();
        let shapes = ((h, wd, c), (1, 1, n));
        let dx =
            self.core.with(rec, batch, true, saved.stream, params(w, &b, Some((dw, db))), shapes, |cx, node| {
                conv::backward(cx, node, saved.saved, dy.buffer(), need_dx)
            })?;
        dx.map(|d| GpuTensor::from_buffer(d, &[batch, h, wd, c])).transpose()
    }
}
