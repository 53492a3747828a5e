//! Launchers: one struct per kernel, built once from a [`Gpu`] (pipelines and explicit layouts),
//! whose `encode` records work into the caller's encoder and never submits.

pub mod absmax;
pub mod adam;
pub mod add;
pub mod avgpool;
pub mod batchnorm;
pub mod batchnorm_commit;
pub mod col_sum;
pub mod copy;
pub mod dequantize;
pub mod embedding;
pub mod error_feedback;
pub mod finite;
pub mod format_check;
pub mod gelu;
pub mod gemm;
pub mod gemm_f32;
pub mod gemm_f32_col2im;
pub mod gemm_f32_lanes;
pub mod gemm_f32_naive;
pub mod gemm_fp8;
pub mod gemm_fp8_col2im;
pub mod gemm_fp8_coop;
pub mod gemm_fp8_lanes;
pub mod gemm_int;
pub mod gemm_int_col2im;
pub mod gemm_int_coop;
pub mod gemm_int_lanes;
pub mod gemm_levels;
pub mod gemm_levels_col2im;
pub mod gemm_levels_lanes;
pub mod hadamard;
pub mod hadamard_quantize_transpose;
pub mod heads;
pub mod im2col;
pub mod im2col_quantize;
pub mod im2col_quantize_transpose;
pub mod layernorm;
pub mod maxpool;
pub mod mse;
pub mod peak;
pub mod peak_coop;
pub mod quantize;
pub mod quantize_both;
pub mod quantize_fused;
pub mod quantize_transpose;
pub mod quantize_transpose_fused;
pub mod relu_backward;
pub mod sgd;
pub mod softmax;
pub mod softmax_xent;
pub mod tinyscript;
pub mod transpose;

use crate::scheme::{QuantLayout, Rounding};
use crate::{shaders, Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// Threads per workgroup of every lowbit kernel.
pub(crate) const WG: u32 = 256;

/// How an elementwise kernel's threads share the vec4s of its buffers (same results either way).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum VecPath {
    /// A vec4 per thread: what a GPU runs well.
    PerThread,
    /// Teams of [`TEAM`] consecutive threads, each team a run of [`TEAM_RUN`] vec4s, its threads
    /// on consecutive vec4s (thread k of a team takes k, k + 8, ...; `shaders/common/teams.wgsl`,
    /// whose constants the launchers set from these). On lavapipe, which runs 8 threads at a time
    /// in SIMD lanes, a team is one such batch: `copy` ran at about twice the rate of a vec4 per
    /// thread over 16M values (`kernel_report`), `add` 1.6–1.8× (see its docs).
    Teams,
}

/// Threads in a team of a [`VecPath::Teams`] entry (the shaders' `TEAM` pipeline constant).
pub const TEAM: u32 = 8;
/// Vec4s a team of a [`VecPath::Teams`] entry walks (the shaders' `RUN` pipeline constant).
pub const TEAM_RUN: u32 = 256;
/// The pipeline constants of an entry in `shaders/common/teams.wgsl`'s layout.
pub(crate) const TEAM_CONSTANTS: &[(&str, f64)] = &[("TEAM", TEAM as f64), ("RUN", TEAM_RUN as f64)];

impl VecPath {
    /// `Teams` on a CPU adapter, `PerThread` elsewhere.
    pub fn for_adapter(gpu: &Gpu) -> Self {
        if gpu.cpu_layouts() {
            VecPath::Teams
        } else {
            VecPath::PerThread
        }
    }

    /// Workgroups (of 256 threads) that cover `n_vec4` vec4s on this path.
    pub fn workgroups(self, n_vec4: u32) -> u32 {
        match self {
            VecPath::PerThread => n_vec4.div_ceil(WG),
            VecPath::Teams => n_vec4.div_ceil(TEAM_RUN * (WG / TEAM)),
        }
    }

