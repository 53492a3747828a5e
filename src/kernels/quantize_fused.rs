//! `quantize_fused`: the one-pass quantizer for per-block and per-row scales.
//!
//! Math: identical to `absmax → quantize` (reference:
//! [`crate::reference::quantize_fused`]), but each workgroup owns whole scale groups, so the
//! reduction, the scale and the packing happen in one launch and x is read from memory once.
//! Layout: entry `main` for blocks of at most 256 words: one thread per word, segment tree
//! reduction, the segment leader computes `(s, inv)` into workgroup memory; on a CPU adapter
//! entry `main_group` instead, one thread per group, without barriers, and `main_row_short` for
//! every per-row layout ([`ReducePath`]); both as `_v4` entries that read x as vec4s where the
//! format packs a multiple of 4 codes per word and rows hold a multiple of 4 values (on lavapipe
//! each load runs lane by lane, so a vec4 costs about what one f32 does). Entry `main_row`: a
//! team of threads per row, looping over the row twice (the second read hits the cache for the
//! row sizes of training): on the tree path a power of two that leaves few threads idle
//! ([`super::balanced_team`]: short rows share a workgroup, neighbouring threads read neighbouring
//! words), on the per-thread path a workgroup per row, for rows longer than
//! [`SHORT_ROW_WORDS`] words in tensors of fewer than [`crate::quant::FUSED_MIN_ROWS`] rows (the
//! others there take `main_row_short`, one thread per row); on both paths as `main_row_v4`
//! through vec4s where rows and codes per word come in fours (a load of 16 bytes where
//! `main_row` makes four of 4). NVFP4, whose block scales need the
//! tensor's maximum, takes it from a buffer an `absmax` launch filled
//! ([`QuantizeFused::encode_with_tensor_amax`]): two launches instead of the chain's three; for
//! a tensor small enough for one workgroup (a layer's weight), entry `main_whole` reduces the
//! maximum itself and quantizes in one launch
//! ([`QuantizeFused::encode_reducing_tensor_amax`]), and entry `main_whole_both` also quantizes
//! xᵀ with that maximum in the same launch ([`QuantizeFused::encode_whole_both`]: a weight's W
//! for the forward and Wᵀ for the input gradient; the other formats' both orientations are
//! [`super::quantize_both`]'s); entry `main_group_both` quantizes both orientations of a larger
//! tensor given its maximum ([`QuantizeFused::encode_both_with_tensor_amax`]).
//! [`QuantizeFused::encode_masked`] reads x as 0 wherever a mask is not above 0 (ReLU's backward
//! inside the quantizer);
//! [`QuantizeFused::encode_samples`] writes SMP's stacked samples in the one launch. Bindings: 0
//! `QuantParams`, 1 x (read f32), 2 codes (read-write u32), 3 scales (read-write f32), 4 step
//! state, 5 tensor maximum (read-write u32, NVFP4: written by `main_whole` alone), 6 mask (read f32);
//! `main_whole_both` and `main_group_both` also 7 xᵀ's codes, 8 its scales (read-write), 9 its
//! layout's `QuantParams`.

use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// Rows of at most this many words are quantized one thread per row on the per-thread path
/// ([`ReducePath::PerThread`]).
pub const SHORT_ROW_WORDS: u32 = 16;

/// How scale groups are reduced (same bits either way).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReducePath {
    /// Threads share a group through a tree in workgroup memory: per block a thread per packed
    /// word (entry `main`), per row a team of threads per row (`main_row`; the row's words
    /// rounded up to a power of two, at most a workgroup). What a GPU runs well. (Before, rows of
    /// at most [`SHORT_ROW_WORDS`] words took a thread each here too: the GPT's 1,024 rows of
    /// 64 values filled 4 workgroups.)
    Tree,
    /// A thread per group, no workgroup memory or barriers (entries `main_group`,
    /// `main_row_short` for per-row layouts of at least [`crate::quant::FUSED_MIN_ROWS`] rows or
    /// of short rows). On lavapipe (2 cores) a barrier splits the shader into pieces run
    /// invocation by invocation, and the tree's barriers made `main` the slowest quantizer
    /// (int8 blocks of 32 at 0.046 of copy bandwidth, `kernel_report`).
    PerThread,
}

