//! The training engine: a model's [`Graph`] with its parameters on one GPU, compiled into step
//! plans.
//!
//! A plan is built once per (kind of step, batch size, precision of every GEMM layer, batch
//! norm states, refit) by walking the graph: each op records its forward into a
//! [`Tape`], the loss follows, then each op's backward in reverse order (the
//! gradients of a value read by several nodes added up), then SGD for every trainable
//! parameter. The plan holds every bind group and uniform; its scratch values share one arena by
//! lifetime. A step then writes the batch and one small [`StepState`] uniform (RNG stream base,
//! learning rate, loss ring slot) and replays the plan: nothing is created. Losses and correct
//! counts land in a ring on the GPU and are read every [`Trainer::set_read_every`] steps (and at
//! the end of an epoch and of an evaluation), so the host can record step N+1 while the GPU runs
//! step N. Inputs are written with `Queue::write_buffer`, which wgpu orders after the work
//! submitted before it, so the next batch never overwrites one the GPU is still reading.
//! Where the `Gpu` tunes ([`Gpu::tunes`], on a GPU by default), a plan that met integer products
//! of shapes whose GEMM path has not been timed yet is built twice: once to meet them, then,
//! after they are timed, with the fastest paths (the same bits).

use super::graph::Graph;
use super::kernels::Kernels;
use super::model::ModelSpec;
use super::op::{
    numel, summed_gradient, AttentionSite, Cx, Forward, GemmSite, Init, Mode, NodeCx, ParamBuf, ParamKind, ParamSpec,
    Shape, SiteLevels,
};
use super::ops::loss::{Loss, LossOut};
use super::scheme::{ForwardPrecision, GradPrecision, LayerScheme, TrainScheme, TINYSCRIPT_REFIT};
use crate::data::Dataset;
use crate::gpu::Creations;
use crate::kernels::adam::{bias_correction, AdamStep};
use crate::kernels::batchnorm_commit::NormCommit;
use crate::kernels::OptimTensor;
use crate::plan::{Arena, Plan, PlanOptions, PlanStats, Tape};
use crate::record::{Recorder, StepState};
use crate::rng::{self, streams};
use crate::tensor::GpuBuffer;
use crate::tinyscript::LevelTable;
use crate::{Error, Gpu, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The update rule.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// SGD with momentum ([`OptimConfig::momentum`]) and L2 weight decay added to the gradient.
    Sgd,
    /// AdamW: Adam with bias correction and weight decay decoupled from the gradient
    /// (`w ← w − lr·(m̂/(√v̂ + ε) + λ·w)`), the usual choice for transformers. Its two moments
    /// double the optimizer state of SGD.
    AdamW {
        /// First-moment decay β₁ (0.9 is usual).
        beta1: f32,
        /// Second-moment decay β₂ (0.95–0.999).
        beta2: f32,
        /// ε added to √v̂ (1e-8 is usual).
        eps: f32,
    },
}

impl Optimizer {
    /// AdamW with β₁ = 0.9, β₂ = 0.99, ε = 1e-8.
    pub const ADAMW: Optimizer = Optimizer::AdamW { beta1: 0.9, beta2: 0.99, eps: 1e-8 };

    /// State values per parameter value (SGD's velocity; AdamW's two moments).
    pub fn state_len(self) -> usize {
        match self {
            Optimizer::Sgd => 1,
            Optimizer::AdamW { .. } => 2,
        }
    }
}

/// Optimizer and schedule.
#[derive(Copy, Clone, Debug)]
pub struct OptimConfig {
    /// Peak learning rate (cosine-annealed to 0 over the run).
    pub lr: f32,
    /// SGD momentum (unused by AdamW).
    pub momentum: f32,
    /// Weight decay on weights (not biases or normalization parameters): L2 added to the
    /// gradient for SGD, decoupled for AdamW.
    pub weight_decay: f32,
    /// Batch size.
    pub batch: usize,
    /// The update rule.
    pub optimizer: Optimizer,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, batch: 128, optimizer: Optimizer::Sgd }
    }
}

/// Cosine learning rate at `step` of `total`.
pub fn cosine_lr(peak: f32, step: usize, total: usize) -> f32 {
    let t = step as f64 / total.max(1) as f64;
    (peak as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
}

/// Where a named tensor sits in a parameter buffer: `(name, shape, offset)`.
pub(crate) type Export = (String, Vec<usize>, usize);

/// A named parameter: `(name, shape, values)`.
pub type Parameter = (String, Vec<usize>, Vec<f32>);

/// What one training step reports.
#[derive(Copy, Clone, Debug, Default)]
pub struct StepStats {
    /// Mean loss over the batch of step [`StepStats::step`] (the last step read back: with
    /// [`Trainer::set_read_every`] above 1, an earlier step than the one just taken).
    pub loss: f32,
    /// Correct predictions in that batch.
    pub correct: u32,
    /// Which step (counting from 0) `loss` and `correct` belong to.
    pub step: u64,
    /// Whether any step has been read back yet: until one has, `loss`, `correct` and `step`
    /// are zeros, not a measurement.
    pub read: bool,
    /// Where this step's wall time went on the host, in seconds.
    pub host: StepHostTime,
    /// What this step recorded and created.
    pub counts: StepCounts,
}

/// A training step's wall time on the host, by phase.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct StepHostTime {
    /// Uploading the batch, building a plan if none fits yet, and recording the step (until the
    /// command buffer is finished).
    pub record: f64,
    /// `Queue::submit`.
    pub submit: f64,
    /// Waiting for results: the loss ring when it is read, TinyScript refits (0 when neither).
    pub wait: f64,
}

/// Counts of one step, independent of the adapter's speed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Dispatches recorded.
    pub dispatches: u64,
    /// Compute passes begun.
    pub passes: u64,
    /// GPU objects created on the step's device while it ran (none by the step once its plan
    /// exists; the device's counters, [`crate::Gpu::creations`], so other threads' work on the same
    /// device counts too).
    pub created: Creations,
    /// Whether the step built its plan.
    pub built_plan: bool,
}

/// Memory held between forward and backward in one step, in bytes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivationBytes {
    /// As the scheme stores it (quantized saved GEMM operands, plus f32 outputs kept for ReLU
    /// masks, batch norm and pooling indices).
    pub stored: u64,
    /// The same with every saved operand in f32.
    pub fp32: u64,
}

/// One step's loss as read back.
#[derive(Copy, Clone, Debug)]
struct StepRecord {
    step: u64,
    loss: f64,
    correct: u32,
}

/// A node's parameters: the base set and, for transitional batch norm, one set per pair of
/// neighbouring bit-widths.
struct NodeState {
    specs: Vec<ParamSpec>,
    params: Vec<ParamBuf>,
    /// Transitional states by key (bits of the GEMM layer before, bits of the one after).
    variants: Vec<((u32, u32), Vec<ParamBuf>)>,
    base_key: (u32, u32),
    key: (u32, u32),
}

impl NodeState {
    fn active(&self) -> &[ParamBuf] {
        match self.variants.iter().find(|v| v.0 == self.key) {
            Some((_, p)) => p,
            None => &self.params,
        }
    }
}

/// What makes two plans different.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PlanKey {
    kind: Kind,
    batch: usize,
    schemes: Vec<LayerScheme>,
    bn: Vec<(u32, u32)>,
    refit: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// A training step; without `update`, gradients only.
    Train { loss: Loss, update: bool },
    /// Evaluation with cross-entropy into the evaluation ring.
    Eval { batch_stats: bool },
    /// The forward pass, its output copied out.
    Logits { batch_stats: bool },
    /// The optimizer alone, on the gradients as they are ([`Trainer::apply_gradients`]).
    Update,
}

/// A GEMM layer's refit copies: `(layer, (dY, rows, n), (X, rows, k))`.
type Refitted = (usize, Option<(GpuBuffer<f32>, usize, usize)>, Option<(GpuBuffer<f32>, usize, usize)>);

/// Where a refit step copies what the TinyScript fits need.
struct Refit {
    site: usize,
    grad: Option<(GpuBuffer<f32>, usize, usize)>,
    act: Option<(GpuBuffer<f32>, usize, usize)>,
}

struct StepPlan {
    plan: Plan,
    saved: ActivationBytes,
    out: Option<GpuBuffer<f32>>,
    refits: Vec<Refit>,
    used: u64,
}

/// The batch buffers of one batch size.
struct Inputs {
    x: GpuBuffer<f32>,
    labels: GpuBuffer<u32>,
    targets: GpuBuffer<f32>,
}

/// Per-step losses and correct counts on the GPU, `[SLOTS, rows]` each, read back together.
struct Ring {
    rows: usize,
    loss: GpuBuffer<f32>,
    correct: GpuBuffer<u32>,
    staging: wgpu::Buffer,
    /// Steps written since the last read: (slot, step, divisor).
    pending: Vec<(usize, u64, usize)>,
    next: usize,
}

/// Ring slots: at most this many steps between two reads.
const SLOTS: usize = 64;

impl Ring {
    fn new(gpu: &Gpu, rows: usize) -> Result<Self> {
        let loss = GpuBuffer::<f32>::zeros(gpu, "loss ring", SLOTS * rows)?;
        let correct = GpuBuffer::<u32>::zeros(gpu, "correct ring", SLOTS * rows)?;
        let staging = crate::tensor::staging(gpu, loss.bytes() + correct.bytes() + 8);
        Ok(Ring { rows, loss, correct, staging, pending: Vec::new(), next: 0 })
    }

    /// The slot for the next step.
    fn take_slot(&mut self, step: u64, divisor: usize) -> u32 {
        let slot = self.next;
        self.next = (self.next + 1) % SLOTS;
        self.pending.push((slot, step, divisor));
        slot as u32
    }