    /// The launch of an elementwise kernel over `n` values: its vec4 entry `v4` on this path's
    /// grid where `n` is a multiple of 4, else its `scalar` entry, a thread per value.
    pub(crate) fn elementwise<'a>(
        self,
        n: u32,
        v4: &'a wgpu::ComputePipeline,
        scalar: &'a wgpu::ComputePipeline,
    ) -> (&'a wgpu::ComputePipeline, u32) {
        if n.is_multiple_of(4) {
            (v4, self.workgroups(n / 4))
        } else {
            (scalar, n.div_ceil(WG))
        }
    }

    /// The entry point of a kernel with both entries (`main_v4`-like `per_thread`, and
    /// `main_teams`) and the pipeline constants it takes on this path.
    pub(crate) fn entry(self, per_thread: &'static str) -> (&'static str, &'static [(&'static str, f64)]) {
        match self {
            VecPath::PerThread => (per_thread, &[]),
            VecPath::Teams => ("main_teams", TEAM_CONSTANTS),
        }
    }
}
/// What `cell` holds, built by `build` on first use (two threads may both build it; the first
/// one stored is kept): the kernels and pipelines that only some launches need.
pub(crate) fn built<T>(cell: &std::sync::OnceLock<T>, build: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(k) = cell.get() {
        return Ok(k);
    }
    let k = build()?;
    Ok(cell.get_or_init(|| k))
}

/// Row lanes per column in the two-level column reductions (`col_sum`, `batchnorm`).
pub(crate) const REDUCE_LANES: usize = 8;
/// Columns per workgroup in those reductions.
pub(crate) const REDUCE_COLS: usize = 32;

/// How the two-level column reductions cut `rows`: `(chunk_rows, chunks)`. At least 64 rows per
/// chunk (a multiple of the lanes), at most 256 chunks, so the second level stays short.
pub(crate) fn reduce_chunks(rows: usize) -> (usize, usize) {
    let chunk_rows = rows.div_ceil(256).max(64).next_multiple_of(REDUCE_LANES);
    (chunk_rows, rows.div_ceil(chunk_rows).max(1))
}

/// Workgroups per dispatch dimension (WebGPU's guaranteed minimum of the limit).
pub(crate) const MAX_DIM: u32 = 65535;

/// Uniform block of the quantizer family, mirrored field for field by `QuantParams` in
/// `shaders/common/layout.wgsl` (whose header documents the fields).
#[allow(missing_docs)]
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, Pod, Zeroable)]
pub(crate) struct QuantParams {
    pub rows: u32,
    pub cols: u32,
    pub words_per_row: u32,
    pub per_word: u32,
    pub row_mul: u32,
    pub block_div: u32,
    pub seg: u32,
    pub tiles_per_row: u32,
    pub total_tiles: u32,
    /// Stochastic draws use `rng::key(seed, stream + StepState::stream_base)`.
    pub seed: u32,
    pub stochastic: u32,
    pub transposed: u32,
    pub n_groups: u32,
    /// Kernel-specific (absmax's transposed entry: chunk length and count).
    pub aux: [u32; 2],
    pub stream: u32,
    /// The group maxima have one more slot, `amax[n_groups]`, for the tensor's maximum (NVFP4's
    /// tensor scale): absmax reduces into it and scale reads it.
    pub tensor_slot: u32,
    /// The one-pass quantizers read `x[i]` as 0 unless `mask[i] > 0` (ReLU's backward).
    pub masked: u32,
    /// The one-pass quantizers write this many stochastic samples, stacked (SMP; 1 = one).
    pub samples: u32,
    /// The transposing quantizers: 0, or x is a stack of `[cols, batch_rows]` matrices whose
    /// transposes are L's rows in blocks of `batch_rows`.
    pub batch_rows: u32,
    /// The transposing quantizers' threads of four rows of L (`common/rows_t.wgsl`'s
    /// `row_quads` and `block_quads`): how many such quads one thread takes
    /// (`quantize_transpose_fused::quads_per_thread`).
    pub quads: u32,
    pub pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<QuantParams>() == 96);

impl QuantParams {
    /// These params tiled for the transposing quantizers' `row_tile_thread`
    /// (`common/layout.wgsl`): tiles of `seg` consecutive rows (a power of two, at most [`WG`])
    /// times `WG / seg` consecutive pieces, `pieces` a row; `None` where the tiles overflow u32.
    pub fn with_row_tiles(mut self, seg: u32, pieces: u32) -> Option<Self> {
        self.seg = seg;
        self.tiles_per_row = self.rows.div_ceil(seg);
        self.total_tiles = self.tiles_per_row.checked_mul(pieces.div_ceil(WG / seg))?;
        Some(self)
    }

