//! The op interface: what one node of a [`Graph`](super::graph::Graph) is.
//!
//! An op says what shape it produces, which parameters it owns, and how it records its forward
//! pass into a step plan; its forward returns the op's [`Backward`], a value that holds what the
//! backward pass needs and records it later. Forward and backward of an op live in one file
//! under `src/nn/ops/`, and the trainer walks the graph without knowing any op by name: adding
//! an op (yours too — implement [`Op`]) touches nothing else.
//!
//! Ops record into a [`Tape`] once per step plan, never per step; buffers an op needs within the
//! step come from [`Cx::scratch`] (storage the plan shares between values whose lifetimes do not
//! overlap), and its parameters are the buffers in [`NodeCx::params`].

use super::kernels::Kernels;
use super::scheme::LayerScheme;
use super::trainer::ActivationBytes;
use crate::plan::Tape;
use crate::tensor::GpuBuffer;
use crate::tinyscript::LevelTable;
use crate::{Gpu, Record, Result};

/// A value's shape per sample: `(height, width, channels)`, channels last (a feature vector is
/// `(1, 1, n)`). The batch is not part of it.
pub type Shape = (usize, usize, usize);

/// Elements of a shape.
pub fn numel(s: Shape) -> usize {
    s.0 * s.1 * s.2
}

/// How a parameter starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Uniform in `[-bound, bound]` from the trainer's seed (each parameter its own stream).
    Uniform {
        /// The bound.
        bound: f32,
    },
    /// These values.
    Values(Vec<f32>),
}

/// What a parameter buffer is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Updated by the optimizer (with an optimizer state and a gradient buffer).
    Trainable {
        /// L2 weight decay applies (weights, not biases or normalization parameters).
        weight_decay: bool,
    },
    /// State the op updates itself (batch norm's running statistics); saved in checkpoints.
    State,
}

/// One parameter buffer of an op, and the named tensors it holds in checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Elements.
    pub len: usize,
    /// Starting values.
    pub init: Init,
    /// Trainable or state.
    pub kind: ParamKind,
    /// The named tensors inside it: `(name after the node's, shape, offset in elements)`, e.g.
    /// `("weight", [n, k], 0)`; a checkpoint holds `<node>.<name>`.
    pub exports: Vec<(String, Vec<usize>, usize)>,
}

/// A parameter's buffers.
#[derive(Clone)]
pub struct ParamBuf {
    /// The values (fp32 master copy).
    pub value: GpuBuffer<f32>,
    /// The optimizer's state (trainable parameters): SGD's velocity, or AdamW's two moments
    /// (`[m, v]`, twice the parameter's length).
    pub velocity: Option<GpuBuffer<f32>>,
    /// Where the backward pass writes the gradient (trainable parameters).
    pub grad: Option<GpuBuffer<f32>>,
}

impl ParamBuf {
    /// The gradient buffer (an error naming the op if the parameter is not trainable).
    pub fn grad(&self, op: &'static str) -> Result<&GpuBuffer<f32>> {
        self.grad
            .as_ref()
            .ok_or_else(|| crate::Error::InvalidArgument(format!("{op}: this parameter has no gradient buffer")))
    }
}

/// Whether a forward pass trains or evaluates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A training step: batch statistics, stochastic activation rounding, saves for backward.
    Train,
    /// Evaluation; with `batch_stats`, batch norm still normalizes with the batch's statistics
    /// (and updates its running ones), as gradient checks need.
    Eval {
        /// Batch norm uses batch statistics.
        batch_stats: bool,
    },
}

/// TinyScript level tables of one layer, on the host and on the GPU (rewritten in place by
/// refits).
pub struct SiteLevels {
    /// For dYᵀ (one scale per output feature), the weight gradient's A.
    pub grad_cols: Option<(LevelTable, GpuBuffer<u32>)>,
    /// For dY (one scale per sample), the input gradient's A.
    pub grad_rows: Option<(LevelTable, GpuBuffer<u32>)>,
    /// For X (one scale per sample), a TinyScript forward's A.
    pub activation: Option<(LevelTable, GpuBuffer<u32>)>,
    /// `grad_cols` then `activation` in one buffer (the weight gradient of a TinyScript
    /// forward multiplies two coded operands).
    pub both: Option<GpuBuffer<u32>>,
}

