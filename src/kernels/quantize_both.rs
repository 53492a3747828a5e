//! `quantize_both`: a tensor x and L = xᵀ quantized in one launch, a thread per scale group of
//! either, no workgroup memory or barriers (but entry `main_given`, below) — where a training step needs both orientations of one
//! tensor: a weight's W (the forward's operand) and Wᵀ (the input gradient's), a dense layer's X
//! and Xᵀ (the weight gradient's), and a layer's gradient dY (for dX = dY·W) and dYᵀ (for
//! dW = dYᵀ·X), the latter with ReLU's mask read inside ([`BothExtras::mask`]), the bias gradient
//! (L's row sums, [`BothExtras::sums`]) and SMP's stacked samples ([`BothExtras::samples`]).
//!
//! Math: x's side is [`super::quantize_fused`]'s per-thread entries (the same groups, scales,
//! draws and codes, through the shared `common/row_groups.wgsl`), L's side is
//! [`super::quantize_transpose_fused`]'s (`common/rows_t.wgsl`, its sums in `col_sum`'s order),
//! each with its own rounding and stream: both outputs are those kernels' bit for bit, and x is
//! read by one launch instead of two (reference: [`crate::reference::quantize_both`]). Formats
//! without a tensor-wide scale (NVFP4's weights: `quantize_fused`'s `main_whole_both`); on a GPU
//! tensors of a weight's or a small activation's size ([`QuantizeBoth::fits`]), since a thread
//! reads its whole group one value at a time; on a CPU adapter any size where entry `main_v4`
//! reads x as vec4s (the two quantizers' own per-thread vec4 entries, in one launch). There, where
//! L's rows are few and long ([`QuantizeBoth::splits_rows`]: a convolution's dYᵀ, a row per output
//! channel and a column per output pixel), a launch of its own first takes their maxima and sums
//! per `col_sum` chunk, so that the quantizing launch packs each row in pieces over many threads
//! (a thread per four whole rows kept all of L on one or two of a CPU's threads); the same bits.
//! And where x's rows are short ([`QuantizeBoth::short_rows`]: a convolution's dY, a row of
//! channels per output pixel), x's side runs a variant whose loops are bounded by pipeline
//! constants and whose rounding is one: the same bits.
//! On a GPU's layouts, where x's producer has written L's group maxima (batch norm's backward for
//! a convolution's dY), entry `main_given` ([`QuantizeBoth::encode_given`]) packs L from them as
//! [`super::quantize_transpose`] does and x as [`QuantizeFused`] does on a GPU (a team of threads
//! a row or block), each in workgroups of its own: one launch where there were two, any size
//! (reference: [`crate::reference::quantize_both::from_maxima`]).
//! Bindings: 0 x's `QuantParams`, 1 x (read f32), 2 x's codes, 3 x's scales (read-write), 4 step
//! state, 5 mask (read f32), 6 L's codes, 7 L's scales (read-write), 8 L's `QuantParams`, 9 sums
//! (read-write f32), 10 L's maxima and sums per chunk (read-write u32, a split launch's scratch;
//! for `main_given`, L's given group maxima).

use super::quantize_fused::QuantizeFused;
use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// On a GPU, the longest group [`QuantizeBoth::fits`] gives one thread (a per-row tensor's row
/// or column): about a GEMM tile's K loop. Longer ones keep the two quantizers, whose workgroups
/// share a row (a bound set without a GPU to measure it on; a CPU adapter runs a thread per group
/// in either case).
pub const BOTH_GPU_GROUP_VALUES: u32 = 1024;

/// Threads per workgroup (the shader's `BOTH_WG`): few, so that a small tensor's groups spread
/// over a CPU adapter's cores.
const BOTH_WG: u32 = 64;

/// Values of a row of L that one thread packs where [`QuantizeBoth::splits_rows`] (a multiple of
/// every vec4 format's codes per word).
pub const L_PIECE_VALUES: u32 = 2048;

/// The longest row, in vec4s, whose x side `main_v4` packs through its short-row path
/// ([`QuantizeBoth::short_rows`]); `x_row_v4` holds such a row in an array of this length (the
/// shader's constant of the same name).
pub const SHORT_ROW_VEC4S: u32 = 16;

/// One orientation's output in a [`QuantizeBoth`] launch: its layout, rounding, and codes and
/// scales (`samples` stacked).
pub struct Side<'a> {
    /// x's layout `[rows, cols]`, or L's `[cols, rows]`.
    pub layout: &'a QuantLayout,
    /// This side's rounding (stochastic: its own seed and stream).
    pub rounding: Rounding,
    /// Codes, `layout.words()` per sample.
    pub codes: &'a GpuBuffer<u32>,
    /// Scales, `layout.n_groups` per sample.
    pub scales: &'a GpuBuffer<f32>,
}