    /// Params for `layout`, tiled as a row-major word grid (256 words of one row per workgroup).
    pub fn row_tiles(l: &QuantLayout, rounding: Rounding) -> Self {
        let (seed, stream, stochastic) = rounding.seed_stream();
        let tiles_per_row = l.words_per_row.div_ceil(WG);
        QuantParams {
            rows: l.rows,
            cols: l.cols,
            words_per_row: l.words_per_row,
            per_word: l.per_word(),
            row_mul: l.row_mul,
            block_div: l.block_div,
            seg: l.seg(),
            tiles_per_row,
            total_tiles: tiles_per_row * l.rows,
            seed,
            stochastic: stochastic as u32,
            transposed: 0,
            n_groups: l.n_groups,
            aux: [0; 2],
            stream,
            tensor_slot: l.format.needs_tensor_amax() as u32,
            masked: 0,
            samples: 1,
            batch_rows: 0,
            quads: 1,
            pad: [0; 3],
        }
    }
}

/// Threads per row of the kernels that give a short row a team of threads on a GPU's layouts
/// (`quantize_fused`'s `main_row`, `im2col_quantize`'s `main_rows`) for rows of `words` code
/// words: the words rounded up to a power of two, at most a workgroup's 256 threads (a longer
/// row's threads take several words each), so 256 / team rows share a workgroup. (Also
/// `quantize_transpose`'s rows of L a tile, for L's rows.)
pub fn row_team(words: u32) -> u32 {
    words.max(1).next_power_of_two().min(WG)
}

/// Threads per row of the team kernels whose threads take a row's words `lane, lane + team, ..`
/// (`im2col_quantize`'s `main_rows` and `main_rows_v4`, `quantize_fused`'s `main_row`) for `rows`
/// rows of `words` code words: of the powers of two up to [`row_team`]`(words)`, the one that
/// leaves the fewest threads idle (a team of `t` runs `t · ⌈words / t⌉` word slots; the largest
/// such team), at most [`TEAM_WORDS`] words a thread; then doubled, up to `row_team`'s, while the
/// rows' teams come to fewer than `fill` threads (the kernels' [`Gpu::fill`] unless set), so
/// that a tensor of few rows still spreads over a GPU. A 3×3 convolution of `c` channels has rows
/// of 9·c/4 int8 words: teams of the power of two in c/4 (4 threads of 9 words for 16 channels)
/// where `row_team` gives 64 threads, 28 of them idle; rows whose words are a power of two keep
/// `row_team`'s. (A row's maximum is the same in any grouping and each word is packed alone, so
/// the team changes no bit.)
pub fn balanced_team(words: u32, rows: u32, fill: u32) -> u32 {
    let cap = row_team(words);
    let slots = |t: u32| t * words.max(1).div_ceil(t);
    let mut team = (0..=cap.trailing_zeros())
        .map(|k| 1u32 << k)
        .filter(|&t| t == cap || words.div_ceil(t) <= TEAM_WORDS)
        .min_by_key(|&t| (slots(t), std::cmp::Reverse(t)))
        .unwrap_or(cap);
    while team < cap && (rows as u64) * (team as u64) < fill as u64 {
        team *= 2;
    }
    team
}

/// The most words a thread of [`balanced_team`]'s teams takes, but where a row has more than a
/// workgroup's threads can take so.
pub const TEAM_WORDS: u32 = 16;

/// The default of [`Gpu::fill`], the threads a launch should bring to keep a device busy: below
/// it the team kernels give a tensor's rows larger teams ([`balanced_team`]'s `fill`, unless a
/// kernel's `with_team_fill` sets another) and the integer GEMMs' exact splits cut more splits
/// ([`gemm::fill_split_plan`]). 2¹⁷, about half of what an NVIDIA H200 holds at once (132
/// multiprocessors of 2,048 threads), so that its loads keep the memory busy; a smaller GPU is
/// filled sooner. A guess, not yet measured on a GPU (`.ci/gpu-measure` times the CNN's and
/// `resnet20`'s quantized steps with fills of 0, this and `max` on the GPU it runs on).
pub const TEAM_FILL: u32 = 1 << 17;

/// Splits `n` workgroups over a 2-D grid within the per-dimension limit; shaders flatten
/// `wg.x + wg.y * num_workgroups.x` and guard the tail.
pub(crate) fn grid(n: u32) -> Result<(u32, u32)> {
    if n == 0 {
        return Ok((0, 0));
    }
    let x = n.min(MAX_DIM);
    let y = n.div_ceil(x);
    if y > MAX_DIM {
        return Err(Error::InvalidArgument(format!("{n} workgroups exceed one dispatch ({MAX_DIM}^2)")));
    }
    Ok((x, y))
}