impl ReducePath {
    /// `PerThread` on a CPU adapter, `Tree` elsewhere.
    pub fn for_adapter(gpu: &Gpu) -> Self {
        if gpu.cpu_layouts() {
            ReducePath::PerThread
        } else {
            ReducePath::Tree
        }
    }
}

/// The fused quantizer for one format.
pub struct QuantizeFused {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    block: wgpu::ComputePipeline,
    reduce_path: ReducePath,
    /// Threads per workgroup of the thread-per-group entries ([`QuantizeFused::thread_workgroup_size`]).
    thread_wg: u32,
    row: wgpu::ComputePipeline,
    /// `main_row_v4` (`main_row` through vec4s), for formats whose codes per word are a multiple
    /// of 4 (taken for rows of a multiple of 4 values).
    row_v4: Option<wgpu::ComputePipeline>,
    short: wgpu::ComputePipeline,
    /// `main_group_v4` and `main_row_short_v4`: on the per-thread path, for formats whose codes
    /// per word are a multiple of 4 (taken for rows of a multiple of 4 values).
    v4: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    /// `main_whole` (NVFP4 only): a small tensor's maximum and its blocks in one workgroup.
    whole: Option<wgpu::ComputePipeline>,
    /// `main_whole_both` (NVFP4 only) and its layout: `main_whole` and xᵀ's blocks.
    whole_both: Option<(wgpu::BindGroupLayout, wgpu::ComputePipeline)>,
    /// `main_group_both` (NVFP4 only, `whole_both`'s layout): both orientations of a tensor of
    /// any size given its maximum.
    group_both: Option<wgpu::ComputePipeline>,
    /// Bound as the tensor maximum where the format needs none.
    no_tensor_amax: GpuBuffer<u32>,
    /// Bound as the mask where there is none.
    no_mask: GpuBuffer<f32>,
    /// `main_row`'s teams are enlarged below these threads ([`super::balanced_team`]).
    team_fill: u32,
}