/// What a [`QuantizeBoth`] launch reads and writes besides x and the two sides.
pub struct BothExtras<'a> {
    /// ReLU's backward: every value of x whose mask value is not above 0 counts as 0 (x = dY,
    /// mask = Y, the same length), on both sides.
    pub mask: Option<&'a GpuBuffer<f32>>,
    /// L's row sums (x's column sums, `col_sum`'s bits): a layer's bias gradient.
    pub sums: Option<&'a GpuBuffer<f32>>,
    /// SMP: independent stochastic samples stacked in each side's outputs (sample j with stream
    /// + j; both roundings stochastic when more than 1).
    pub samples: u32,
}

impl Default for BothExtras<'_> {
    fn default() -> Self {
        BothExtras { mask: None, sums: None, samples: 1 }
    }
}

/// The one-launch quantizer of both orientations, for one format.
pub struct QuantizeBoth {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4` (CPU adapters, [`QuantizeBoth::reads_vec4s`]): x read as vec4s, four rows
    /// of L per thread (per piece of them where L's rows are split).
    v4: wgpu::ComputePipeline,
    /// Entry `main_parts_v4`: L's maxima and sums per chunk, before `v4` where L's rows are split.
    parts: wgpu::ComputePipeline,
    /// `main_v4` with x's short rows packed by a thread each ([`QuantizeBoth::short_rows`]), at
    /// `2·(vec4s − 1) + stochastic` (pipeline constants `X_ROW_V4`, `X_STOCHASTIC`), built when
    /// first taken.
    short: [std::sync::OnceLock<wgpu::ComputePipeline>; 2 * SHORT_ROW_VEC4S as usize],
    /// The pipeline layout `short`'s pipelines are built with.
    layout: wgpu::PipelineLayout,
    /// Bound as those where L's rows are not split.
    no_parts: GpuBuffer<u32>,
    /// Bound as the mask where none is given.
    no_mask: GpuBuffer<f32>,
    /// Bound as the sums where none are asked.
    no_sums: GpuBuffer<f32>,
    /// Entry `main_given` ([`QuantizeBoth::encode_given`]): built where the adapter takes a GPU's
    /// layouts.
    given: Option<wgpu::ComputePipeline>,
}

impl QuantizeBoth {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        use Slot::{Read, Uniform, Write};
        let slots = [Uniform, Read, Write, Write, Uniform, Read, Write, Write, Uniform, Write, Write];
        let (bgl, pl) = layouts(gpu, "quantize_both", &slots);
        let fc = format_constant(format);
        Ok(QuantizeBoth {
            format,
            pipeline: pipeline(gpu, "quantize_both", "main", &pl, &fc)?,
            v4: pipeline(gpu, "quantize_both", "main_v4", &pl, &fc)?,
            parts: pipeline(gpu, "quantize_both", "main_parts_v4", &pl, &fc)?,
            short: std::array::from_fn(|_| std::sync::OnceLock::new()),
            no_parts: GpuBuffer::zeros(gpu, "quantize_both no parts", 4)?,
            no_mask: GpuBuffer::zeros(gpu, "quantize_both no mask", 4)?,
            no_sums: GpuBuffer::zeros(gpu, "quantize_both no sums", 4)?,
            given: match gpu.cpu_layouts() {
                true => None,
                false => Some(pipeline(gpu, "quantize_both", "main_given", &pl, &fc)?),
            },
            bgl,
            layout: pl,
        })
    }

    /// Whether [`QuantizeBoth::encode`] takes x's layout `l` and L's `lt` on `gpu`: one format
    /// without a tensor-wide scale, per-row or per-block groups each way
    /// ([`QuantizeFused::supports`]), `lt` the transposed shape, and at most
    /// [`QuantizeFused::whole_max_values`] values (a weight's, or a small activation's or
    /// gradient's) — any number on a CPU adapter where the launch reads vec4s
    /// ([`QuantizeBoth::reads_vec4s`]: there each side runs the per-thread entries the two
    /// quantizers would, so one launch does their work); on a GPU also groups of at most
    /// [`BOTH_GPU_GROUP_VALUES`] values each way.
    pub fn fits(gpu: &Gpu, l: &QuantLayout, lt: &QuantLayout) -> bool {
        let group = |l: &QuantLayout| match l.granularity {
            Granularity::PerBlock(b) => b.min(l.cols),
            _ => l.cols,
        };
        QuantizeFused::supports(l)
            && QuantizeFused::supports(lt)
            && l.format == lt.format
            && (lt.rows, lt.cols) == (l.cols, l.rows)
            && ((l.rows as usize) * (l.cols as usize) <= QuantizeFused::whole_max_values(gpu)
                || Self::reads_vec4s(gpu, l))
            && (gpu.cpu_layouts() || group(l).max(group(lt)) <= BOTH_GPU_GROUP_VALUES)
    }

    /// Whether [`QuantizeBoth::encode_given`] takes x's layout `l` and L's `lt` on `gpu`: a GPU's
    /// layouts, one format without a tensor-wide scale, x per row or per block
    /// ([`QuantizeFused::supports`]), L of any granularity `quantize_transpose` packs from maxima,
    /// and `lt` the transposed shape. Any size: both sides run as their own kernels' GPU entries
    /// run, in workgroups of their own.
    pub fn fits_given(gpu: &Gpu, l: &QuantLayout, lt: &QuantLayout) -> bool {
        !gpu.cpu_layouts()
            && QuantizeFused::supports(l)
            && !l.format.needs_tensor_amax()
            && l.format == lt.format
            && (lt.rows, lt.cols) == (l.cols, l.rows)
    }

    /// Records x's quantization under `side` and L = xᵀ's under `side_t` from L's group
    /// maxima `maxima` (`lt.amax_len()` words of amax_bits: what `absmax` writes for `lt`, here
    /// written by x's producer) in one launch of entry `main_given`: `side`'s codes and scales the
    /// bits of [`QuantizeFused::encode_samples`], `side_t`'s those of
    /// [`super::quantize_transpose::QuantizeTranspose::encode`] from the same maxima, `samples`
    /// stacked samples each, each side with its own rounding. An error, recording nothing, for
    /// layouts [`QuantizeBoth::fits_given`] refuses (a CPU adapter's layouts among them), SMP
    /// samples without stochastic rounding on both sides, or buffers of the wrong length.
    pub fn encode_given(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        (side, side_t): (Side, Side),
        samples: u32,
        maxima: &GpuBuffer<u32>,
    ) -> Result<()> {
        let op = "quantize_both (given maxima)";
        let (l, lt) = (side.layout, side_t.layout);
        super::check_built_for(op, self.format, l)?;
        super::check_built_for(op, self.format, lt)?;
        let given = self.given.as_ref().filter(|_| Self::fits_given(gpu, l, lt)).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{op}: takes x per row or per block and its transpose from given maxima, one format without a \
                 tensor-wide scale, on a GPU's layouts{}; not {}",
                if gpu.cpu_layouts() { " (this adapter takes a CPU's)" } else { "" },
                named(l, lt)
            ))
        })?;
        check_sides(op, x, (&side, &side_t), samples)?;
        check_len(op, "maxima", maxima.len(), lt.amax_len())?;
        // L: quantize_transpose's row tiles, its rows rounded up to a power of two a tile.
        let too_large = || Error::InvalidArgument(format!("{op}: {lt:?} is too large"));
        let mut pt = QuantParams::row_tiles(lt, side_t.rounding)
            .with_row_tiles(super::row_team(lt.rows), lt.words_per_row)
            .ok_or_else(too_large)?;
        pt.samples = samples;
        let mut px = QuantParams::row_tiles(l, side.rounding);
        px.samples = samples;
        // A team a group: per row, quantize_fused's `main_row`'s on this adapter; per block, a
        // thread a word (the block's words rounded up to a power of two), as its `main`'s
        // segments. Then x's workgroups (the shader spreads L's among them).
        let (team, groups) = match l.granularity {
            Granularity::PerRow => (super::balanced_team(l.words_per_row, l.rows, gpu.fill()), l.rows as usize),
            _ => (super::row_team(l.seg()), super::quantize_fused::groups_of(l)),
        };
        px.aux = [u32::try_from(groups.div_ceil((super::WG / team) as usize)).map_err(|_| too_large())?, team];
        let workgroups = pt.total_tiles.checked_add(px.aux[0]).ok_or_else(too_large)?;
        let px = uniform(gpu, "quantize_both params", &px);
        let pt = uniform(gpu, "quantize_both params of the transpose", &pt);
        let step = enc.step_state(gpu).clone();
        let buffers = [
            &px,
            x.buffer(),
            side.codes.buffer(),
            side.scales.buffer(),
            &step,
            self.no_mask.buffer(),
            side_t.codes.buffer(),
            side_t.scales.buffer(),
            &pt,
            self.no_sums.buffer(),
            maxima.buffer(),
        ];
        dispatch(gpu, enc, "quantize_both", given, &self.bgl, &buffers, workgroups)
    }

    /// Whether a launch for x's layout `l` on `gpu` takes entry `main_v4`: on a CPU adapter, where
    /// x's rows hold a multiple of 4 values and the format packs a multiple of 4 codes a word (as
    /// the one-pass quantizers' vec4 entries need).
    pub fn reads_vec4s(gpu: &Gpu, l: &QuantLayout) -> bool {
        gpu.cpu_layouts() && l.cols.is_multiple_of(4) && l.format.per_word().is_multiple_of(4)
    }

    /// Where a launch for x's layout `l` with `samples` samples on `gpu` packs x's side a thread
    /// per short row with every loop's bound a pipeline constant (`main_v4`'s `x_row_v4`): its
    /// rows' vec4s, where it reads vec4s ([`QuantizeBoth::reads_vec4s`]), x has per-row scales,
    /// one sample and rows of at most [`SHORT_ROW_VEC4S`] vec4s in whole words (a convolution's
    /// dY, `[batch·h·w, channels]`). The same bits as the general path.
    pub fn short_rows(gpu: &Gpu, l: &QuantLayout, samples: u32) -> Option<u32> {
        let vec4s = l.cols / 4;
        (Self::reads_vec4s(gpu, l)
            && l.granularity == Granularity::PerRow
            && samples == 1
            && (1..=SHORT_ROW_VEC4S).contains(&vec4s)
            && l.cols.is_multiple_of(l.format.per_word()))
        .then_some(vec4s)
    }

    /// Whether a launch for x's layout `l` and L's `lt` on `gpu` splits L's rows into pieces of
    /// [`L_PIECE_VALUES`] (two launches, [`QuantizeBoth::launches`]): where it reads vec4s, L has
    /// per-row scales, fewer than two workgroups' worth of threads of four rows (under 512 rows)
    /// and at least two pieces a row. (x is `[batch·h·w, channels]` for a convolution's dY.)
    pub fn splits_rows(gpu: &Gpu, l: &QuantLayout, lt: &QuantLayout) -> bool {
        Self::reads_vec4s(gpu, l)
            && lt.granularity == Granularity::PerRow
            && lt.rows.div_ceil(4) < 2 * BOTH_WG
            && lt.cols >= 2 * L_PIECE_VALUES
    }

    /// Launches [`QuantizeBoth::encode`] records for layouts `l` and `lt` that it takes: 2 where
    /// [`QuantizeBoth::splits_rows`], else 1.
    pub fn launches(gpu: &Gpu, l: &QuantLayout, lt: &QuantLayout) -> usize {
        1 + Self::splits_rows(gpu, l, lt) as usize
    }

    /// Records x's quantization under `side` and L = xᵀ's under `side_t` in one launch: `side`'s
    /// codes and scales the bits of [`QuantizeFused::encode_samples`] (with `extras.mask`, of
    /// [`QuantizeFused::encode_masked`]), `side_t`'s and the sums those of
    /// [`super::quantize_transpose_fused::QuantizeTransposeFused::encode_samples`], each with its
    /// own rounding. An error, recording nothing, for layouts [`QuantizeBoth::fits`] refuses, SMP
    /// samples without stochastic rounding on both sides, or buffers of the wrong length.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        (side, side_t): (Side, Side),
        extras: &BothExtras,
    ) -> Result<()> {
        let op = "quantize_both";
        let (l, lt) = (side.layout, side_t.layout);
        super::check_built_for(op, self.format, l)?;
        super::check_built_for(op, self.format, lt)?;
        if !Self::fits(gpu, l, lt) {
            return Err(Error::InvalidArgument(format!(
                "{op}: one launch quantizes both orientations of per-row or per-block scales of one format without a \
                 tensor-wide scale over at most {} values (groups of at most {BOTH_GPU_GROUP_VALUES} on a GPU), not {}",
                QuantizeFused::whole_max_values(gpu),
                named(l, lt)
            )));
        }
        let samples = extras.samples;
        check_sides(op, x, (&side, &side_t), samples)?;
        if let Some(m) = extras.mask {
            check_len(op, "mask", m.len(), x.len())?;
        }
        let params = |s: &Side| {
            let mut p = QuantParams::row_tiles(s.layout, s.rounding);
            p.masked = extras.mask.is_some() as u32;
            p.samples = samples;
            p
        };
        let (mut px, mut pt) = (params(&side), params(&side_t));
        let (chunk_cols, chunks) = super::reduce_chunks(lt.cols as usize);
        if let Some(s) = extras.sums {
            check_len(op, "sums", s.len(), lt.rows as usize)?;
            pt.aux = [1, chunk_cols as u32];
        }
        let v4 = Self::reads_vec4s(gpu, l);
        let split = Self::splits_rows(gpu, l, lt);
        // Through the vec4 views, whole rows of L: quads of its rows a thread, several where L
        // has rows enough (as quantize_transpose_fused's, in groups of 8 threads).
        if v4 && !split {
            pt.quads = super::quantize_transpose_fused::quads_per_thread(lt.rows, 1, 8);
        }
        let mut l_threads = if v4 { lt.rows.div_ceil(4 * pt.quads) } else { lt.rows };
        let mut parts = None;
        if split {
            // Per chunk and four rows of L a (maxima, sums) pair of vec4s; px.aux[0] the words of
            // a piece.
            parts = Some(enc.scratch::<u32>(gpu, "quantize_both chunk parts", chunks * lt.rows as usize * 2)?);
            pt.aux[1] = chunk_cols as u32;
            let words = L_PIECE_VALUES / lt.per_word();
            px.aux[0] = words;
            l_threads *= lt.words_per_row.div_ceil(words);
        }
        // L's workgroups and x's, spread in the shader (its both_workgroup).
        let groups = (l_threads as usize).div_ceil(BOTH_WG as usize)
            + super::quantize_fused::groups_of(l).div_ceil(BOTH_WG as usize);
        let workgroups = super::thread_workgroups(op, groups, 1)?;
        let px = uniform(gpu, "quantize_both params", &px);
        let pt = uniform(gpu, "quantize_both params of the transpose", &pt);
        let step = enc.step_state(gpu).clone();
        let mask = extras.mask.unwrap_or(&self.no_mask);
        let sums = extras.sums.unwrap_or(&self.no_sums);
        let parts = parts.as_ref().unwrap_or(&self.no_parts);
        let buffers = [
            &px,
            x.buffer(),
            side.codes.buffer(),
            side.scales.buffer(),
            &step,
            mask.buffer(),
            side_t.codes.buffer(),
            side_t.scales.buffer(),
            &pt,
            sums.buffer(),
            parts.buffer(),
        ];
        if split {
            let threads = chunks * lt.rows.div_ceil(4) as usize;
            let workgroups = super::thread_workgroups(op, threads, BOTH_WG)?;
            dispatch(gpu, enc, op, &self.parts, &self.bgl, &buffers, workgroups)?;
        }
        let pipe = match (v4, Self::short_rows(gpu, l, samples)) {
            (false, _) => &self.pipeline,
            (true, None) => &self.v4,
            (true, Some(vec4s)) => {
                let stochastic = side.rounding.seed_stream().2;
                let which = 2 * (vec4s as usize - 1) + stochastic as usize;
                super::built(&self.short[which], || {
                    let consts = [
                        format_constant(self.format)[0],
                        ("X_ROW_V4", vec4s as f64),
                        ("X_STOCHASTIC", stochastic as u32 as f64),
                    ];
                    pipeline(gpu, "quantize_both", "main_v4", &self.layout, &consts)
                })?
            }
        };
        dispatch(gpu, enc, op, pipe, &self.bgl, &buffers, workgroups)
    }
}

/// x's layout `l` and L's `lt` as the refusals name them.
fn named(l: &QuantLayout, lt: &QuantLayout) -> String {
    let one = |l: &QuantLayout| format!("{} scales of {} over {}x{}", l.granularity, l.format, l.rows, l.cols);
    format!("{} with {}", one(l), one(lt))
}

/// Both sides' rounding for `samples` samples, and x's, their codes' and their scales' lengths.
fn check_sides(op: &'static str, x: &GpuBuffer<f32>, (side, side_t): (&Side, &Side), samples: u32) -> Result<()> {
    super::check_samples(op, side.rounding, samples)?;
    super::check_samples(op, side_t.rounding, samples)?;
    check_len(op, "x", x.len(), (side.layout.rows * side.layout.cols) as usize)?;
    for (name, s) in [("", side), ("_t", side_t)] {
        check_len(op, &format!("codes{name}"), s.codes.len(), s.layout.words() * samples as usize)?;
        check_len(op, &format!("scales{name}"), s.scales.len(), s.layout.n_groups as usize * samples as usize)?;
    }
    Ok(())
}