/// Workgroups of `per_workgroup` threads for `threads` threads (a thread per group or row), or
/// an error naming `op` past a launch's count.
pub(crate) fn thread_workgroups(op: &str, threads: usize, per_workgroup: u32) -> Result<u32> {
    u32::try_from(threads.div_ceil(per_workgroup as usize))
        .map_err(|_| Error::InvalidArgument(format!("{op}: {threads} threads exceed a launch")))
}

/// What a binding is.
#[derive(Copy, Clone)]
pub(crate) enum Slot {
    /// A uniform block.
    Uniform,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    Write,
}

/// A bind group layout of `slots` (binding i = `slots[i]`) and its pipeline layout.
pub(crate) fn layouts(gpu: &Gpu, name: &str, slots: &[Slot]) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let entries: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match s {
                    Slot::Uniform => wgpu::BufferBindingType::Uniform,
                    Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::Write => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let bgl =
        gpu.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(name), entries: &entries });
    let pl = gpu.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    (bgl, pl)
}

/// Kernel `name`'s pipelines in one layout, built on first use and kept by a key that fixes the
/// entry and override constants (the TinyScript lanes kernels, one pipeline per code width).
pub(crate) struct LazyPipelines<K> {
    name: &'static str,
    layout: wgpu::PipelineLayout,
    built: std::sync::Mutex<std::collections::HashMap<K, wgpu::ComputePipeline>>,
}

impl<K: Copy + Eq + std::hash::Hash> LazyPipelines<K> {
    pub(crate) fn new(name: &'static str, layout: wgpu::PipelineLayout) -> Self {
        LazyPipelines { name, layout, built: Default::default() }
    }

    /// The pipeline of `key`: built from `entry` and `constants` the first time it is asked for.
    pub(crate) fn get(
        &self,
        gpu: &Gpu,
        key: K,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = built.get(&key) {
            return Ok(p.clone());
        }
        let p = pipeline(gpu, self.name, entry, &self.layout, constants)?;
        built.insert(key, p.clone());
        Ok(p)
    }
}

/// Builds kernel `name`'s pipeline for `entry` with override constants.
pub(crate) fn pipeline(
    gpu: &Gpu,
    name: &str,
    entry: &str,
    layout: &wgpu::PipelineLayout,
    constants: &[(&str, f64)],
) -> Result<wgpu::ComputePipeline> {
    let src =
        shaders::source(name).ok_or_else(|| Error::Shader { name: name.into(), message: "no such shader".into() })?;
    if !shaders::runs_unbounded_loops(name) {
        return gpu.compute_pipeline(name, &src, entry, layout, constants);
    }
    let mut checks = wgpu::ShaderRuntimeChecks::checked();
    checks.bounds_checks = !shaders::runs_unchecked(name);
    checks.force_loop_bounding = false;
    // SAFETY: the kernels in `shaders::UNCHECKED` keep every index in range and every loop finite,
    // those in `shaders::LOOPS_UNBOUNDED` every loop finite (each shader's header says why); the
    // other checks stay on.
    unsafe { gpu.compute_pipeline_with(name, &src, entry, layout, constants, checks) }
}

/// A uniform buffer holding `value`.
pub(crate) fn uniform<T: Pod>(gpu: &Gpu, name: &str, value: &T) -> wgpu::Buffer {
    gpu.create_buffer_init(name, bytemuck::bytes_of(value), wgpu::BufferUsages::UNIFORM)
}

/// The pipeline and workgroups of a row kernel's launch over `rows` rows (`layernorm`,
/// `softmax`, `softmax_xent`): a workgroup per row where the kernel built that entry (a GPU's
/// layout), else a thread per row, [`WG`] to a workgroup, through `vec4` where given (rows of
/// multiples of 4 values).
pub(crate) fn row_launch<'a>(
    per_row_workgroup: Option<&'a wgpu::ComputePipeline>,
    vec4: Option<&'a wgpu::ComputePipeline>,
    scalar: &'a wgpu::ComputePipeline,
    rows: usize,
) -> (&'a wgpu::ComputePipeline, u32) {
    match per_row_workgroup {
        Some(rows_pipeline) => (rows_pipeline, rows as u32),
        None => (vec4.unwrap_or(scalar), (rows as u32).div_ceil(WG)),
    }
}