    fn full(&self) -> bool {
        self.pending.len() >= SLOTS
    }

    /// Records the copy of the ring and the step status into the staging buffer.
    fn copy_out(&self, rec: &mut Recorder, status: &GpuBuffer<u32>) {
        use crate::Record;
        rec.copy(self.loss.buffer(), 0, &self.staging, 0, self.loss.bytes());
        rec.copy(self.correct.buffer(), 0, &self.staging, self.loss.bytes(), self.correct.bytes());
        rec.copy(status.buffer(), 0, &self.staging, self.loss.bytes() + self.correct.bytes(), 8);
    }

    /// Waits for the copy recorded by `copy_out` and returns the pending steps' results and the
    /// status.
    fn read(&mut self, gpu: &Gpu) -> Result<(Vec<StepRecord>, [u32; 2])> {
        let raw = crate::tensor::map_read(gpu, &self.staging)?;
        let lb = self.loss.bytes() as usize;
        let cb = lb + self.correct.bytes() as usize;
        let losses: Vec<f32> = bytemuck::pod_collect_to_vec(&raw[..lb]);
        let rights: Vec<u32> = bytemuck::pod_collect_to_vec(&raw[lb..cb]);
        let status: Vec<u32> = bytemuck::pod_collect_to_vec(&raw[cb..cb + 8]);
        let rows = self.rows;
        let records = self
            .pending
            .drain(..)
            .map(|(slot, step, divisor)| {
                let r = slot * rows..(slot + 1) * rows;
                let sum: f64 = losses[r.clone()].iter().map(|&l| l as f64).sum();
                StepRecord { step, loss: sum / divisor as f64, correct: rights[r].iter().sum() }
            })
            .collect();
        Ok((records, [status[0], status[1]]))
    }
}

/// Plans and the buffers they bind, built on demand.
#[derive(Default)]
struct Caches {
    arena: Arena,
    plans: HashMap<PlanKey, StepPlan>,
    inputs: HashMap<usize, Inputs>,
    /// By (rows, evaluation).
    rings: HashMap<(usize, bool), Ring>,
    tick: u64,
    /// Integer GEMM shape classes this trainer's plan builds tuned ([`Trainer::tuned_classes`]).
    tuned: usize,
}

/// Plans kept at most (Bit-Mixer's configurations each have one; the arena is shared).
const MAX_PLANS: usize = 256;

/// What a step fits: class labels (softmax cross-entropy) or values (squared error).
#[derive(Copy, Clone)]
enum Target<'a> {
    Labels(&'a [u32]),
    Values { t: &'a [f32], per_sample: bool },
}

/// A model being trained on one GPU (see the module docs).
pub struct Trainer {
    gpu: Gpu,
    k: std::sync::Arc<Kernels>,
    graph: Graph,
    spec: Option<ModelSpec>,
    scheme: TrainScheme,
    opt: OptimConfig,
    seed: u32,
    step: u64,
    /// `(rank, ranks)` of a data-parallel replica ([`Trainer::set_replica`]); `(0, 1)` alone.
    replica: (u32, u32),
    nodes: Vec<NodeState>,
    /// Node of each GEMM layer, in order.
    site_nodes: Vec<usize>,
    /// GEMM layer of each node.
    site_of: Vec<Option<usize>>,
    /// Per node: how an attention op's products run under `+attn` (`None`: f32, or not attention).
    attention: Vec<Option<AttentionSite>>,
    /// Each GEMM layer's precisions now.
    schemes: Vec<LayerScheme>,
    levels: Vec<Option<SiteLevels>>,
    /// Streams per product block (the scheme's largest SMP count).
    samples: u32,
    /// Random uses per step.
    uses: u32,
    caches: Mutex<Caches>,
    /// `[flag, first step]`: set by a step whose gradients went non-finite (see
    /// [`crate::kernels::finite`]); while set, the plans' state updates write nothing.
    status: GpuBuffer<u32>,
    plan_options: PlanOptions,
    read_every: usize,
    last: StepStats,
    last_activation: ActivationBytes,
    batch_stats_in_eval: bool,
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

fn new_params(gpu: &Gpu, specs: &[ParamSpec], seed: u32, node: usize, state: usize) -> Result<Vec<ParamBuf>> {
    specs
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let init = match &s.init {
                Init::Uniform { bound } => uniform_init(s.len, *bound, rng::key(seed, streams::init(node, j))),
                Init::Values(v) => v.clone(),
            };
            if init.len() != s.len {
                return Err(Error::InvalidArgument(format!(
                    "parameter {j} of node {node}: {} initial values for {}",
                    init.len(),
                    s.len
                )));
            }
            let trainable = matches!(s.kind, ParamKind::Trainable { .. });
            Ok(ParamBuf {
                value: GpuBuffer::from_slice(gpu, "parameter", &init)?,
                velocity: trainable.then(|| GpuBuffer::zeros(gpu, "optimizer state", state * s.len)).transpose()?,
                grad: trainable.then(|| GpuBuffer::zeros(gpu, "gradient", s.len)).transpose()?,
            })
        })
        .collect()
}

fn table_buf(gpu: &Gpu, t: LevelTable) -> Result<(LevelTable, GpuBuffer<u32>)> {
    let b = GpuBuffer::from_slice(gpu, "level table", &t.levels)?;
    Ok((t, b))
}

impl Trainer {
    /// Builds the model of `spec` on `gpu` with weights drawn from `seed` (He-uniform, zero
    /// biases). The trainer keeps a clone of `gpu` (cheap: it is shared inside).
    pub fn new(gpu: &Gpu, spec: ModelSpec, scheme: TrainScheme, opt: OptimConfig, seed: u32) -> Result<Self> {
        let graph = spec.to_graph()?;
        let mut t = Self::from_graph(gpu, graph, scheme, opt, seed)?;
        t.spec = Some(spec);
        Ok(t)
    }