impl QuantizeFused {
    /// Builds the pipelines for `format`, per-block groups reduced as suits the adapter
    /// ([`ReducePath::for_adapter`]).
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        Self::with_reduce_path(gpu, format, ReducePath::for_adapter(gpu))
    }

    /// The same kernel with `main_row`'s teams (per-row scales on the tree path) enlarged only
    /// where a tensor's rows would take fewer than `threads` threads ([`super::balanced_team`];
    /// [`Gpu::fill`] unless set): a GPU smaller than an H200 fills with fewer, and 0
    /// keeps the teams that leave the fewest threads idle for any rows. The bits are the same.
    pub fn with_team_fill(mut self, threads: u32) -> Self {
        self.team_fill = threads;
        self
    }

    /// The fill its teams are enlarged below: its `Gpu`'s [`Gpu::fill`] unless
    /// `with_team_fill` set another.
    pub fn team_fill(&self) -> u32 {
        self.team_fill
    }

    /// Builds the pipelines for `format` with per-block groups reduced by `path`.
    pub fn with_reduce_path(gpu: &Gpu, format: Format, path: ReducePath) -> Result<Self> {
        let (bgl, pl) = layouts(
            gpu,
            "quantize_fused",
            &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write, Slot::Uniform, Slot::Write, Slot::Read],
        );
        let c = format_constant(format);
        let thread_wg = Self::thread_workgroup_size(path);
        // The thread-per-group entries, with their workgroup size.
        let ct = [c[0], ("THREAD_WG", thread_wg as f64)];
        let v4 = if path == ReducePath::PerThread && format.per_word().is_multiple_of(4) {
            Some((
                pipeline(gpu, "quantize_fused", "main_group_v4", &pl, &ct)?,
                pipeline(gpu, "quantize_fused", "main_row_short_v4", &pl, &ct)?,
            ))
        } else {
            None
        };
        // NVFP4's entries that write xᵀ's blocks too: one layout of ten bindings.
        let both = match format.needs_tensor_amax() {
            true => {
                use Slot::{Read, Uniform, Write};
                let slots = [Uniform, Read, Write, Write, Uniform, Write, Read, Write, Write, Uniform];
                let (bgl, pl) = layouts(gpu, "quantize_fused", &slots);
                let whole = pipeline(gpu, "quantize_fused", "main_whole_both", &pl, &c)?;
                let group = pipeline(gpu, "quantize_fused", "main_group_both", &pl, &ct)?;
                Some((bgl, whole, group))
            }
            false => None,
        };
        let (whole_both, group_both) = match both {
            Some((bgl, whole, group)) => (Some((bgl, whole)), Some(group)),
            None => (None, None),
        };
        Ok(QuantizeFused {
            v4,
            format,
            block: match path {
                ReducePath::Tree => pipeline(gpu, "quantize_fused", "main", &pl, &c)?,
                ReducePath::PerThread => pipeline(gpu, "quantize_fused", "main_group", &pl, &ct)?,
            },
            reduce_path: path,
            thread_wg,
            row: pipeline(gpu, "quantize_fused", "main_row", &pl, &c)?,
            row_v4: match format.per_word().is_multiple_of(4) {
                true => Some(pipeline(gpu, "quantize_fused", "main_row_v4", &pl, &c)?),
                false => None,
            },
            short: pipeline(gpu, "quantize_fused", "main_row_short", &pl, &ct)?,
            whole: match format.needs_tensor_amax() {
                true => Some(pipeline(gpu, "quantize_fused", "main_whole", &pl, &c)?),
                false => None,
            },
            whole_both,
            group_both,
            no_tensor_amax: GpuBuffer::zeros(gpu, "quantize_fused no tensor amax", 1)?,
            no_mask: GpuBuffer::zeros(gpu, "quantize_fused no mask", 4)?,
            bgl,
            team_fill: gpu.fill(),
        })
    }

    /// Threads per workgroup of the entries that take a thread per group or row (`main_group`,
    /// `main_row_short` and their `_v4` forms) on `path`: 256 on the tree path (a GPU's), 64 on
    /// the per-thread path (a CPU adapter's), so that a small tensor's groups still spread over
    /// its cores (llvmpipe runs each workgroup on one thread: at 256, the MLP's 128 input rows were
    /// one workgroup and took one core). Which thread takes which group, never a bit, changes.
    pub fn thread_workgroup_size(path: ReducePath) -> u32 {
        match path {
            ReducePath::Tree => super::WG,
            ReducePath::PerThread => 64,
        }
    }

    /// Whether [`QuantizeFused::encode`] handles `l` (per-row, or per-block with blocks of at most
    /// 256 words; not NVFP4, whose group scales need the whole tensor's maximum first).
    pub fn supports(l: &QuantLayout) -> bool {
        !l.format.needs_tensor_amax() && Self::supports_with_tensor_amax(l)
    }

    /// Whether [`QuantizeFused::encode_with_tensor_amax`] handles `l`: the groups of
    /// [`QuantizeFused::supports`], NVFP4 included.
    pub fn supports_with_tensor_amax(l: &QuantLayout) -> bool {
        match l.granularity {
            Granularity::PerTensor => false,
            Granularity::PerRow => true,
            Granularity::PerBlock(b) => b / l.per_word() <= 256,
        }
    }

    /// Whether [`QuantizeFused::encode_reducing_tensor_amax`] handles `l` on `gpu`: NVFP4's blocks
    /// of a tensor of at most [`QuantizeFused::whole_max_values`] values.
    pub fn fits_whole(gpu: &Gpu, l: &QuantLayout) -> bool {
        l.format.needs_tensor_amax()
            && matches!(l.granularity, Granularity::PerBlock(_))
            && Self::supports_with_tensor_amax(l)
            && (l.rows as usize) * (l.cols as usize) <= Self::whole_max_values(gpu)
    }

    /// The most values [`QuantizeFused::encode_reducing_tensor_amax`] takes in its one workgroup:
    /// on a GPU 16384 (64 a thread, read twice: about what the two launches it replaces cost
    /// there, an `absmax` over many workgroups and the quantizer), on a CPU adapter 65536 (a
    /// launch costs tens of µs there, more than one core's pass over such a tensor).
    pub fn whole_max_values(gpu: &Gpu) -> usize {
        if gpu.cpu_layouts() {
            65536
        } else {
            16384
        }
    }

    /// NVFP4 in one launch for a small tensor (a layer's weight; [`QuantizeFused::fits_whole`]):
    /// one workgroup reduces the tensor's maximum, stores it to `tensor_amax[0]` as f32 bits
    /// (what `absmax` writes for the whole tensor, for a later quantizer of the same tensor, such
    /// as the backward's of Wᵀ), and quantizes the blocks with it: the bits of `absmax` then
    /// [`QuantizeFused::encode_with_tensor_amax`], one launch instead of two.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_reducing_tensor_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        tensor_amax: &GpuBuffer<u32>,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        let whole = self.whole_entry(gpu, l, self.whole.as_ref(), "reduces the maximum of")?;
        check_len("quantize_fused", "tensor_amax", tensor_amax.len(), 1)?;
        let io = Io { x, tensor_amax, mask: None, samples: 1, codes, scales, seg: l.seg(), span: None };
        self.launch(gpu, enc, whole, 1, l, rounding, &io, (&self.bgl, &[]))
    }

    /// A one-workgroup entry (`main_whole`, `main_whole_both`) for `l`: the entry where this
    /// kernel's format is `l`'s and `l` fits one workgroup ([`QuantizeFused::fits_whole`]); a
    /// clear error naming what the entry `does` elsewhere.
    fn whole_entry<'a, T>(&self, gpu: &Gpu, l: &QuantLayout, entry: Option<&'a T>, does: &str) -> Result<&'a T> {
        super::check_built_for("quantize_fused", self.format, l)?;
        match (entry, Self::fits_whole(gpu, l)) {
            (Some(e), true) => Ok(e),
            _ => Err(Error::InvalidArgument(format!(
                "quantize_fused: one launch {does} NVFP4 blocks of at most {} values, not {} scales of {} over {}x{}",
                Self::whole_max_values(gpu),
                l.granularity,
                l.format,
                l.rows,
                l.cols
            ))),
        }
    }

    /// [`QuantizeFused::encode_reducing_tensor_amax`] that also quantizes L = xᵀ (`lt`: its
    /// layout, the same format) with the same maximum, round to nearest, in the same launch:
    /// `(codes_t, scales_t)` the bits of
    /// [`QuantizeTransposeFused::encode_with_tensor_amax`](super::quantize_transpose_fused::QuantizeTransposeFused::encode_with_tensor_amax)
    /// given that maximum. For a weight that one product takes as W and another as Wᵀ; the
    /// tensors of [`QuantizeFused::fits_whole`], rounding to nearest.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_whole_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        (l, lt): (&QuantLayout, &QuantLayout),
        tensor_amax: &GpuBuffer<u32>,
        (codes, scales): (&GpuBuffer<u32>, &GpuBuffer<f32>),
        (codes_t, scales_t): (&GpuBuffer<u32>, &GpuBuffer<f32>),
    ) -> Result<()> {
        let (bgl, pipe) = self.whole_entry(gpu, l, self.whole_both.as_ref(), "quantizes both orientations of")?;
        self.launch_both(gpu, enc, (bgl, pipe), 1, x, (l, lt), tensor_amax, (codes, scales), (codes_t, scales_t))
    }

    /// [`QuantizeFused::encode_whole_both`] for an NVFP4 tensor of any size with its maximum
    /// given in `tensor_amax[0]` (as f32 bits: what `absmax` writes), in one launch of a thread
    /// per block of either orientation (entry `main_group_both`): the bits of
    /// [`QuantizeFused::encode_with_tensor_amax`] and of
    /// [`QuantizeTransposeFused::encode_with_tensor_amax`](super::quantize_transpose_fused::QuantizeTransposeFused::encode_with_tensor_amax)
    /// given that maximum, where they take a launch each. For a weight too large for
    /// [`QuantizeFused::fits_whole`]: `absmax` and this, two launches where there were three.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_both_with_tensor_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        (l, lt): (&QuantLayout, &QuantLayout),
        tensor_amax: &GpuBuffer<u32>,
        (codes, scales): (&GpuBuffer<u32>, &GpuBuffer<f32>),
        (codes_t, scales_t): (&GpuBuffer<u32>, &GpuBuffer<f32>),
    ) -> Result<()> {
        let op = "quantize_fused";
        super::check_built_for(op, self.format, l)?;
        let (Some((bgl, _)), Some(pipe), Granularity::PerBlock(_)) =
            (self.whole_both.as_ref(), self.group_both.as_ref(), l.granularity)
        else {
            return Err(Error::InvalidArgument(format!(
                "quantize_fused: both orientations given the maximum are for NVFP4 blocks, not {} scales of {}",
                l.granularity, l.format
            )));
        };
        if !Self::supports_with_tensor_amax(l) {
            return Err(Error::InvalidArgument(format!(
                "quantize_fused: blocks of at most 256 words, not {} of {} words",
                l.format,
                l.seg()
            )));
        }
        let threads = groups_of(l) + lt.n_groups as usize;
        let workgroups = super::thread_workgroups(op, threads, self.thread_wg)?;
        self.launch_both(
            gpu,
            enc,
            (bgl, pipe),
            workgroups,
            x,
            (l, lt),
            tensor_amax,
            (codes, scales),
            (codes_t, scales_t),
        )
    }

    /// Checks xᵀ's layout `lt` and buffers against `l`'s, then launches `pipe`, an entry that
    /// writes both orientations (`main_whole_both`, `main_group_both`).
    #[allow(clippy::too_many_arguments)]
    fn launch_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        (bgl, pipe): (&wgpu::BindGroupLayout, &wgpu::ComputePipeline),
        workgroups: u32,
        x: &GpuBuffer<f32>,
        (l, lt): (&QuantLayout, &QuantLayout),
        tensor_amax: &GpuBuffer<u32>,
        (codes, scales): (&GpuBuffer<u32>, &GpuBuffer<f32>),
        (codes_t, scales_t): (&GpuBuffer<u32>, &GpuBuffer<f32>),
    ) -> Result<()> {
        let op = "quantize_fused";
        super::check_built_for(op, self.format, lt)?;
        if (lt.rows, lt.cols) != (l.cols, l.rows) || !matches!(lt.granularity, Granularity::PerBlock(_)) {
            return Err(Error::Shape {
                op,
                detail: format!(
                    "the transpose's layout is {} scales over {}x{}, not blocks over {}x{}",
                    lt.granularity, lt.rows, lt.cols, l.cols, l.rows
                ),
            });
        }
        check_len(op, "tensor_amax", tensor_amax.len(), 1)?;
        check_len(op, "codes_t", codes_t.len(), lt.words())?;
        check_len(op, "scales_t", scales_t.len(), lt.n_groups as usize)?;
        let params_t =
            uniform(gpu, "quantize_fused params of the transpose", &QuantParams::row_tiles(lt, Rounding::Nearest));
        let io = Io { x, tensor_amax, mask: None, samples: 1, codes, scales, seg: l.seg(), span: None };
        let extra = [codes_t.buffer(), scales_t.buffer(), &params_t];
        self.launch(gpu, enc, pipe, workgroups, l, Rounding::Nearest, &io, (bgl, &extra))
    }

    /// Records `(codes, scales) ← quantize(x)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, rounding, None, None, 1, codes, scales)
    }

    /// [`QuantizeFused::encode`] of `x` with every value whose `mask` value is not above 0 taken
    /// as 0: ReLU's backward (`x` = dY, `mask` = Y), the codes and scales of quantizing what
    /// `relu_backward` writes, without its launch and its output. Not for NVFP4.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_masked(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, rounding, None, Some(mask), 1, codes, scales)
    }

    /// [`QuantizeFused::encode`] for a format whose group scales depend on the tensor's maximum
    /// (NVFP4), read from `tensor_amax[0]` as f32 bits (what `absmax` writes for a per-tensor
    /// layout of `x`); other formats ignore it.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_with_tensor_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        tensor_amax: &GpuBuffer<u32>,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, rounding, Some(tensor_amax), None, 1, codes, scales)
    }

    /// SMP in one launch: `samples` independent stochastic quantizations of `x`, stacked in
    /// `codes` (`l.words()` per sample) and `scales` (`l.n_groups` per sample). Sample `j` draws
    /// with stream `stream + j` and is bit for bit [`QuantizeFused::encode`] with that stream
    /// alone; x's maxima are taken once. With `mask`, each sample is
    /// [`QuantizeFused::encode_masked`]'s; `tensor_amax` as for
    /// [`QuantizeFused::encode_with_tensor_amax`] (NVFP4). `rounding` must be stochastic.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_samples(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: Option<&GpuBuffer<f32>>,
        tensor_amax: Option<&GpuBuffer<u32>>,
        l: &QuantLayout,
        rounding: Rounding,
        samples: u32,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        super::check_samples_rounding("quantize_fused", rounding)?;
        self.record(gpu, enc, x, l, rounding, tensor_amax, mask, samples, codes, scales)
    }

    /// All of the above: checks what `l` asks for against what is given, then dispatches (the
    /// quantizer calls it with what it has; `samples > 1` only with stochastic rounding).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        tensor_amax: Option<&GpuBuffer<u32>>,
        mask: Option<&GpuBuffer<f32>>,
        samples: u32,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        if samples == 0 {
            return Err(Error::InvalidArgument("quantize_fused: samples must be at least 1".into()));
        }
        super::check_built_for("quantize_fused", self.format, l)?;
        let handled = if tensor_amax.is_some() { Self::supports_with_tensor_amax(l) } else { Self::supports(l) };
        if !handled {
            return Err(Error::InvalidArgument(format!(
                "quantize_fused: {} scales of {} need the two-pass quantizer{}",
                l.granularity,
                l.format,
                if tensor_amax.is_none() && l.format.needs_tensor_amax() {
                    " or the tensor's maximum (encode_with_tensor_amax)"
                } else {
                    ""
                }
            )));
        }
        if let Some(t) = tensor_amax {
            check_len("quantize_fused", "tensor_amax", t.len(), 1)?;
        }
        let tensor_amax = tensor_amax.unwrap_or(&self.no_tensor_amax);
        // The vec4 entries where rows split into whole vec4s.
        let v4 = self.v4.as_ref().filter(|_| l.cols.is_multiple_of(4));
        let per_thread = self.reduce_path == ReducePath::PerThread;
        let (pipe, workgroups, seg) = match l.granularity {
            // On the per-thread path a thread per row, where there are rows enough to share out
            // or the rows are short.
            Granularity::PerRow
                if per_thread && (l.words_per_row <= SHORT_ROW_WORDS || l.rows >= crate::quant::FUSED_MIN_ROWS) =>
            {
                (v4.map_or(&self.short, |v| &v.1), l.rows.div_ceil(self.thread_wg), l.seg())
            }
            // A team per row: a workgroup on the per-thread path, a power of two that leaves few
            // threads idle on the tree path (several short rows a workgroup).
            Granularity::PerRow => {
                let team =
                    if per_thread { super::WG } else { super::balanced_team(l.words_per_row, l.rows, self.team_fill) };
                let row = self.row_v4.as_ref().filter(|_| l.cols.is_multiple_of(4)).unwrap_or(&self.row);
                (row, l.rows.div_ceil(super::WG / team), team)
            }
            _ if per_thread => (
                v4.map_or(&self.block, |v| &v.0),
                super::thread_workgroups("quantize_fused", groups_of(l), self.thread_wg)?,
                l.seg(),
            ),
            _ => {
                // Tiles of `span` words of WG / span rows: the row's words rounded up to a power
                // of two (at least a block's), so that short rows share a workgroup (the GPT's
                // MXFP8 rows of 16 words took a workgroup each, 16 of its 256 threads busy).
                let span = super::row_team(l.words_per_row).max(l.seg());
                let tiles = l.words_per_row.div_ceil(span) as usize * l.rows.div_ceil(super::WG / span) as usize;
                let tiles = u32::try_from(tiles)
                    .map_err(|_| Error::InvalidArgument(format!("quantize_fused: {l:?} is too large")))?;
                let io = Io { x, tensor_amax, mask, samples, codes, scales, seg: l.seg(), span: Some(span) };
                return self.launch(gpu, enc, &self.block, tiles, l, rounding, &io, (&self.bgl, &[]));
            }
        };
        let io = Io { x, tensor_amax, mask, samples, codes, scales, seg, span: None };
        self.launch(gpu, enc, pipe, workgroups, l, rounding, &io, (&self.bgl, &[]))
    }

    /// Checks the buffers' lengths against `l` and dispatches `pipe` over them, in `layout`
    /// with `extra` bound after the seven every entry takes (`main_whole_both`'s xᵀ outputs).
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        pipe: &wgpu::ComputePipeline,
        workgroups: u32,
        l: &QuantLayout,
        rounding: Rounding,
        io: &Io,
        (layout, extra): (&wgpu::BindGroupLayout, &[&wgpu::Buffer]),
    ) -> Result<()> {
        let samples = io.samples as usize;
        check_len("quantize_fused", "x", io.x.len(), (l.rows * l.cols) as usize)?;
        check_len("quantize_fused", "codes", io.codes.len(), l.words() * samples)?;
        check_len("quantize_fused", "scales", io.scales.len(), l.n_groups as usize * samples)?;
        if let Some(m) = io.mask {
            check_len("quantize_fused", "mask", m.len(), io.x.len())?;
        }
        let mut p = QuantParams::row_tiles(l, rounding);
        p.seg = io.seg;
        if let Some(span) = io.span {
            p.aux[0] = span;
            p.tiles_per_row = l.words_per_row.div_ceil(span);
            p.total_tiles = workgroups;
        }
        p.masked = io.mask.is_some() as u32;
        p.samples = io.samples;
        let params = uniform(gpu, "quantize_fused params", &p);
        let step = enc.step_state(gpu).clone();
        let mask = io.mask.unwrap_or(&self.no_mask);
        let (x, codes, scales, amax) = (io.x.buffer(), io.codes.buffer(), io.scales.buffer(), io.tensor_amax.buffer());
        let mut buffers = vec![&params, x, codes, scales, &step, amax, mask.buffer()];
        buffers.extend(extra);
        dispatch(gpu, enc, "quantize_fused", pipe, layout, &buffers, workgroups)
    }
}

/// The scale groups of `l` as the per-thread entries count them (`main_group`, `quantize_both`): a
/// row's, or per block `seg()` words each (`l.n_groups` but for a tensor-wide scale).
pub(crate) fn groups_of(l: &QuantLayout) -> usize {
    match l.granularity {
        Granularity::PerRow => l.rows as usize,
        _ => l.rows as usize * l.words_per_row.div_ceil(l.seg()) as usize,
    }
}

/// The buffers of one launch.
struct Io<'a> {
    x: &'a GpuBuffer<f32>,
    tensor_amax: &'a GpuBuffer<u32>,
    mask: Option<&'a GpuBuffer<f32>>,
    samples: u32,
    codes: &'a GpuBuffer<u32>,
    scales: &'a GpuBuffer<f32>,
    /// Threads per group of the tree entries: a block's words (`l.seg()`), or `main_row`'s team.
    seg: u32,
    /// Entry `main`'s words of a row a tile (its tiles then `WG / span` rows each).
    span: Option<u32>,
}