/// Records a dispatch of `workgroups` (flattened onto a 2-D grid) into `rec`, with bind group 0
/// binding `buffers` in `layout`'s binding order.
pub(crate) fn dispatch(
    gpu: &Gpu,
    rec: &mut impl crate::Record,
    name: &str,
    pipeline: &wgpu::ComputePipeline,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
    workgroups: u32,
) -> Result<()> {
    let (x, y) = grid(workgroups)?;
    if x == 0 {
        return Ok(());
    }
    rec.dispatch(gpu, &crate::record::Dispatch { name, pipeline, layout, buffers, x, y });
    Ok(())
}

/// Fails unless `rounding` is stochastic: what a launch writing SMP's stacked samples needs (with
/// nearest rounding every sample would be the same).
/// `Ok` where layout `l` is in the format kernel `op` was built for; a clear error otherwise.
pub(crate) fn check_built_for(op: &str, built: crate::format::Format, l: &crate::scheme::QuantLayout) -> Result<()> {
    if l.format != built {
        return Err(Error::InvalidArgument(format!("{op}: kernel built for {built}, layout is {}", l.format)));
    }
    Ok(())
}

/// `samples` stacked SMP samples of a launch: at least one, several only with stochastic rounding.
pub(crate) fn check_samples(op: &str, rounding: crate::scheme::Rounding, samples: u32) -> Result<()> {
    if samples == 0 {
        return Err(Error::InvalidArgument(format!("{op}: 0 samples; samples must be at least 1")));
    }
    if samples > 1 {
        check_samples_rounding(op, rounding)?;
    }
    Ok(())
}

pub(crate) fn check_samples_rounding(op: &str, rounding: crate::scheme::Rounding) -> Result<()> {
    match rounding {
        crate::scheme::Rounding::Stochastic { .. } => Ok(()),
        _ => Err(Error::InvalidArgument(format!(
            "{op}: SMP samples need stochastic rounding (nearest gives identical samples)"
        ))),
    }
}

/// Fails unless `got == want` elements.
pub(crate) fn check_len(op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::Shape { op, detail: format!("{what} has {got} elements, expected {want}") });
    }
    Ok(())
}

/// How many blocks of `rows` values a ring output of `len` values holds (at least one, whole).
pub(crate) fn ring_blocks(op: &'static str, what: &str, len: usize, rows: usize) -> Result<usize> {
    if rows == 0 || len == 0 || !len.is_multiple_of(rows) || len / rows > u32::MAX as usize {
        return Err(Error::Shape {
            op,
            detail: format!("{what} has {len} elements: not a whole number of {rows}-row blocks"),
        });
    }
    Ok(len / rows)
}

/// The `FORMAT` override constant.
pub(crate) fn format_constant(f: crate::format::Format) -> [(&'static str, f64); 1] {
    [("FORMAT", f.id() as f64)]
}

/// One tensor of an optimizer launch ([`sgd::Sgd::encode_many`], [`adam::Adam::encode_many`]):
/// the fp32 master weights, the optimizer's state (SGD: the velocity, `len(w)` values; AdamW: the
/// moments `[m, v]`, `2·len(w)`), the gradient, and the tensor's own weight decay.
#[derive(Copy, Clone)]
pub struct OptimTensor<'a> {
    /// The weights, updated in place.
    pub w: &'a crate::GpuBuffer<f32>,
    /// The optimizer state, updated in place.
    pub state: &'a crate::GpuBuffer<f32>,
    /// The gradient (read).
    pub g: &'a crate::GpuBuffer<f32>,
    /// Weight decay λ of this tensor (0 for those that take none, such as biases).
    pub weight_decay: f32,
}

/// Tensors one multi-tensor optimizer dispatch updates (the shaders' slots).
pub const OPTIM_SLOTS: usize = 8;

/// Storage bindings a stage needs for the multi-tensor entries: three per slot and the status.
const OPTIM_STORAGE: u32 = 3 * OPTIM_SLOTS as u32 + 1;

/// Uniform block of the multi-tensor optimizers (`OptimParams` in `shaders/common/optim.wgsl`):
/// per slot its first workgroup, length and weight decay, then the kernel's own four values.
#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct OptimParams {
    start: [u32; OPTIM_SLOTS],
    len: [u32; OPTIM_SLOTS],
    weight_decay: [f32; OPTIM_SLOTS],
    hyper: [f32; 4],
}
const _: () = assert!(std::mem::size_of::<OptimParams>() == 112);