    /// Builds the model of any `graph` (see [`super::graph::GraphBuilder`]).
    pub fn from_graph(gpu: &Gpu, graph: Graph, scheme: TrainScheme, opt: OptimConfig, seed: u32) -> Result<Self> {
        if opt.batch == 0 {
            return Err(Error::InvalidArgument("batch size must be at least 1".into()));
        }
        for (what, v) in [("learning rate", opt.lr), ("momentum", opt.momentum), ("weight decay", opt.weight_decay)] {
            if !v.is_finite() {
                return Err(Error::InvalidArgument(format!("the {what} must be finite, not {v}")));
            }
        }
        let site_nodes = graph.gemm_nodes();
        let n_sites = site_nodes.len();
        let mut site_of = vec![None; graph.nodes().len()];
        let mut schemes = Vec::new();
        let mut levels = Vec::new();
        let sensitive = graph.sensitive_gemms();
        for (i, &node) in site_nodes.iter().enumerate() {
            site_of[node] = Some(i);
            let ls = scheme.layer_with(i, sensitive[i]);
            ls.check()?;
            if let Some(b) = ls.rotate {
                if !(2..=256).contains(&b) || !b.is_power_of_two() {
                    return Err(Error::InvalidArgument(format!(
                        "rotation block {b} must be a power of two in 2..=256"
                    )));
                }
            }
            let n = &graph.nodes()[node];
            let nonneg = graph.value(n.inputs[0]).nonnegative;
            let grad = match ls.gradient {
                GradPrecision::TinyScript { bits, .. } => Some(bits),
                _ => None,
            };
            let act = match ls.forward {
                // After a ReLU the input is nonnegative: an unsigned table, twice the levels.
                ForwardPrecision::TinyScript { bits, .. } => Some(LevelTable::uniform_as(bits, !nonneg)?),
                _ => None,
            };
            levels.push(if grad.is_some() || act.is_some() {
                let grad_cols = grad.map(|b| LevelTable::uniform(b).and_then(|t| table_buf(gpu, t))).transpose()?;
                let grad_rows = grad.map(|b| LevelTable::uniform(b).and_then(|t| table_buf(gpu, t))).transpose()?;
                let activation = act.map(|t| table_buf(gpu, t)).transpose()?;
                let both = match (&grad_cols, &activation) {
                    (Some(g), Some(a)) => {
                        let v: Vec<u32> = g.0.levels.iter().chain(&a.0.levels).copied().collect();
                        Some(GpuBuffer::from_slice(gpu, "level tables", &v)?)
                    }
                    _ => None,
                };
                Some(SiteLevels { grad_cols, grad_rows, activation, both })
            } else {
                None
            });
            schemes.push(ls);
        }
        // The training batch is known now: refuse a rotation it cannot hold before anything
        // is built (a step of another batch size is checked when it comes).
        check_rotations(&graph, &site_nodes, &schemes, opt.batch)?;
        let mut nodes = Vec::new();
        for (i, n) in graph.nodes().iter().enumerate() {
            let shapes: Vec<Shape> = n.inputs.iter().map(|v| graph.value(*v).shape).collect();
            let specs = n.op.params(&shapes);
            let params = new_params(gpu, &specs, seed, i, opt.optimizer.state_len())?;
            nodes.push(NodeState { specs, params, variants: Vec::new(), base_key: (0, 0), key: (0, 0) });
        }
        let samples = schemes.iter().map(|s| s.smp).max().unwrap_or(1).max(1);
        let gemm_uses = (n_sites as u32).checked_mul(3 * samples);
        // Attention ops under `+attn` draw their streams after the GEMM layers'.
        let mut attention = vec![None; graph.nodes().len()];
        if scheme.attention {
            let mut next = gemm_uses;
            for (i, _) in graph.nodes().iter().enumerate().filter(|(_, n)| n.op.is_attention()) {
                let policy = scheme.attention_scheme(graph.is_marked_sensitive(i)).attention()?;
                attention[i] = next.map(|stream| AttentionSite { policy, stream });
                next = next.and_then(|s| s.checked_add(AttentionSite::STREAMS));
            }
            if attention.iter().all(Option::is_none) {
                return Err(Error::InvalidArgument(format!(
                    "scheme '{}': '+attn' quantizes attention's products, and {} has no attention",
                    scheme.name,
                    graph.name()
                )));
            }
        }
        let n_attention = attention.iter().flatten().count() as u32;
        let uses = gemm_uses
            .and_then(|u| u.checked_add(n_attention * AttentionSite::STREAMS))
            .filter(|&u| u < streams::TRAINING_END)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{n_sites} GEMM layers × {samples} SMP samples: too many random streams per step"
                ))
            })?;
        Ok(Trainer {
            gpu: gpu.clone(),
            k: gpu.shared_kernels(Kernels::new)?,
            graph,
            spec: None,
            scheme,
            opt,
            seed,
            step: 0,
            replica: (0, 1),
            nodes,
            site_nodes,
            site_of,
            attention,
            schemes,
            levels,
            samples,
            uses: uses.max(1),
            caches: Mutex::new(Caches::default()),
            status: GpuBuffer::from_slice(gpu, "step status", &crate::kernels::finite::CLEAR)?,
            plan_options: PlanOptions::default(),
            read_every: 1,
            last: StepStats::default(),
            last_activation: ActivationBytes::default(),
            batch_stats_in_eval: false,
            transitional: false,
        })
    }

    /// The layer list the model was built from, if it was ([`Trainer::new`]).
    pub fn spec(&self) -> Option<&ModelSpec> {
        self.spec.as_ref()
    }

    /// The model's graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The device.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
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

    /// Random streams each step reserves (see [`crate::rng`]): step `s` draws from streams
    /// `s·U .. s·U + U`.
    pub fn streams_per_step(&self) -> u32 {
        self.uses
    }

    /// The streams a training step draws from under the current precisions, numbered within the
    /// step (the plan adds `step · streams_per_step()`): `(GEMM layer, product, stream)` for every
    /// stochastically rounded operand and SMP sample. Only the left operand of a product is ever
    /// drawn: weights round to nearest, and a weight gradient's saved activation was drawn by the
    /// forward product.
    pub fn step_streams(&self) -> Vec<(usize, super::policy::Product, u32)> {
        use super::policy::Product;
        let mut out = Vec::new();
        for (s, ls) in self.schemes.iter().enumerate() {
            for (i, p) in [Product::Forward, Product::InputGrad, Product::WeightGrad].into_iter().enumerate() {
                let a = ls.product(p, true).a;
                if a.stochastic() {
                    let first = (s as u32 * 3 + i as u32) * self.samples;
                    out.extend((0..a.samples()).map(|j| (s, p, first + j)));
                }
            }
        }
        out
    }

    /// The streams attention ops draw from under `+attn`, numbered within the step as
    /// [`Trainer::step_streams`] are: `(node, stream)` for each of an attention's four stochastic
    /// gradient operands (dO for dV and for dP, dS for dQ and for dK).
    pub fn attention_streams(&self) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        for (node, site) in self.attention.iter().enumerate() {
            if let Some(s) = site.filter(|s| s.policy.gradient.stochastic()) {
                out.extend((0..AttentionSite::STREAMS).map(|i| (node, s.stream + i)));
            }
        }
        out
    }

    /// The initialisation stream of every parameter buffer: `(node, parameter, stream)`.
    pub fn init_streams(&self) -> Vec<(usize, usize, u32)> {
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| (0..n.specs.len()).map(move |j| (i, j, streams::init(i, j))))
            .collect()
    }

    /// Reads the losses back every `k` steps (1, the default, reads every step: each
    /// [`Trainer::step`] returns its own loss). With a larger `k` the host records the next
    /// steps while the GPU runs the earlier ones, and a step returns the last loss read (its
    /// [`StepStats::step`] says which); [`Trainer::train_epoch`] and [`Trainer::flush`] read what
    /// is pending. At most 64.
    pub fn set_read_every(&mut self, k: usize) -> Result<()> {
        if !(1..=SLOTS).contains(&k) {
            return Err(Error::InvalidArgument(format!("read_every must be in 1..={SLOTS}, not {k}")));
        }
        self.read_every = k;
        Ok(())
    }

    /// How plans are built from now on (plans already built are dropped): with
    /// [`PlanOptions::poison`], every scratch value is filled with NaN bits before its first use
    /// in each step, so an op that reads storage it did not write shows as a different result —
    /// a check for ops of your own.
    pub fn set_plan_options(&mut self, opts: PlanOptions) {
        self.plan_options = opts;
        self.lock().plans.clear();
    }

    /// Makes forward-only passes ([`Trainer::logits`], [`Trainer::evaluate`]) normalize with the
    /// batch's statistics instead of the running ones, as the training step does. Meant for
    /// gradient checks: it also updates the running statistics on every such pass.
    pub fn set_batch_stats_in_eval(&mut self, on: bool) {
        self.batch_stats_in_eval = on;
    }

    /// The forward bit-width of every GEMM layer: 2, 3, 4 (int2/int3/int4), 8 (int8 or fp8),
    /// TinyScript's bits, or 32 (fp32).
    pub fn bits(&self) -> Vec<u32> {
        self.schemes.iter().map(|s| s.forward.bits()).collect()
    }

    /// Sets GEMM layer `layer`'s forward bit-width at run time (Bit-Mixer): 2, 3, 4, 8 → int2,
    /// int3, int4, int8 operands, 32 → fp32; the gradient precision stays, so the combination
    /// must be one a GEMM runs ([`LayerScheme::check`]). The next step uses (or builds) the plan
    /// of the new configuration. With transitional batch norm on, each batch norm switches to
    /// the state of its (bits before, bits after) pair, created from its base state the first
    /// time the pair is used.
    pub fn set_bits(&mut self, layer: usize, bits: u32) -> Result<()> {
        let forward = ForwardPrecision::from_bits(bits)
            .ok_or_else(|| Error::InvalidArgument(format!("run-time bit-widths are 2, 3, 4, 8 or 32, not {bits}")))?;
        let current =
            self.schemes.get(layer).ok_or_else(|| Error::InvalidArgument(format!("no GEMM layer {layer}")))?;
        let s = LayerScheme { forward, ..*current };
        s.check()?;
        self.schemes[layer] = s;
        self.update_norm_keys()
    }

    /// Turns transitional batch norm on: from now on each batch norm keeps a state per pair of
    /// neighbouring bit-widths (see [`Trainer::set_bits`]).
    pub fn enable_transitional_bn(&mut self) -> Result<()> {
        self.transitional = true;
        let keys = self.norm_keys();
        for (n, k) in self.nodes.iter_mut().zip(keys) {
            n.variants.clear();
            if let Some(k) = k {
                n.base_key = k;
                n.key = k;
            }
        }
        Ok(())
    }

    /// For each batch norm node, (bits of the GEMM layer before it, bits of the one after it, in
    /// node order; 32 if none).
    fn norm_keys(&self) -> Vec<Option<(u32, u32)>> {
        let bits = self.bits();
        let mut seen = 0usize;
        self.graph
            .nodes()
            .iter()
            .map(|n| {
                if n.op.is_gemm() {
                    seen += 1;
                    None
                } else if n.op.kind() == "batchnorm" {
                    Some((if seen == 0 { 32 } else { bits[seen - 1] }, bits.get(seen).copied().unwrap_or(32)))
                } else {
                    None
                }
            })
            .collect()
    }

    fn update_norm_keys(&mut self) -> Result<()> {
        if !self.transitional {
            return Ok(());
        }
        let keys = self.norm_keys();
        let gpu = self.gpu.clone();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for (n, k) in self.nodes.iter_mut().zip(keys) {
            let Some(k) = k else { continue };
            n.key = k;
            if k != n.base_key && !n.variants.iter().any(|v| v.0 == k) {
                let mut state = Vec::new();
                for (spec, p) in n.specs.iter().zip(&n.params) {
                    let value = GpuBuffer::<f32>::zeros(&gpu, "transitional state", p.value.len())?;
                    enc.copy_buffer_to_buffer(p.value.buffer(), 0, value.buffer(), 0, p.value.bytes());
                    let trainable = matches!(spec.kind, ParamKind::Trainable { .. });
                    state.push(ParamBuf {
                        value,
                        velocity: trainable
                            .then(|| {
                                GpuBuffer::zeros(&gpu, "optimizer state", self.opt.optimizer.state_len() * spec.len)
                            })
                            .transpose()?,
                        grad: trainable.then(|| GpuBuffer::zeros(&gpu, "gradient", spec.len)).transpose()?,
                    });
                }
                n.variants.push((k, state));
            }
        }
        gpu.submit([enc.finish()]);
        Ok(())
    }

    /// Activation memory of the last training step's plan.
    pub fn activation_bytes(&self) -> ActivationBytes {
        self.last_activation
    }

    /// What the plan of a training step at `batch` holds and records (built if needed).
    pub fn plan_stats(&self, batch: usize) -> Result<PlanStats> {
        let key = self.key(Kind::Train { loss: Loss::CrossEntropy, update: true }, batch, false);
        let mut c = self.lock();
        self.ensure(&mut c, &key)?;
        Ok(c.plans[&key].plan.stats())
    }

    /// Dispatches per kernel of the plan of a training step at `batch` (built if needed), as
    /// [`crate::plan::Plan::kernel_dispatches`] lists them.
    pub fn plan_kernel_dispatches(&self, batch: usize) -> Result<Vec<(String, usize)>> {
        let key = self.key(Kind::Train { loss: Loss::CrossEntropy, update: true }, batch, false);
        let mut c = self.lock();
        self.ensure(&mut c, &key)?;
        Ok(c.plans[&key].plan.kernel_dispatches())
    }

    /// Scratch bytes the plans' shared arena holds.
    pub fn arena_bytes(&self) -> u64 {
        self.lock().arena.bytes()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Caches> {
        self.caches.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, kind: Kind, batch: usize, refit: bool) -> PlanKey {
        PlanKey { kind, batch, schemes: self.schemes.clone(), bn: self.nodes.iter().map(|n| n.key).collect(), refit }
    }

    /// The ring a plan writes its losses into: `(rows, evaluation)`.
    fn ring_key(&self, key: &PlanKey) -> (usize, bool) {
        let positions = self.graph.positions();
        match key.kind {
            Kind::Train { loss, .. } => (loss.rows(key.batch, positions), false),
            Kind::Eval { .. } | Kind::Logits { .. } | Kind::Update => (key.batch * positions, true),
        }
    }

    fn dim(&self) -> usize {
        numel(self.graph.input_shape())
    }

    /// Values per sample of the model's output.
    pub fn output_len(&self) -> usize {
        numel(self.graph.output_shape())
    }

    fn check_labels(&self, op: &'static str, x: &[f32], labels: &[u32]) -> Result<usize> {
        if !self.graph.has_logits() {
            return Err(Error::InvalidArgument(format!(
                "{op}: this model's output {:?} is not logits to classify with (use step_regression)",
                self.graph.output_shape()
            )));
        }
        let (dim, positions) = (self.dim(), self.graph.positions());
        if labels.is_empty() {
            return Err(Error::Empty(op));
        }
        let batch = labels.len() / positions;
        if batch * positions != labels.len() || batch.checked_mul(dim) != Some(x.len()) {
            let per = if positions == 1 { String::new() } else { format!(" ({positions} labels per sample)") };
            return Err(Error::Shape {
                op,
                detail: format!(
                    "{} labels{per} need {} input values ({dim} per sample), got {}",
                    labels.len(),
                    (labels.len() / positions).saturating_mul(dim),
                    x.len()
                ),
            });
        }
        let classes = self.graph.classes() as u32;
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(Error::InvalidArgument(format!("{op}: label {bad} out of range for {classes} classes")));
        }
        Ok(batch)
    }

    fn check_values(&self, op: &'static str, x: &[f32], t: &[f32]) -> Result<usize> {
        let (dim, out) = (self.dim(), self.output_len());
        if x.is_empty() {
            return Err(Error::Empty(op));
        }
        let batch = x.len() / dim;
        if x.len() != batch * dim || Some(t.len()) != batch.checked_mul(out) {
            return Err(Error::Shape {
                op,
                detail: format!(
                    "inputs are samples of {dim} values and targets of {out}; got {} and {}",
                    x.len(),
                    t.len()
                ),
            });
        }
        Ok(batch)
    }

    fn ensure_inputs(&self, c: &mut Caches, batch: usize) -> Result<()> {
        if let std::collections::hash_map::Entry::Vacant(e) = c.inputs.entry(batch) {
            e.insert(Inputs {
                x: GpuBuffer::zeros(&self.gpu, "batch x", batch * self.dim())?,
                labels: GpuBuffer::zeros(&self.gpu, "batch labels", batch * self.graph.positions())?,
                targets: GpuBuffer::zeros(&self.gpu, "batch targets", batch * self.output_len())?,
            });
        }
        Ok(())
    }

    /// The plan for `key`, built if there is none (the least recently used one goes when too
    /// many are kept).
    fn ensure(&self, c: &mut Caches, key: &PlanKey) -> Result<bool> {
        c.tick += 1;
        let tick = c.tick;
        if let Some(p) = c.plans.get_mut(key) {
            p.used = tick;
            return Ok(false);
        }
        if key.kind != Kind::Update {
            self.ensure_inputs(c, key.batch)?;
            let (rows, eval) = self.ring_key(key);
            if let std::collections::hash_map::Entry::Vacant(e) = c.rings.entry((rows, eval)) {
                e.insert(Ring::new(&self.gpu, rows)?);
            }
        }
        if c.plans.len() >= MAX_PLANS {
            if let Some(old) = c.plans.iter().min_by_key(|p| p.1.used).map(|p| p.0.clone()) {
                c.plans.remove(&old);
            }
        }
        let mut plan = self.build(c, key)?;
        plan.used = tick;
        c.plans.insert(key.clone(), plan);
        Ok(true)
    }

    /// Compiles the graph into a plan (see the module docs). Where the `Gpu` tunes
    /// ([`Gpu::tunes`]), the integer GEMMs' shape classes that this plan met without a tuning
    /// result are timed and the plan is built again with their fastest paths (the same bits).
    fn build(&self, c: &mut Caches, key: &PlanKey) -> Result<StepPlan> {
        let plan = self.build_once(c, key)?;
        if !self.gpu.tunes() {
            return Ok(plan);
        }
        let tuned = self.k.tune_int(&self.gpu)?;
        if tuned == 0 {
            return Ok(plan);
        }
        c.tuned += tuned;
        drop(plan);
        self.build_once(c, key)
    }

    /// Integer GEMM shape classes this trainer's step plans tuned when they were built (see
    /// [`Gpu::tunes`]; 0 where it does not tune, and for classes another trainer on the same `Gpu`
    /// tuned first: the kernels and their tuning are the `Gpu`'s).
    pub fn tuned_classes(&self) -> usize {
        self.lock().tuned
    }

    /// What the integer GEMMs' tuning timed for the step plans built on this trainer's `Gpu`
    /// (this trainer's and any other's on it: the kernels are the `Gpu`'s), one entry per shape
    /// class: each path's time and the one kept.
    pub fn gemm_tunings(&self) -> Vec<crate::kernels::gemm_int::Tuning> {
        self.k.int_tunings()
    }

    /// [`Trainer::build`] without tuning.
    fn build_once(&self, c: &mut Caches, key: &PlanKey) -> Result<StepPlan> {
        let gpu = &self.gpu;
        let batch = key.batch;
        if key.kind == Kind::Update {
            let mut tape = Tape::with_status(gpu, self.status.buffer());
            let mut cx = Cx {
                gpu,
                rec: &mut tape,
                kernels: &self.k,
                batch,
                mode: Mode::Train,
                seed: self.seed,
                saved: ActivationBytes::default(),
                deferred: Vec::new(),
                norm_commits: Vec::new(),
                unfused: self.plan_options.unfused,
                maxima_ask: None,
                grad_maxima: None,
            };
            self.record_checks_and_update(&mut cx, Vec::new(), true)?;
            drop(cx);
            let plan = tape.finish_with(&mut c.arena, self.plan_options)?;
            return Ok(StepPlan { plan, saved: ActivationBytes::default(), out: None, refits: Vec::new(), used: 0 });
        }
        let inputs = &c.inputs[&key.batch];
        let ring = &c.rings[&self.ring_key(key)];
        let mode = match key.kind {
            Kind::Train { .. } | Kind::Update => Mode::Train,
            Kind::Eval { batch_stats } | Kind::Logits { batch_stats } => Mode::Eval { batch_stats },
        };
        // Refit steps copy what the TinyScript fits need into buffers of their own.
        let mut refits = Vec::new();
        if key.refit {
            for (s, &node) in self.site_nodes.iter().enumerate() {
                let ls = &self.schemes[s];
                let out = self.graph.value(self.graph.nodes()[node].output).shape;
                let (rows, n) = (batch * out.0 * out.1, out.2);
                let k = self.nodes[node].specs[0].len / n;
                let grad = matches!(ls.gradient, GradPrecision::TinyScript { fitted: true, .. });
                let act = matches!(ls.forward, ForwardPrecision::TinyScript { fitted: true, .. });
                if grad || act {
                    refits.push(Refit {
                        site: s,
                        grad: grad
                            .then(|| GpuBuffer::zeros(gpu, "refit dy", rows * n).map(|b| (b, rows, n)))
                            .transpose()?,
                        act: act
                            .then(|| GpuBuffer::zeros(gpu, "refit x", rows * k).map(|b| (b, rows, k)))
                            .transpose()?,
                    });
                }
            }
        }
        let mut tape = Tape::with_status(gpu, self.status.buffer());
        let mut cx = Cx {
            gpu,
            rec: &mut tape,
            kernels: &self.k,
            batch,
            mode,
            seed: self.seed,
            saved: ActivationBytes::default(),
            deferred: Vec::new(),
            norm_commits: Vec::new(),
            unfused: self.plan_options.unfused,
            maxima_ask: None,
            grad_maxima: None,
        };
        let nodes = self.graph.nodes();
        let shapes: Vec<Vec<Shape>> =
            nodes.iter().map(|n| n.inputs.iter().map(|v| self.graph.value(*v).shape).collect()).collect();
        let nonneg: Vec<Vec<bool>> =
            nodes.iter().map(|n| n.inputs.iter().map(|v| self.graph.value(*v).nonnegative).collect()).collect();
        let node_cx = |i: usize| -> NodeCx<'_> {
            let n = &nodes[i];
            let gemm = self.site_of[i].map(|s| {
                let r = refits.iter().find(|r| r.site == s);
                GemmSite {
                    index: s,
                    scheme: key.schemes[s],
                    streams: [0, 1, 2].map(|p| (s as u32 * 3 + p) * self.samples),
                    levels: self.levels[s].as_ref(),
                    refit: (
                        r.and_then(|r| r.grad.as_ref().map(|g| &g.0)),
                        r.and_then(|r| r.act.as_ref().map(|a| &a.0)),
                    ),
                    // As the backward's `need` below: the model's input takes no gradient.
                    input_grad: n.inputs.first().is_some_and(|v| v.0 != 0),
                }
            });
            NodeCx {
                index: i,
                name: &n.name,
                params: self.nodes[i].active(),
                inputs: &shapes[i],
                nonnegative: &nonneg[i],
                output: self.graph.value(n.output).shape,
                gemm,
                attention: self.attention[i],
            }
        };
        let mut values: Vec<Option<GpuBuffer<f32>>> = vec![None; self.graph.value_count()];
        values[0] = Some(inputs.x.clone());
        let mut backs = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let xs: Vec<&GpuBuffer<f32>> =
                n.inputs.iter().map(|v| values[v.0].as_ref().expect("inputs precede their readers")).collect();
            let ncx = node_cx(i);
            let Forward { y, backward } = n.op.forward(&mut cx, &ncx, &xs).map_err(|e| node_error(&n.name, e))?;
            values[n.output.0] = Some(y);
            backs.push(backward);
        }
        let y = values[self.graph.output().0].clone().expect("the output is produced");
        let shape = (self.output_len(), self.graph.positions());
        let (stored, mut out) = (cx.saved, None);
        match key.kind {
            Kind::Train { loss, update } => {
                let ring_out = LossOut { loss: &ring.loss, correct: &ring.correct };
                let dy = loss.record(&mut cx, &y, shape, &inputs.labels, Some(&inputs.targets), 1.0, ring_out)?;
                // Each value's gradient: the contributions summed so far and the last one, not
                // yet added (a value read by several nodes), which the backward of the node whose
                // output it is takes as they are (Backward::backward_of_sum: a ReLU's mask adds
                // them in its launch).
                type Contributions = (GpuBuffer<f32>, Option<GpuBuffer<f32>>);
                let mut grads: Vec<Option<Contributions>> = vec![None; self.graph.value_count()];
                grads[self.graph.output().0] = Some((dy, None));
                // The maxima of a gradient's transpose, group by group, written by the backward
                // that produces the gradient for the quantizer of the backward that takes it (the
                // node whose output it is), where that node wants them and the producer, the
                // output's one reading (no other node, no second input), writes them.
                let mut asks: Vec<Option<crate::scheme::Granularity>> = vec![None; nodes.len()];
                for (i, n) in nodes.iter().enumerate() {
                    let readers: Vec<usize> = (nodes.iter().enumerate())
                        .flat_map(|(j, m)| m.inputs.iter().filter(|v| **v == n.output).map(move |_| j))
                        .collect();
                    if let (&[j], true) = (&readers[..], n.output != self.graph.output()) {
                        if backs[i].is_some() && nodes[j].inputs[0] == n.output && nodes[j].op.writes_grad_maxima() {
                            asks[j] = n.op.grad_maxima_wanted(&cx, &node_cx(i));
                        }
                    }
                }
                let mut maxima: Vec<Option<GpuBuffer<u32>>> = vec![None; self.graph.value_count()];
                for (i, n) in nodes.iter().enumerate().rev() {
                    let Some(b) = backs[i].take() else { continue };
                    let (dy, last) = grads[n.output.0].take().ok_or_else(|| {
                        Error::InvalidArgument(format!("{}: no gradient reaches this node's output", n.name))
                    })?;
                    let need: Vec<bool> = n.inputs.iter().map(|v| v.0 != 0).collect();
                    let ncx = node_cx(i);
                    (cx.maxima_ask, cx.grad_maxima) = (asks[i], maxima[n.output.0].take());
                    let dxs = match &last {
                        None => b.backward(&mut cx, &ncx, &dy, &need),
                        Some(dy_b) => b.backward_of_sum(&mut cx, &ncx, &dy, dy_b, &need),
                    }
                    .map_err(|e| node_error(&n.name, e))?;
                    // What the backward was asked to write goes with its first input's gradient;
                    // what it was given, it took.
                    match (asks[i], cx.grad_maxima.take()) {
                        (Some(_), Some(m)) => maxima[n.inputs[0].0] = Some(m),
                        (None, None) => {}
                        _ => {
                            return Err(Error::InvalidArgument(format!(
                                "{}: gradient maxima asked of this node's backward were not written, or given \
                                 to it were not taken",
                                n.name
                            )))
                        }
                    }
                    for (v, dx) in n.inputs.iter().zip(dxs) {
                        let Some(dx) = dx else { continue };
                        // A value read by several nodes: its gradients add up, in the order they
                        // arrive, the last addition left to the backward that takes them.
                        grads[v.0] = Some(match grads[v.0].take() {
                            None => (dx, None),
                            Some((acc, None)) => (acc, Some(dx)),
                            Some((acc, Some(last))) => (summed_gradient(&mut cx, &acc, &last)?, Some(dx)),
                        });
                    }
                }
                let mut checked = vec![&inputs.x];
                if matches!(loss, Loss::SquaredError { .. }) {
                    checked.push(&inputs.targets);
                }
                self.record_checks_and_update(&mut cx, checked, update)?;
            }
            Kind::Eval { .. } => {
                let ring_out = LossOut { loss: &ring.loss, correct: &ring.correct };
                Loss::CrossEntropy.record(&mut cx, &y, shape, &inputs.labels, None, 0.0, ring_out)?;
            }
            Kind::Update => unreachable!("built above"),
            Kind::Logits { .. } => {
                let o = GpuBuffer::<f32>::zeros(gpu, "logits", y.len())?;
                use crate::Record;
                cx.rec.copy(y.buffer(), 0, o.buffer(), 0, y.bytes());
                out = Some(o);
            }
        }
        drop(cx);
        let plan = tape.finish_with(&mut c.arena, self.plan_options)?;
        Ok(StepPlan { plan, saved: stored, out, refits, used: 0 })
    }

    /// Records the step's check and its state updates: a NaN or infinity in `checked` (the
    /// batch), in a trainable parameter (the quantized formats would round either to a number
    /// and train on) or in any gradient sets the status, and every state update after it (the
    /// ops' deferred ones, such as running statistics, then the optimizer when `update`) writes
    /// nothing.
    fn record_checks_and_update<'a>(
        &'a self,
        cx: &mut Cx<'a>,
        mut checked: Vec<&'a GpuBuffer<f32>>,
        update: bool,
    ) -> Result<()> {
        let gpu = &self.gpu;
        for n in &self.nodes {
            for (spec, p) in n.specs.iter().zip(n.active()) {
                if let (ParamKind::Trainable { .. }, Some(g)) = (spec.kind, &p.grad) {
                    checked.extend([&p.value, g]);
                }
            }
        }
        self.k.finite.encode(gpu, cx.rec, &checked, &self.status)?;
        for f in std::mem::take(&mut cx.deferred) {
            f(cx)?;
        }
        let commits = std::mem::take(&mut cx.norm_commits);
        if !commits.is_empty() {
            let layers: Vec<NormCommit> = commits
                .iter()
                .map(|(stats, running, channels)| NormCommit { stats, running, channels: *channels })
                .collect();
            self.k.norm.encode_commit_many(gpu, cx.rec, &layers)?;
        }
        if update {
            // Every trainable tensor in one list: the optimizer updates eight a dispatch.
            let mut tensors = Vec::new();
            for n in &self.nodes {
                for (spec, p) in n.specs.iter().zip(n.active()) {
                    let ParamKind::Trainable { weight_decay } = spec.kind else { continue };
                    let (Some(v), Some(g)) = (&p.velocity, &p.grad) else { continue };
                    let wd = if weight_decay { self.opt.weight_decay } else { 0.0 };
                    tensors.push(OptimTensor { w: &p.value, state: v, g, weight_decay: wd });
                }
            }
            if !tensors.is_empty() {
                match self.opt.optimizer {
                    Optimizer::Sgd => self.k.sgd.encode_many(gpu, cx.rec, &tensors, 1.0, self.opt.momentum)?,
                    Optimizer::AdamW { beta1, beta2, eps } => {
                        let s = AdamStep { lr: 1.0, beta1, beta2, eps, weight_decay: 0.0 };
                        self.k.adam.encode_many(gpu, cx.rec, &tensors, s)?
                    }
                }
            }
        }
        Ok(())
    }

    /// One SGD step on a batch (`x`: samples × `h·w·c` values, channels last; `labels`: one per
    /// sample, or one per output position of each sample for a model whose output has several,
    /// such as a language model's next-token logits) with learning rate `lr` (see
    /// [`Trainer::set_read_every`] for which step's loss it returns; `correct` counts labels).
    pub fn step(&mut self, x: &[f32], labels: &[u32], lr: f32) -> Result<StepStats> {
        Ok(self.run_step(x, Target::Labels(labels), lr, true)?.0)
    }

    /// One SGD step regressing the model's outputs onto `targets` (samples × output size) with
    /// the mean squared error over every output of the batch (PyTorch's `MSELoss`); returns
    /// that loss (of the last step read back). The training step of divide-and-conquer
    /// distillation ([`super::dcq`]).
    pub fn step_regression(&mut self, x: &[f32], targets: &[f32], lr: f32) -> Result<f32> {
        Ok(self.run_step(x, Target::Values { t: targets, per_sample: false }, lr, true)?.0.loss)
    }

    /// As [`Trainer::step_regression`] with the squared distance between a sample's output and
    /// its target summed over the output's values and averaged over the batch (`‖f_s − f_t‖²`
    /// per sample, the feature loss of DCQ): its gradients have the scale of a classification
    /// step's whatever the output's width, so the same learning rate serves a 10-value and a
    /// 256-value section. Returns that loss.
    pub fn step_features(&mut self, x: &[f32], targets: &[f32], lr: f32) -> Result<f32> {
        Ok(self.run_step(x, Target::Values { t: targets, per_sample: true }, lr, true)?.0.loss)
    }

    /// The gradient of the batch's mean loss for every parameter, as the step computes it under
    /// the scheme (quantized products, stochastic rounding), without updating anything but the
    /// step counter (so the next call draws fresh rounding) and batch-norm running statistics.
    /// Named and shaped as in [`Trainer::parameters`], without the running statistics.
    pub fn gradients(&mut self, x: &[f32], labels: &[u32]) -> Result<Vec<Parameter>> {
        self.backward(x, labels)?;
        let mut out = Vec::new();
        for (g, exports) in self.gradient_slots() {
            let v = g.read(&self.gpu)?;
            for (name, shape, off) in exports {
                let len: usize = shape.iter().product();
                out.push((name, shape, v[off..off + len].to_vec()));
            }
        }
        Ok(out)
    }

    /// Makes this trainer replica `rank` of `ranks` that train one model together (data
    /// parallel, as `lowbit::dist` does over MPI): replicas built with the same graph, scheme and
    /// seed start from the same parameters, and replica `rank` draws its stochastic rounding at
    /// step `s` from the streams a lone trainer would use at step `s·ranks + rank`, so no two
    /// replicas share a draw. Refused for TinyScript's fitted levels, which each replica would
    /// fit to its own gradients (the replicas would drift apart).
    pub fn set_replica(&mut self, rank: u32, ranks: u32) -> Result<()> {
        if ranks == 0 || rank >= ranks {
            return Err(Error::InvalidArgument(format!("set_replica: rank {rank} of {ranks}")));
        }
        if ranks > 1 && self.levels.iter().any(Option::is_some) {
            return Err(Error::InvalidArgument(
                "set_replica: TinyScript's level tables are fitted per replica, so replicas would diverge".into(),
            ));
        }
        self.replica = (rank, ranks);
        Ok(())
    }

    /// The gradient of the batch's mean loss for every trainable parameter, left in the
    /// trainer's gradient buffers, without updating the parameters (batch-norm running
    /// statistics and the step counter advance as in [`Trainer::step`]). Waits for the step and
    /// returns its stats; a NaN or infinity is [`Error::NonFinite`], as for a step.
    /// [`Trainer::apply_gradients`] then applies the optimizer to those buffers — after, for
    /// instance, the replicas of a data-parallel run have exchanged them.
    pub fn backward(&mut self, x: &[f32], labels: &[u32]) -> Result<StepStats> {
        self.run_step(x, Target::Labels(labels), 0.0, false)?;
        self.flush()?;
        Ok(self.last)
    }

    /// Applies the optimizer (with learning rate `lr`) to the gradient buffers as they are —
    /// those of the last [`Trainer::backward`], or what was written into them since — through
    /// a plan of its own (built once). A NaN or infinity in a parameter or a gradient leaves
    /// every parameter and optimizer state as it was and is [`Error::NonFinite`].
    pub fn apply_gradients(&mut self, lr: f32) -> Result<()> {
        if !lr.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "Trainer::apply_gradients: the learning rate must be finite, not {lr}"
            )));
        }
        let Some(step) = self.step.checked_sub(1) else {
            return Err(Error::InvalidArgument("Trainer::apply_gradients: no backward pass has run".into()));
        };
        let key = self.key(Kind::Update, 0, false);
        let gpu = self.gpu.clone();
        {
            let mut guard = self.lock();
            self.ensure(&mut guard, &key)?;
            let plan = &guard.plans[&key];
            let bias = match self.opt.optimizer {
                Optimizer::AdamW { beta1, beta2, .. } => bias_correction(beta1, beta2, self.step),
                Optimizer::Sgd => 1.0,
            };
            plan.plan.set_step(StepState { stream_base: 0, lr, step: step as u32, slot: 0, bias, pad: [0; 3] });
            let mut rec = Recorder::new(&gpu, "lowbit update");
            plan.plan.record(&mut rec);
            gpu.submit([rec.finish()]);
        }
        let status = self.status.read(&gpu)?;
        if status[0] != 0 {
            self.status.write(&gpu, &crate::kernels::finite::CLEAR)?;
            return Err(Error::NonFinite {
                step,
                detail: "a NaN or infinity in the parameters or the gradients".into(),
            });
        }
        Ok(())
    }

    /// Every trainable parameter buffer's gradient, with the exports `(name, shape, offset)` it
    /// holds, in a fixed order (graph order, then parameter order).
    pub(crate) fn gradient_slots(&self) -> Vec<(&GpuBuffer<f32>, Vec<Export>)> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for (spec, p) in n.specs.iter().zip(n.active()) {
                let (ParamKind::Trainable { .. }, Some(g)) = (spec.kind, &p.grad) else { continue };
                let node = &self.graph.nodes()[i].name;
                let exports =
                    spec.exports.iter().map(|(name, shape, off)| (format!("{node}.{name}"), shape.clone(), *off));
                out.push((g, exports.collect()));
            }
        }
        out
    }

    /// Reads the losses still pending on the GPU; returns the last step's stats if there were
    /// any.
    pub fn flush(&mut self) -> Result<Option<StepStats>> {
        let records = self.read_pending()?;
        Ok(records.last().map(|_| self.last))
    }

    fn read_pending(&mut self) -> Result<Vec<StepRecord>> {
        let mut c = self.lock();
        let Some(ring) = c.rings.iter_mut().find(|(k, r)| !k.1 && !r.pending.is_empty()).map(|r| r.1) else {
            return Ok(Vec::new());
        };
        let mut rec = Recorder::new(&self.gpu, "lowbit loss read-back");
        ring.copy_out(&mut rec, &self.status);
        self.gpu.submit([rec.finish()]);
        let (records, status) = ring.read(&self.gpu)?;
        drop(c);
        self.take_records(&records, status)?;
        Ok(records)
    }

    /// Checks what was read back — the status of the steps' checks, their losses — and keeps the
    /// last step's as the trainer's latest stats. A step that went non-finite changed nothing
    /// (its state updates, and those of the steps queued after it, read the status and wrote
    /// nothing): the step counter goes back to it, the status is cleared, and the error says so.
    fn take_records(&mut self, records: &[StepRecord], status: [u32; 2]) -> Result<()> {
        if status[0] != 0 {
            // The first failing step, from the low 32 bits the GPU kept.
            let bad = records.iter().map(|r| r.step).find(|&s| s as u32 == status[1]).unwrap_or(self.step);
            self.status.write(&self.gpu, &crate::kernels::finite::CLEAR)?;
            self.step = bad;
            return Err(Error::NonFinite {
                step: bad,
                detail: "a NaN or infinity in the batch, the parameters or the gradients".into(),
            });
        }
        if let Some(bad) = records.iter().find(|r| !r.loss.is_finite()) {
            return Err(Error::NonFinite { step: bad.step, detail: format!("loss {}", bad.loss) });
        }
        if let Some(r) = records.last() {
            self.last.loss = r.loss as f32;
            self.last.correct = r.correct;
            self.last.step = r.step;
            self.last.read = true;
        }
        Ok(())
    }

    fn run_step(&mut self, x: &[f32], target: Target, lr: f32, update: bool) -> Result<(StepStats, Vec<StepRecord>)> {
        let (batch, loss) = match target {
            Target::Labels(labels) => (self.check_labels("Trainer::step", x, labels)?, Loss::CrossEntropy),
            Target::Values { t, per_sample } => {
                (self.check_values("Trainer::step_regression", x, t)?, Loss::SquaredError { per_sample })
            }
        };
        if !lr.is_finite() {
            return Err(Error::InvalidArgument(format!("Trainer::step: the learning rate must be finite, not {lr}")));
        }
        check_rotations(&self.graph, &self.site_nodes, &self.schemes, batch)?;
        // Replica r of n draws at step s what a lone trainer would at step s·n + r.
        let (rank, ranks) = self.replica;
        let virtual_step = self.step.checked_mul(ranks as u64).and_then(|v| v.checked_add(rank as u64));
        let base = virtual_step.and_then(|v| streams::step_base(v, self.uses)).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "step {}: the run has used every random stream it may ({} per step, see lowbit::rng)",
                self.step, self.uses
            ))
        })?;
        let refit = self.step.is_multiple_of(TINYSCRIPT_REFIT)
            && self.schemes.iter().any(|s| {
                matches!(s.gradient, GradPrecision::TinyScript { fitted: true, .. })
                    || matches!(s.forward, ForwardPrecision::TinyScript { fitted: true, .. })
            });
        let key = self.key(Kind::Train { loss, update }, batch, refit);
        let gpu = self.gpu.clone();
        let t_start = Instant::now();
        let created = gpu.creations();
        let divisor = loss.divisor(batch, self.output_len(), self.graph.positions());
        let (built, dispatches, passes, saved, refits, t_recorded, t_submitted, read) = {
            let mut guard = self.lock();
            let built = self.ensure(&mut guard, &key)?;
            let c = &mut *guard;
            let inputs = &c.inputs[&batch];
            inputs.x.write(&gpu, x)?;
            match target {
                Target::Labels(labels) => inputs.labels.write(&gpu, labels)?,
                Target::Values { t, .. } => inputs.targets.write(&gpu, t)?,
            }
            let ring = c.rings.get_mut(&self.ring_key(&key)).expect("ensured");
            let slot = ring.take_slot(self.step, divisor);
            let plan = &c.plans[&key];
            let bias = match self.opt.optimizer {
                Optimizer::AdamW { beta1, beta2, .. } => bias_correction(beta1, beta2, self.step + 1),
                Optimizer::Sgd => 1.0,
            };
            plan.plan.set_step(StepState { stream_base: base, lr, step: self.step as u32, slot, bias, pad: [0; 3] });
            let mut rec = Recorder::new(&gpu, "lowbit train step");
            plan.plan.record(&mut rec);
            // A refit step reads too: its fit must not run on a step that went non-finite.
            let read = ring.pending.len() >= self.read_every || ring.full() || refit;
            if read {
                ring.copy_out(&mut rec, &self.status);
            }
            let (dispatches, passes) = (rec.dispatches(), rec.passes());
            let cmd = rec.finish();
            let t_recorded = Instant::now();
            gpu.submit([cmd]);
            let t_submitted = Instant::now();
            let refits: Vec<Refitted> = plan.refits.iter().map(|r| (r.site, r.grad.clone(), r.act.clone())).collect();
            let read = if read { ring.read(&gpu)? } else { (Vec::new(), crate::kernels::finite::CLEAR) };
            (built, dispatches, passes, plan.saved, refits, t_recorded, t_submitted, read)
        };
        let (records, status) = read;
        self.step += 1;
        self.last_activation = saved;
        self.take_records(&records, status)?;
        // TinyScript: fit the levels to this step's gradients and inputs, for the steps after it.
        for r in refits {
            self.refit(r)?;
        }
        let counts = StepCounts { dispatches, passes, created: gpu.creations() - created, built_plan: built };
        let host = StepHostTime {
            record: (t_recorded - t_start).as_secs_f64(),
            submit: (t_submitted - t_recorded).as_secs_f64(),
            wait: t_submitted.elapsed().as_secs_f64(),
        };
        self.last.host = host;
        self.last.counts = counts;
        Ok((self.last, records))
    }

    /// Refits GEMM layer `s`'s TinyScript tables from the copies a refit step made, and writes
    /// them where the plans read them.
    fn refit(&mut self, (s, grad, act): Refitted) -> Result<()> {
        let gpu = self.gpu.clone();
        let Some(l) = self.levels[s].as_mut() else { return Ok(()) };
        if let (Some((g, rows, n)), Some(rt), Some(ct)) = (grad, &mut l.grad_rows, &mut l.grad_cols) {
            // dY [rows, n]: scaled per row for dY·W, per column for dYᵀ·X.
            let kind = |t: &LevelTable| (t.bits, t.signed);
            let fit = self.k.ts.fit_rows_and_columns(&gpu, &g, (rows, n), kind(&rt.0), kind(&ct.0));
            if let Some((_, t_rows, t_cols)) = fitted(fit)? {
                rt.1.write(&gpu, &t_rows.levels)?;
                ct.1.write(&gpu, &t_cols.levels)?;
                (rt.0, ct.0) = (t_rows, t_cols);
            }
        }
        if let (Some((x, rows, k)), Some(at)) = (act, &mut l.activation) {
            if let Some((_, table)) = fitted(self.k.ts.fit_as(&gpu, &x, rows, k, false, at.0.bits, at.0.signed))? {
                at.1.write(&gpu, &table.levels)?;
                at.0 = table;
            }
        }
        if let (Some(both), Some(g), Some(a)) = (&l.both, &l.grad_cols, &l.activation) {
            let v: Vec<u32> = g.0.levels.iter().chain(&a.0.levels).copied().collect();
            both.write(&gpu, &v)?;
        }
        Ok(())
    }

    /// Test accuracy and mean loss on `data`, forward only, in the scheme's forward precision.
    pub fn evaluate(&self, data: &Dataset) -> Result<(f64, f64)> {
        if data.is_empty() {
            return Err(Error::Empty("Trainer::evaluate"));
        }
        let gpu = &self.gpu;
        let (mut right, mut loss_sum) = (0u64, 0f64);
        let order: Vec<usize> = (0..data.len()).collect();
        let chunks: Vec<&[usize]> = order.chunks(self.opt.batch).collect();
        let mut c = self.lock();
        for (ci, idx) in chunks.iter().enumerate() {
            let (x, labels) = data.gather(idx)?;
            let batch = self.check_labels("Trainer::evaluate", &x, &labels)?;
            let key = self.key(Kind::Eval { batch_stats: self.batch_stats_in_eval }, batch, false);
            self.ensure(&mut c, &key)?;
            let c = &mut *c;
            let inputs = &c.inputs[&batch];
            inputs.x.write(gpu, &x)?;
            inputs.labels.write(gpu, &labels)?;
            let ring = c.rings.get_mut(&self.ring_key(&key)).expect("ensured");
            let slot = ring.take_slot(ci as u64, 1);
            let plan = &c.plans[&key].plan;
            plan.set_step(StepState { slot, ..StepState::UNIT });
            let mut rec = Recorder::new(gpu, "lowbit evaluation");
            plan.record(&mut rec);
            // The last chunk may be a smaller batch with a ring of its own: read a ring when it
            // is full, when the next chunk is of another size, and at the end.
            let next_other = chunks.get(ci + 1).is_none_or(|n| n.len() != batch);
            let read = ring.full() || next_other;
            if read {
                ring.copy_out(&mut rec, &self.status);
            }
            gpu.submit([rec.finish()]);
            if read {
                for r in ring.read(gpu)?.0 {
                    right += r.correct as u64;
                    loss_sum += r.loss;
                }
            }
        }
        Ok((right as f64 / data.len() as f64, loss_sum / data.len() as f64))
    }

    /// Accuracy and mean loss over the labels of one batch (`x` and `labels` as in
    /// [`Trainer::step`]: per position for a sequence model), forward only, in the scheme's
    /// forward precision; nothing is updated. A validation pass over data that is not a
    /// [`Dataset`] of one label per sample calls this batch by batch.
    pub fn evaluate_batch(&self, x: &[f32], labels: &[u32]) -> Result<(f64, f64)> {
        let batch = self.check_labels("Trainer::evaluate_batch", x, labels)?;
        let key = self.key(Kind::Eval { batch_stats: self.batch_stats_in_eval }, batch, false);
        let gpu = &self.gpu;
        let mut guard = self.lock();
        self.ensure(&mut guard, &key)?;
        let c = &mut *guard;
        let inputs = &c.inputs[&batch];
        inputs.x.write(gpu, x)?;
        inputs.labels.write(gpu, labels)?;
        let ring = c.rings.get_mut(&self.ring_key(&key)).expect("ensured");
        let slot = ring.take_slot(0, labels.len());
        let plan = &c.plans[&key].plan;
        plan.set_step(StepState { slot, ..StepState::UNIT });
        let mut rec = Recorder::new(gpu, "lowbit evaluation");
        plan.record(&mut rec);
        ring.copy_out(&mut rec, &self.status);
        gpu.submit([rec.finish()]);
        let records = ring.read(gpu)?.0;
        let r = records.last().expect("one slot was taken");
        Ok((r.correct as f64 / labels.len() as f64, r.loss))
    }

    /// The model's outputs for a batch (forward only).
    pub fn logits(&self, x: &[f32], batch: usize) -> Result<Vec<f32>> {
        let dim = self.dim();
        if batch == 0 || Some(x.len()) != batch.checked_mul(dim) {
            return Err(Error::Shape {
                op: "Trainer::logits",
                detail: format!("{batch} samples need {} values, got {}", batch.saturating_mul(dim), x.len()),
            });
        }
        let key = self.key(Kind::Logits { batch_stats: self.batch_stats_in_eval }, batch, false);
        let mut c = self.lock();
        self.ensure(&mut c, &key)?;
        c.inputs[&batch].x.write(&self.gpu, x)?;
        let plan = &c.plans[&key];
        let mut rec = Recorder::new(&self.gpu, "lowbit logits");
        plan.plan.set_step(StepState::UNIT);
        plan.plan.record(&mut rec);
        self.gpu.submit([rec.finish()]);
        plan.out.as_ref().expect("a logits plan copies its output").read(&self.gpu)
    }

    /// Every exported parameter tensor and where it lives: `(name, shape, buffer, offset)`,
    /// base states first, then transitional ones (`<node>.tbnA_B.<name>`).
    fn slots(&self) -> Vec<(String, Vec<usize>, &GpuBuffer<f32>, usize)> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let node = &self.graph.nodes()[i].name;
            let sets = std::iter::once((String::new(), &n.params))
                .chain(n.variants.iter().map(|((a, b), p)| (format!("tbn{a}_{b}."), p)));
            for (tag, params) in sets {
                for (spec, p) in n.specs.iter().zip(params) {
                    for (name, shape, off) in &spec.exports {
                        out.push((format!("{node}.{tag}{name}"), shape.clone(), &p.value, *off));
                    }
                }
            }
        }
        out
    }

    /// Parameters as `(name, shape, values)`: for a [`ModelSpec`], `layers.{i}.weight` `[out,
    /// in]` (for convolutions `[out, kh·kw·in_c]`, kernel-row-major and channels last) and, where
    /// the layer has one, `layers.{i}.bias` `[out]`, with `i` the layer's position in the model
    /// (a residual block's layers under `layers.{i}.main.{j}` / `.shortcut.{j}`); a batch norm
    /// has `weight` (γ), `bias` (β), `running_mean` and `running_var`, each `[channels]`, as in
    /// PyTorch.
    pub fn parameters(&self) -> Result<Vec<Parameter>> {
        let mut out = Vec::new();
        let mut cache: Vec<(&GpuBuffer<f32>, Vec<f32>)> = Vec::new();
        for (name, shape, buf, off) in self.slots() {
            let len: usize = shape.iter().product();
            let pos = match cache.iter().position(|(b, _)| std::ptr::eq(*b, buf)) {
                Some(p) => p,
                None => {
                    cache.push((buf, buf.read(&self.gpu)?));
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
        buf.write_at(&self.gpu, off, values)
    }

    /// The activation level tables of the TinyScript-forward layers as `(checkpoint name
    /// `<node>.activation_levels`, GEMM layer, table)` (u32 fixed point, [`LevelTable`]).
    fn level_slots(&self) -> Vec<(String, usize, &LevelTable)> {
        self.levels
            .iter()
            .enumerate()
            .filter_map(|(s, l)| {
                let t = &l.as_ref()?.activation.as_ref()?.0;
                Some((format!("{}.activation_levels", self.graph.nodes()[self.site_nodes[s]].name), s, t))
            })
            .collect()
    }

    /// Writes the parameters to a safetensors file (readable by PyTorch's `safetensors.torch`
    /// and numpy's `safetensors.numpy`), with the model, scheme and step in its metadata. A
    /// TinyScript forward's activation levels go with them (u32 tensors
    /// `<node>.activation_levels`), so that a loaded model evaluates the same. The file is
    /// written beside `path` under a temporary name, synced, then renamed to `path`, so a save
    /// that fails or is interrupted leaves an earlier checkpoint there whole (and removes its
    /// temporary file where it can).
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
        let model = match &self.spec {
            Some(s) => format!("{s:?}"),
            None => self.graph.name().to_string(),
        };
        let meta: HashMap<String, String> = [
            ("model".to_string(), model),
            ("scheme".to_string(), self.scheme.name.clone()),
            ("step".to_string(), self.step.to_string()),
        ]
        .into();
        let path = path.as_ref();
        let err = |detail: String| Error::Data { path: path.display().to_string(), detail };
        let name = path.file_name().ok_or_else(|| err("not a file name".into()))?;
        // `.<name>.<pid>.tmp` beside the checkpoint: the rename stays within one directory.
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let written = safetensors::serialize_to_file(views, &Some(meta), &tmp)
            .map_err(|e| match e {
                safetensors::SafeTensorError::IoError(io) => io.to_string(),
                other => other.to_string(),
            })
            .and_then(|()| {
                // (Opened for writing: Windows syncs only a handle that may write.)
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&tmp)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .map_err(|e| e.to_string())
            });
        written.map_err(|e| {
            std::fs::remove_file(&tmp).ok();
            err(format!("could not write checkpoint: {e}"))
        })
    }

    /// The batch norms that would take the bias of a convolution which the model has without
    /// one: `(batch norm's node, the bias's tensor name)` for each name in `extra` that is
    /// `<conv>.bias` of a convolution node whose output only a batch norm reads.
    fn conv_bias_folds(&self, extra: &[String]) -> Vec<(String, String)> {
        let nodes = self.graph.nodes();
        extra
            .iter()
            .filter_map(|name| {
                let conv = nodes.iter().find(|n| name.strip_suffix(".bias") == Some(n.name.as_str()))?;
                let mut readers = nodes.iter().filter(|n| n.inputs.contains(&conv.output));
                let (bn, None) = (readers.next()?, readers.next()) else { return None };
                (conv.op.kind() == "conv" && bn.op.kind() == "batchnorm" && conv.output != self.graph.output())
                    .then(|| (bn.name.clone(), name.clone()))
            })
            .collect()
    }

    /// Loads parameters saved by [`Trainer::save`] for the same model. Velocities are reset.
    /// Nothing is changed unless every tensor is present with the right shape and the file holds
    /// no parameter (f32 tensor) that the model lacks, with one exception: the bias of a
    /// convolution that only a batch norm reads, as `cnn` and `resnet` checkpoints have from
    /// before their convolutions dropped it. Batch norm subtracts each channel's batch mean, the
    /// bias included, so the bias never changes a training step's output, and its running mean
    /// holds it: the bias is folded in (`running_mean − bias`, in every Bit-Mixer variant of the
    /// batch norm too), which leaves the evaluated output the same but for rounding.
    pub fn load(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let err = |d: String| Error::Data { path: path.display().to_string(), detail: d };
        let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| err(format!("not a safetensors file: {e}")))?;
        let slots = self.slots();
        let mut extra: Vec<String> = st
            .tensors()
            .into_iter()
            .filter(|(name, t)| t.dtype() == safetensors::Dtype::F32 && !slots.iter().any(|s| &s.0 == name))
            .map(|(name, _)| name)
            .collect();
        let folds = self.conv_bias_folds(&extra);
        extra.retain(|name| !folds.iter().any(|f| &f.1 == name));
        if !extra.is_empty() {
            extra.sort();
            return Err(err(format!("parameters this model does not have: {}", extra.join(", "))));
        }
        let mut staged = Vec::new();
        for (name, shape, buf, off) in slots {
            let t = st.tensor(&name).map_err(|_| err(format!("missing tensor {name}")))?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(err(format!("{name}: expected f32 {shape:?}, found {:?} {:?}", t.dtype(), t.shape())));
            }
            let mut values = bytemuck::pod_collect_to_vec::<u8, f32>(t.data());
            let fold = folds.iter().find(|(bn, _)| {
                name.strip_prefix(bn.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| r.ends_with("running_mean"))
            });
            if let Some((_, bias_name)) = fold {
                // (An f32 tensor: `extra` holds no other.)
                let bt = st.tensor(bias_name).map_err(|e| err(format!("{bias_name}: {e}")))?;
                if bt.shape() != [values.len()] {
                    return Err(err(format!(
                        "{bias_name}: expected f32 [{}] (to fold into {name}), found {:?}",
                        values.len(),
                        bt.shape()
                    )));
                }
                for (m, b) in values.iter_mut().zip(bytemuck::pod_collect_to_vec::<u8, f32>(bt.data())) {
                    *m -= b;
                }
            }
            staged.push((buf.clone(), off, values));
        }
        let mut tables = Vec::new();
        for (name, s, have) in self.level_slots() {
            let t = st.tensor(&name).map_err(|_| err(format!("missing tensor {name}")))?;
            let want = [have.levels.len()];
            if t.dtype() != safetensors::Dtype::U32 || t.shape() != want {
                return Err(err(format!("{name}: expected u32 {want:?}, found {:?} {:?}", t.dtype(), t.shape())));
            }
            let table =
                LevelTable::with_sign(have.bits, have.signed, bytemuck::pod_collect_to_vec::<u8, u32>(t.data()))
                    .map_err(|e| err(format!("{name}: {e}")))?;
            tables.push((s, table));
        }
        for (buf, off, data) in staged {
            buf.write_at(&self.gpu, off, &data)?;
        }
        for (s, table) in tables {
            if let Some(at) = self.levels[s].as_mut().and_then(|l| l.activation.as_mut()) {
                at.1.write(&self.gpu, &table.levels)?;
                at.0 = table;
            }
            if let Some(l) = &self.levels[s] {
                if let (Some(both), Some(g), Some(a)) = (&l.both, &l.grad_cols, &l.activation) {
                    let v: Vec<u32> = g.0.levels.iter().chain(&a.0.levels).copied().collect();
                    both.write(&self.gpu, &v)?;
                }
            }
        }
        for n in &self.nodes {
            for p in n.params.iter().chain(n.variants.iter().flat_map(|v| v.1.iter())) {
                if let Some(v) = &p.velocity {
                    v.write(&self.gpu, &vec![0.0; v.len()])?;
                }
            }
        }
        Ok(())
    }

    /// Trains one epoch over `data` in the seeded order of `epoch` (incomplete last batch
    /// dropped), with the cosine schedule over `total_steps`; `on_step(step_in_epoch, stats)`
    /// is called after every step (with the last loss read, see [`Trainer::set_read_every`]).
    /// Returns `(mean loss, train accuracy)` over every step of the epoch (all read by its end).
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
        let (mut loss, mut right, mut steps) = (0f64, 0u64, 0usize);
        let mut add = |records: &[StepRecord]| {
            for r in records {
                loss += r.loss;
                right += r.correct as u64;
                steps += 1;
            }
        };
        for (i, idx) in order.chunks_exact(b).enumerate() {
            let (x, labels) = data.gather(idx)?;
            let lr = cosine_lr(self.opt.lr, self.step as usize, total_steps);
            let (s, records) = self.run_step(&x, Target::Labels(&labels), lr, true)?;
            add(&records);
            on_step(i, s);
        }
        add(&self.read_pending()?);
        Ok((loss / steps.max(1) as f64, right as f64 / (steps * b).max(1) as f64))
    }
}

/// A rotation runs along a weight gradient's K, the batch times the layer's output positions:
/// each GEMM layer that rotates needs that many rows to be a multiple of its block.
fn check_rotations(graph: &Graph, site_nodes: &[usize], schemes: &[LayerScheme], batch: usize) -> Result<()> {
    for (site, ls) in schemes.iter().enumerate() {
        let out = graph.value(graph.nodes()[site_nodes[site]].output).shape;
        let rows = batch * out.0 * out.1;
        if let Some(b) = ls.rotate.filter(|&b| !rows.is_multiple_of(b as usize)) {
            return Err(Error::InvalidArgument(format!(
                "GEMM layer {site}: its weight gradient sums over {rows} rows (batch {batch}), not a multiple of the rotation block {b}"
            )));
        }
    }
    Ok(())
}

/// An op's error with the node's name in front.
fn node_error(node: &str, e: Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{node}: {m}")),
        other => other,
    }
}