/// What a layer whose products are quantized gets from the trainer.
pub struct GemmSite<'a> {
    /// Its index among the model's GEMM layers (what schemes and `set_bits` count).
    pub index: usize,
    /// Its precisions.
    pub scheme: LayerScheme,
    /// The first random stream of each product's stochastic operand (`[Forward, InputGrad,
    /// WeightGrad]`), each followed by its SMP samples; streams are numbered within a step (the
    /// plan adds the step's base, see [`crate::rng`]).
    pub streams: [u32; 3],
    /// TinyScript tables, if the scheme uses them.
    pub levels: Option<&'a SiteLevels>,
    /// In a step that refits TinyScript tables: where to copy what the fit needs (the neural
    /// gradient dY after the ReLU mask, `[rows, n]`, and the input X, `[rows, k]`).
    pub refit: (Option<&'a GpuBuffer<f32>>, Option<&'a GpuBuffer<f32>>),
    /// Whether the backward will ask for the layer's input gradient (its input is not the
    /// model's): the forward quantizes Wᵀ with W only then.
    pub input_grad: bool,
}

/// One node as its op sees it while a plan is built.
pub struct NodeCx<'a> {
    /// Position in the graph.
    pub index: usize,
    /// Its name (parameter names start with it).
    pub name: &'a str,
    /// Its parameter buffers, in the order of [`Op::params`].
    pub params: &'a [ParamBuf],
    /// Input shapes.
    pub inputs: &'a [Shape],
    /// Whether each input is nonnegative whatever the model's input (it follows a ReLU).
    pub nonnegative: &'a [bool],
    /// The output shape.
    pub output: Shape,
    /// For a GEMM layer, its precisions and tables.
    pub gemm: Option<GemmSite<'a>>,
    /// For an attention op under a scheme that quantizes its products (`+attn`), how.
    pub attention: Option<AttentionSite>,
}

/// How an attention op's batched products run ([`crate::nn::TrainScheme::attention`]).
#[derive(Copy, Clone, Debug)]
pub struct AttentionSite {
    /// The operands' precisions.
    pub policy: super::policy::AttentionPolicy,
    /// The first of its [`AttentionSite::STREAMS`] random streams (numbered within a step, as
    /// [`GemmSite::streams`] are): dO for dV, dO for dP, dS for dQ, dS for dK.
    pub stream: u32,
}

impl AttentionSite {
    /// Random streams an attention op's gradient operands draw from per step.
    pub const STREAMS: u32 = 4;
}

/// Where ops record while a plan is built (`R` is the plan's [`Tape`]; the public layers of
/// [`super::layer`] record into any [`Record`]).
pub struct Cx<'a, R: Record = Tape> {
    /// The device.
    pub gpu: &'a Gpu,
    /// Where the work goes.
    pub rec: &'a mut R,
    /// lowbit's launchers, built once per trainer.
    pub kernels: &'a Kernels,
    /// Samples per step.
    pub batch: usize,
    /// Training or evaluation.
    pub mode: Mode,
    /// The trainer's seed (stochastic rounding draws from it).
    pub seed: u32,
    /// Memory held between forward and backward (ops add what they save).
    pub saved: ActivationBytes,
    /// State updates to record after the step's gradients are checked ([`Cx::defer`]).
    pub(crate) deferred: Vec<Deferred<'a, R>>,
    /// Batch-norm layers whose running statistics the step updates after its check, many a
    /// launch ([`Cx::defer_norm_commit`]): (batch statistics, running statistics, channels).
    pub(crate) norm_commits: Vec<(GpuBuffer<f32>, GpuBuffer<f32>, usize)>,
    /// Record unfused kernel chains ([`crate::plan::PlanOptions::unfused`]).
    pub(crate) unfused: bool,
    /// [`Cx::take_maxima_ask`]'s ask.
    pub(crate) maxima_ask: Option<crate::scheme::Granularity>,
    /// The maxima of [`Cx::give_grad_maxima`] and [`Cx::take_grad_maxima`].
    pub(crate) grad_maxima: Option<GpuBuffer<u32>>,
}