/// The launch machinery `sgd` and `adam` share: a model's parameter tensors updated in as few
/// dispatches as the adapter's bindings allow (8 a dispatch; one each on an adapter with fewer
/// than 25 storage bindings a stage), through vec4 views where asked and a tensor's length is a
/// multiple of 4.
pub(crate) struct OptimLaunch {
    name: &'static str,
    /// Values of state per value of w.
    state_per_value: usize,
    bgl: wgpu::BindGroupLayout,
    scalar: wgpu::ComputePipeline,
    v4: Option<wgpu::ComputePipeline>,
    /// Whether the pipelines are the 8-slot entries (else slot 0's).
    multi: bool,
    /// Bound to unused slots: one read-write (w, state), one read (g).
    dummy_rw: crate::GpuBuffer<f32>,
    dummy_r: crate::GpuBuffer<f32>,
}

impl OptimLaunch {
    /// Whether `gpu` can bind the multi-tensor entries' storage buffers.
    pub fn multi_fits(gpu: &Gpu) -> bool {
        gpu.limits().max_storage_buffers_per_shader_stage >= OPTIM_STORAGE
    }

    /// Builds kernel `name`'s pipelines: the 8-slot entries if `multi` (an error where the adapter
    /// cannot bind them), else slot 0's; the vec4 entry too if `vec4`.
    pub fn new(gpu: &Gpu, name: &'static str, state_per_value: usize, vec4: bool, multi: bool) -> Result<Self> {
        if multi && !Self::multi_fits(gpu) {
            return Err(Error::InvalidArgument(format!(
                "{name}: the multi-tensor entry needs {OPTIM_STORAGE} storage buffers a stage; this adapter binds {}",
                gpu.limits().max_storage_buffers_per_shader_stage
            )));
        }
        let mut slots = vec![Slot::Uniform, Slot::Uniform, Slot::Read];
        for _ in 0..if multi { OPTIM_SLOTS } else { 1 } {
            slots.extend([Slot::Write, Slot::Write, Slot::Read]);
        }
        let (bgl, pl) = layouts(gpu, name, &slots);
        let (scalar, wide) = if multi { ("main_multi", "main_multi_v4") } else { ("main", "main_v4") };
        Ok(OptimLaunch {
            name,
            state_per_value,
            scalar: pipeline(gpu, name, scalar, &pl, &[])?,
            // The 8-slot vec4 entry walks each slot in teams (its pipeline constants).
            v4: if vec4 {
                Some(pipeline(gpu, name, wide, &pl, if multi { TEAM_CONSTANTS } else { &[] })?)
            } else {
                None
            },
            multi,
            bgl,
            dummy_rw: crate::GpuBuffer::zeros(gpu, "optimizer dummy", 4)?,
            dummy_r: crate::GpuBuffer::zeros(gpu, "optimizer dummy", 4)?,
        })
    }

    /// The dispatches of `lens`, as (whether through the vec4 entry, indices into `lens`).
    fn groups(&self, lens: &[usize]) -> Vec<(bool, Vec<usize>)> {
        let per = if self.multi { OPTIM_SLOTS } else { 1 };
        let wide = |n: usize| self.v4.is_some() && n.is_multiple_of(4);
        let mut out = Vec::new();
        for v4 in [true, false] {
            let idx: Vec<usize> = (0..lens.len()).filter(|&i| wide(lens[i]) == v4).collect();
            out.extend(idx.chunks(per).map(|c| (v4, c.to_vec())));
        }
        out
    }

    /// How many dispatches [`Self::encode`] records for tensors of lengths `lens`.
    pub fn dispatches(&self, lens: &[usize]) -> usize {
        self.groups(lens).len()
    }

