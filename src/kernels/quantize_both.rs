//! `quantize_both`: a tensor x and L = xᵀ quantized in one launch, a thread per scale group of
//! either, no workgroup memory or barriers — where a training step needs both orientations of one
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
//! reads x as vec4s (the two quantizers' own per-thread vec4 entries, in one launch). Bindings: 0
//! x's `QuantParams`, 1 x (read f32), 2 x's codes, 3 x's scales (read-write), 4 step state, 5
//! mask (read f32), 6 L's codes, 7 L's scales (read-write), 8 L's `QuantParams`, 9 sums
//! (read-write f32).

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
    /// of L per thread.
    v4: wgpu::ComputePipeline,
    /// Bound as the mask where none is given.
    no_mask: GpuBuffer<f32>,
    /// Bound as the sums where none are asked.
    no_sums: GpuBuffer<f32>,
}

impl QuantizeBoth {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        use Slot::{Read, Uniform, Write};
        let slots = [Uniform, Read, Write, Write, Uniform, Read, Write, Write, Uniform, Write];
        let (bgl, pl) = layouts(gpu, "quantize_both", &slots);
        Ok(QuantizeBoth {
            format,
            pipeline: pipeline(gpu, "quantize_both", "main", &pl, &format_constant(format))?,
            v4: pipeline(gpu, "quantize_both", "main_v4", &pl, &format_constant(format))?,
            no_mask: GpuBuffer::zeros(gpu, "quantize_both no mask", 4)?,
            no_sums: GpuBuffer::zeros(gpu, "quantize_both no sums", 4)?,
            bgl,
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

    /// Whether a launch for x's layout `l` on `gpu` takes entry `main_v4`: on a CPU adapter, where
    /// x's rows hold a multiple of 4 values and the format packs a multiple of 4 codes a word (as
    /// the one-pass quantizers' vec4 entries need).
    pub fn reads_vec4s(gpu: &Gpu, l: &QuantLayout) -> bool {
        gpu.cpu_layouts() && l.cols.is_multiple_of(4) && l.format.per_word().is_multiple_of(4)
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
                 tensor-wide scale over at most {} values (groups of at most {BOTH_GPU_GROUP_VALUES} on a GPU), not {} \
                 scales of {} over {}x{} with {} scales of {} over {}x{}",
                QuantizeFused::whole_max_values(gpu),
                l.granularity,
                l.format,
                l.rows,
                l.cols,
                lt.granularity,
                lt.format,
                lt.rows,
                lt.cols
            )));
        }
        let samples = extras.samples;
        super::check_samples(op, side.rounding, samples)?;
        super::check_samples(op, side_t.rounding, samples)?;
        check_len(op, "x", x.len(), (l.rows * l.cols) as usize)?;
        for (name, s) in [("", &side), ("_t", &side_t)] {
            check_len(op, &format!("codes{name}"), s.codes.len(), s.layout.words() * samples as usize)?;
            check_len(op, &format!("scales{name}"), s.scales.len(), s.layout.n_groups as usize * samples as usize)?;
        }
        if let Some(m) = extras.mask {
            check_len(op, "mask", m.len(), x.len())?;
        }
        let params = |s: &Side| {
            let mut p = QuantParams::row_tiles(s.layout, s.rounding);
            p.masked = extras.mask.is_some() as u32;
            p.samples = samples;
            p
        };
        let (px, mut pt) = (params(&side), params(&side_t));
        if let Some(s) = extras.sums {
            check_len(op, "sums", s.len(), lt.rows as usize)?;
            pt.aux = [1, super::reduce_chunks(lt.cols as usize).0 as u32];
        }
        let v4 = Self::reads_vec4s(gpu, l);
        let l_threads = if v4 { lt.rows.div_ceil(4) } else { lt.rows };
        // L's workgroups and x's, spread in the shader (its both_workgroup).
        let groups = (l_threads as usize).div_ceil(BOTH_WG as usize)
            + super::quantize_fused::groups_of(l).div_ceil(BOTH_WG as usize);
        let workgroups = super::thread_workgroups(op, groups, 1)?;
        let px = uniform(gpu, "quantize_both params", &px);
        let pt = uniform(gpu, "quantize_both params of the transpose", &pt);
        let step = enc.step_state(gpu).clone();
        let mask = extras.mask.unwrap_or(&self.no_mask);
        let sums = extras.sums.unwrap_or(&self.no_sums);
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
        ];
        let pipe = if v4 { &self.v4 } else { &self.pipeline };
        dispatch(gpu, enc, op, pipe, &self.bgl, &buffers, workgroups)
    }
}