/// A state update an op records once the step's gradients are known to be finite.
pub type Deferred<'a, R> = Box<dyn for<'c> FnOnce(&mut Cx<'c, R>) -> Result<()> + 'a>;

impl<'a, R: Record> Cx<'a, R> {
    /// A training step's forward (saves for backward, batch statistics).
    pub fn training(&self) -> bool {
        self.mode == Mode::Train
    }

    /// Batch norm normalizes with the batch's statistics.
    pub fn batch_stats(&self) -> bool {
        matches!(self.mode, Mode::Train | Mode::Eval { batch_stats: true })
    }

    /// The step's ask of the backward being recorded (once; `None` after): also write the maxima
    /// of its first input's gradient's transpose, group by group, under this granularity (the
    /// groups of that transpose's quantizer: per row, one per column of the gradient; per tensor,
    /// one; per block of b, one per b rows of a column), as `absmax` writes them, and leave them
    /// with [`Cx::give_grad_maxima`] for the node that quantizes it ([`Op::writes_grad_maxima`],
    /// [`Op::grad_maxima_wanted`]).
    pub fn take_maxima_ask(&mut self) -> Option<crate::scheme::Granularity> {
        self.maxima_ask.take()
    }

    /// Leaves the maxima [`Cx::take_maxima_ask`] asked for; the step hands them on with the
    /// gradient.
    pub fn give_grad_maxima(&mut self, maxima: GpuBuffer<u32>) {
        self.grad_maxima = Some(maxima);
    }

    /// The maxima of the output gradient's transpose that its producer wrote, where
    /// [`Op::grad_maxima_wanted`] wanted them (once; `None` after, and where none were written).
    pub fn take_grad_maxima(&mut self) -> Option<GpuBuffer<u32>> {
        self.grad_maxima.take()
    }

    /// Scratch storage for `len` values within the step (see [`crate::plan`]).
    pub fn scratch<T: bytemuck::Pod>(&mut self, label: &str, len: usize) -> Result<GpuBuffer<T>> {
        self.rec.scratch(self.gpu, label, len)
    }

    /// Counts `stored` bytes held for the backward pass (`fp32`: what they would take in f32).
    pub fn save(&mut self, stored: u64, fp32: u64) {
        self.saved.stored += stored;
        self.saved.fp32 += fp32;
    }

    /// Records `f` after the step's backward pass and its finiteness check, with the other
    /// state updates (a training step records batch norm's running statistics this way, so a
    /// step that went non-finite leaves them as they were: the kernels read the recorder's
    /// status). Outside a training step's plan, `f` runs when the caller drains the list.
    pub fn defer(&mut self, f: Deferred<'a, R>) {
        self.deferred.push(f);
    }

    /// Records a batch-norm layer's running-statistics update (`stats` as its training forward
    /// left them, `running` its running statistics, `channels` C) with the step's other state
    /// updates, every layer's in as few launches as the adapter allows
    /// ([`crate::kernels::batchnorm::BatchNorm::encode_commit_many`]).
    pub fn defer_norm_commit(&mut self, stats: GpuBuffer<f32>, running: GpuBuffer<f32>, channels: usize) {
        self.norm_commits.push((stats, running, channels));
    }
}

/// What an op's forward pass produced.
pub struct Forward {
    /// The output, `batch × numel(output shape)` values.
    pub y: GpuBuffer<f32>,
    /// How to record the backward pass (`None` in evaluation, or for ops without one).
    pub backward: Option<Box<dyn Backward>>,
}

/// An op's backward pass, holding what its forward saved.
pub trait Backward {
    /// Records the gradients: writes the gradient of every trainable parameter into its
    /// [`ParamBuf::grad`], and returns the gradient of each input whose entry in `need` is true
    /// (`None` elsewhere). `dy` is the gradient of the output; it must not be written.
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        node: &NodeCx,
        dy: &GpuBuffer<f32>,
        need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>>;

    /// [`Backward::backward`] for an output read by several nodes, whose gradient is `dy + dy_b`
    /// (the contributions summed so far, then the last), not yet added. By default the sum is
    /// recorded (`add`) and `backward` takes it; a backward that can read both where it first
    /// reads its gradient overrides this to save the launch and the pass, with the same bits (a
    /// ReLU's mask: [`crate::kernels::relu_backward::ReluBackward::encode_sum`]; lowbit's own
    /// overrides record the sum apart in an unfused plan, [`crate::plan::PlanOptions::unfused`]).
    fn backward_of_sum(
        self: Box<Self>,
        cx: &mut Cx,
        node: &NodeCx,
        dy: &GpuBuffer<f32>,
        dy_b: &GpuBuffer<f32>,
        need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let sum = summed_gradient(cx, dy, dy_b)?;
        self.backward(cx, node, &sum, need)
    }
}

/// Records `dy + dy_b` (`add`, no ReLU) into a new scratch buffer: the gradient of a value read by
/// several nodes, its contributions added in the order they arrived.
pub fn summed_gradient(cx: &mut Cx, dy: &GpuBuffer<f32>, dy_b: &GpuBuffer<f32>) -> Result<GpuBuffer<f32>> {
    let sum = cx.scratch::<f32>("summed gradient", dy.len())?;
    cx.kernels.add.encode(cx.gpu, cx.rec, dy, Some(dy_b), false, &sum)?;
    Ok(sum)
}

/// One kind of graph node (see the module docs).
pub trait Op: Send + Sync + std::fmt::Debug {
    /// A short name ("linear", "conv", …) for errors and reports.
    fn kind(&self) -> &'static str;

    /// The output shape for these input shapes; an error if they do not fit.
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape>;

    /// The parameter buffers the op owns, for these input shapes.
    fn params(&self, _inputs: &[Shape]) -> Vec<ParamSpec> {
        Vec::new()
    }

    /// Whether the op is a GEMM layer whose products a scheme quantizes (Linear, Conv).
    fn is_gemm(&self) -> bool {
        false
    }

    /// Whether the op is attention, whose batched products a scheme quantizes with `+attn`.
    fn is_attention(&self) -> bool {
        false
    }

    /// Whether the output is nonnegative whatever the model's input, given whether each input is.
    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    /// Whether the backward writes the maxima of its first input's gradient's transpose, group by
    /// group, when [`Cx::take_maxima_ask`] asks (batch norm, in its `dx` launch). An op that says
    /// so and, asked, gives nothing fails the step's build.
    fn writes_grad_maxima(&self) -> bool {
        false
    }

    /// Where the backward would quantize its output gradient's transpose from its groups'
    /// maxima (by the two-pass chain, whose first launch they are, or, on a GPU's layouts, in
    /// the launch that quantizes the gradient for the input gradient too), from the gradient as
    /// it comes: `Some(granularity)` of that quantizer, whose maxima the gradient's producer can
    /// write ([`Op::writes_grad_maxima`]); the backward then takes them with
    /// [`Cx::take_grad_maxima`] (given and not taken, they fail the step's build). `None`
    /// elsewhere.
    fn grad_maxima_wanted(&self, _cx: &Cx, _node: &NodeCx) -> Option<crate::scheme::Granularity> {
        None
    }

    /// Records the forward pass of `x` (one buffer per input).
    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward>;
}

/// `relu`'s standard He-uniform bound for a layer with `fan_in` inputs (LeCun's without ReLU).
pub fn he_bound(fan_in: usize, relu: bool) -> f32 {
    if relu {
        (6.0 / fan_in as f32).sqrt()
    } else {
        (3.0 / fan_in as f32).sqrt()
    }
}