    /// Records the update of `tensors` with the kernel's four hyper-parameters `hyper`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tensors: &[OptimTensor],
        hyper: [f32; 4],
    ) -> Result<()> {
        let name = self.name;
        if tensors.is_empty() {
            return Err(Error::Empty(name));
        }
        // (A list: wgpu's buffers are hashable but interior-mutable; models hold tens of tensors.)
        let mut written: Vec<&wgpu::Buffer> = Vec::with_capacity(2 * tensors.len());
        for (j, t) in tensors.iter().enumerate() {
            let n = t.w.len();
            let what = |s: &str| format!("tensor {j}'s {s}");
            check_len(name, &what("state"), t.state.len(), n.saturating_mul(self.state_per_value))?;
            check_len(name, &what("gradient"), t.g.len(), n)?;
            if n.saturating_mul(self.state_per_value) > u32::MAX as usize {
                return Err(Error::InvalidArgument(format!("{name}: tensor {j} has {n} values, past u32 indexing")));
            }
            if !t.weight_decay.is_finite() {
                return Err(Error::InvalidArgument(format!("{name}: tensor {j}'s weight decay is {}", t.weight_decay)));
            }
            // A buffer written twice in one update (or written and read as a gradient) would make
            // the result depend on the order of the threads.
            let (w, state) = (t.w.buffer(), t.state.buffer());
            if w == state || written.contains(&w) || written.contains(&state) {
                return Err(Error::InvalidArgument(format!(
                    "{name}: tensor {j}'s weights or state share a buffer with another tensor's or its own"
                )));
            }
            written.extend([w, state]);
        }
        if let Some(j) = tensors.iter().position(|t| written.contains(&t.g.buffer())) {
            return Err(Error::InvalidArgument(format!(
                "{name}: tensor {j}'s gradient is a buffer this update writes"
            )));
        }
        let lens: Vec<usize> = tensors.iter().map(|t| t.w.len()).collect();
        let (step, status) = (enc.step_state(gpu).clone(), enc.status(gpu).clone());
        for (v4, idx) in self.groups(&lens) {
            let mut p = OptimParams {
                start: [u32::MAX; OPTIM_SLOTS],
                len: [0; OPTIM_SLOTS],
                weight_decay: [0.0; OPTIM_SLOTS],
                hyper,
            };
            // Threads per slot: a value each; a vec4 each (slot 0's vec4 entry); the 8-slot vec4
            // entry's teams, RUN vec4s a team.
            let units = idx.iter().map(|&j| match (v4, self.multi) {
                (false, _) => tensors[j].w.len(),
                (true, false) => tensors[j].w.len() / 4,
                (true, true) => VecPath::Teams.workgroups((tensors[j].w.len() / 4) as u32) as usize * WG as usize,
            });
            let (start, total) = slot_starts(name, units)?;
            p.start = start;
            let mut bufs: Vec<&wgpu::Buffer> = Vec::with_capacity(3 + 3 * OPTIM_SLOTS);
            for (s, &j) in idx.iter().enumerate() {
                let t = &tensors[j];
                p.len[s] = t.w.len() as u32;
                p.weight_decay[s] = t.weight_decay;
                bufs.extend([t.w.buffer(), t.state.buffer(), t.g.buffer()]);
            }
            if self.multi {
                for _ in idx.len()..OPTIM_SLOTS {
                    bufs.extend([self.dummy_rw.buffer(), self.dummy_rw.buffer(), self.dummy_r.buffer()]);
                }
            }
            let params = uniform(gpu, name, &p);
            let mut all: Vec<&wgpu::Buffer> = vec![&params, &step, &status];
            all.extend(bufs);
            let pipe = if v4 { self.v4.as_ref().expect("v4 groups only with the v4 entry") } else { &self.scalar };
            dispatch(gpu, enc, name, pipe, &self.bgl, &all, total)?;
        }
        Ok(())
    }
}

/// The grid of a multi-tensor dispatch (`shaders/common/slots.wgsl`; the optimizers and
/// `batchnorm_commit`): for slots of `units[s]` threads' work each, every slot's first workgroup
/// (unused slots 0xffffffff) and the workgroups in all. An error where the grid's tail (under
/// MAX_DIM workgroups past the last) would number its values past u32.
pub(crate) fn slot_starts(name: &str, units: impl IntoIterator<Item = usize>) -> Result<([u32; OPTIM_SLOTS], u32)> {
    let mut start = [u32::MAX; OPTIM_SLOTS];
    let mut total = 0u64;
    for (s, n) in units.into_iter().enumerate() {
        start[s] = total as u32;
        total += (n as u64).div_ceil(WG as u64);
    }
    if (total + MAX_DIM as u64) * WG as u64 > u32::MAX as u64 {
        return Err(Error::InvalidArgument(format!(
            "{name}: {total} workgroups of values in one dispatch exceed u32 indexing"
        )));
    }
    Ok((start, total as u32))
}
