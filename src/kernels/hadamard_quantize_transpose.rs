//! `hadamard_quantize_transpose`: a block-scaled weight-gradient operand, rotated and quantized
//! in one launch.
//!
//! Math: x is `[batch, c]` (dY or X, the batch down its rows). `R = x·D·H₁₆` in blocks of 16
//! down x's columns (what [`crate::kernels::hadamard`] computes along
//! [`Axis::Rows`](crate::reference::hadamard::Axis::Rows) with block 16, `D` the ±1 diagonal of
//! the sign key), and `L = Rᵀ` (`[c, batch]`) is quantized per block along its rows
//! (`block_div` a multiple of 16: the MX formats' 32, NVFP4's 16): the same codes and scales, bit
//! for bit, as `hadamard` then `quantize_transpose_fused`, without writing R and reading it back
//! (reference: [`crate::reference::hadamard_quantize_transpose`]). NVFP4's block scales read the
//! tensor maximum of R, which [`Hadamard::encode_maxima`](super::hadamard::Hadamard::encode_maxima)
//! writes without writing R. Optionally x reads as 0 wherever a mask is not above 0 (ReLU's
//! backward), and the row sums of the unrotated L are written as `col_sum`'s first level leaves
//! them (per chunk of the batch; its second level,
//! [`ColSum::encode_finish`](super::col_sum::ColSum::encode_finish), adds them: a layer's bias
//! gradient). Layout: one thread per quantization block of four adjacent rows of L (x's columns
//! in fours, read as vec4s; on a CPU adapter runs of [`CPU_BLOCKS_ACROSS`] threads take adjacent
//! blocks of the same rows), the 16-point butterflies in registers; with sums, one more thread
//! per four rows of L and chunk. No workgroup memory or barriers, on any adapter: the threads
//! cover the whole tensor, not only L's rows as the transposing quantizer's do (measured on
//! lavapipe only). [`HadamardQuantizeTranspose::encode_both`] (entry `main_both`) also quantizes
//! x itself, unrotated, per block of the same format in the same launch (in workgroups of its
//! own: a block a thread on a GPU, [`CPU_BLOCKS_A_THREAD`] or a row's on a CPU adapter;
//! [`QuantizeFused`]'s bits), for the product that packs x along its rows (the forward's X, or
//! dY for the input gradient): one launch where there were two. Bindings: 0
//! `QuantParams`, 1 x (read f32), 2 codes (read-write u32), 3 scales (read-write f32), 4 step
//! state, 5 sums (read-write f32), 6 tensor maximum (read u32, NVFP4), 7 mask (read f32), 8 the
//! rotation's uniform; `main_both` also 9 x's codes (read-write u32), 10 its scales (read-write
//! f32), 11 its `QuantParams`, 12 its maximum (read u32, NVFP4).

use super::quantize_fused::QuantizeFused;
use super::{check_built_for, check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::reference::hadamard::{negated, scale};
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// The rotation block this kernel applies (NVIDIA's NVFP4 recipe's 16×16 transform; the training
/// presets' [`crate::nn::LayerScheme::rotate`]).
pub const ROTATION: u32 = 16;

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct RotateParams {
    negate: u32,
    blocks: u32,
    scale: f32,
    /// Entry `main`'s workgroups: the blocks, then the sums threads.
    workgroups: u32,
}

/// The fewest of x's blocks a thread of entry `main_both` takes on a CPU adapter (a row's where
/// rows hold more), where every invocation of that large entry costs, work or none: on llvmpipe
/// (2 cores), MXFP8, x of 16,384 × 144 and 25,088 × 400 values (`resnet20`'s and the CNN's
/// convolutions), `main_both` took 0.9–1.1× the time of the two launches it replaces with 12,
/// 1.15–1.25× with 5 (a row of 144 values), 1.5–1.6× with 1 (at 4c13827). Since
/// [`CPU_BLOCKS_ACROSS`] sped up entry `main`, the two launches apart ran faster than `main_both`
/// at 131,072 × 144 (`kernel_report`'s `_apart` and `_both` lines, MXFP8 stochastic: 1.70–1.72
/// against 1.32–1.41 GB/s); in training the difference was within the spread, so training keeps
/// the one launch.
pub const CPU_BLOCKS_A_THREAD: u32 = 12;

/// Adjacent threads that take adjacent quantization blocks of the same four rows of L on a CPU
/// adapter (the shader's `BLOCKS_ACROSS`; 1 elsewhere, where adjacent threads take adjacent
/// columns of x so that a row of x is read in order). With 1, each lane of llvmpipe's vectors
/// stored its codes and scales to rows of L of its own; with 16 a vector's lanes store to adjacent
/// words of the same rows. On llvmpipe (2 cores), MXFP8 stochastic, x of 131,072 × 144
/// (`resnet20`'s first convolutions at batch 128), two runs each, the launch without x's side went
/// 1.71–1.72 → 2.31–2.34 GB/s with 16 (4: 2.02–2.06; 8: 2.16–2.38 in three runs of four; 64:
/// 1.91).
pub const CPU_BLOCKS_ACROSS: u32 = 16;

/// Storage buffers a stage that entry `main_both` binds
/// ([`HadamardQuantizeTranspose::takes_both`]).
pub const BOTH_STORAGE: u32 = 9;

/// What a launch writes besides L's codes and scales, and how it reads x.
#[derive(Default, Clone, Copy)]
pub struct RotatedExtras<'a> {
    /// Read x as 0 wherever this (ReLU's output Y, x's layout) is not above 0.
    pub mask: Option<&'a GpuBuffer<f32>>,
    /// NVFP4: the tensor maximum of R as f32 bits (`[1]`); required for NVFP4, refused otherwise.
    pub tensor_amax: Option<&'a GpuBuffer<u32>>,
    /// The row sums of the unrotated L (x as read) as `col_sum`'s first level leaves them:
    /// `[chunks, rows of L]`, chunk c the sum over x's rows in its c-th chunk
    /// ([`HadamardQuantizeTranspose::sum_chunks`]), which
    /// [`ColSum::encode_finish`](super::col_sum::ColSum::encode_finish) adds in order: the bits
    /// of `col_sum` of x. With one chunk, the sums themselves.
    pub sums: Option<&'a GpuBuffer<f32>>,
}

/// x itself quantized unrotated in the launch that quantizes L
/// ([`HadamardQuantizeTranspose::encode_both`]): what [`QuantizeFused`] would write for x.
#[derive(Clone, Copy)]
pub struct Unrotated<'a> {
    /// x's layout: `[batch, c]` (L's columns by its rows), per-block scales of the kernel's format.
    pub layout: &'a QuantLayout,
    /// x's rounding (its own stream where stochastic).
    pub rounding: Rounding,
    /// NVFP4: x's own maximum as f32 bits (`[1]`; what
    /// [`Hadamard::encode_maxima`](super::hadamard::Hadamard::encode_maxima) reduces as the
    /// input's); required for NVFP4, refused otherwise.
    pub tensor_amax: Option<&'a GpuBuffer<u32>>,
    /// x's codes (`layout.words()`).
    pub codes: &'a GpuBuffer<u32>,
    /// x's scales (`layout.n_groups`).
    pub scales: &'a GpuBuffer<f32>,
}

/// The fused rotation and transposing quantizer for one format.
pub struct HadamardQuantizeTranspose {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// The pipelines' `BLOCKS_ACROSS`: [`CPU_BLOCKS_ACROSS`] on a CPU adapter, else 1.
    across: u32,
    /// Entry `main_both` and its layout, where the adapter binds [`BOTH_STORAGE`] storage buffers.
    both: Option<(wgpu::BindGroupLayout, wgpu::ComputePipeline)>,
    /// Bound where no sums are asked for.
    no_sums: GpuBuffer<f32>,
    /// Bound as the tensor maximum where the format needs none.
    no_tensor_amax: GpuBuffer<u32>,
    /// Bound as the mask where there is none.
    no_mask: GpuBuffer<f32>,
}

impl HadamardQuantizeTranspose {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        use Slot::{Read, Uniform, Write};
        let name = "hadamard_quantize_transpose";
        let slots = [Uniform, Read, Write, Write, Uniform, Write, Read, Read, Uniform];
        let (bgl, pl) = layouts(gpu, name, &slots);
        let across = if gpu.cpu_layouts() { CPU_BLOCKS_ACROSS } else { 1 };
        let [f] = format_constant(format);
        let c = [f, ("BLOCKS_ACROSS", f64::from(across))];
        let both = match Self::takes_both(gpu) {
            true => {
                let mut all = slots.to_vec();
                all.extend([Write, Write, Uniform, Read]);
                let (bgl, pl) = layouts(gpu, name, &all);
                let pipe = pipeline(gpu, name, "main_both", &pl, &c)?;
                Some((bgl, pipe))
            }
            false => None,
        };
        Ok(HadamardQuantizeTranspose {
            format,
            pipeline: pipeline(gpu, name, "main", &pl, &c)?,
            across,
            both,
            bgl,
            no_sums: GpuBuffer::zeros(gpu, "hadamard_quantize_transpose no sums", 1)?,
            no_tensor_amax: GpuBuffer::zeros(gpu, "hadamard_quantize_transpose no tensor amax", 1)?,
            no_mask: GpuBuffer::zeros(gpu, "hadamard_quantize_transpose no mask", 4)?,
        })
    }

    /// Whether the kernel handles `l` (L = Rᵀ, `[rows of L, batch]`) rotated in blocks of `block`:
    /// a rotation of [`ROTATION`], per-block scales whose blocks are whole rotations and whole
    /// words (the block-scaled formats), L's rows a multiple of 4 and its columns (the batch) of
    /// whole rotations.
    pub fn supports(l: &QuantLayout, block: u32) -> bool {
        let words = ROTATION.is_multiple_of(l.per_word());
        match l.granularity {
            Granularity::PerBlock(b) => {
                block == ROTATION
                    && b.is_multiple_of(ROTATION)
                    && words
                    && l.rows.is_multiple_of(4)
                    && l.cols.is_multiple_of(ROTATION)
            }
            _ => false,
        }
    }

    /// Whether `gpu` binds the storage buffers of entry `main_both` ([`BOTH_STORAGE`]), so that
    /// [`HadamardQuantizeTranspose::encode_both`] runs there.
    pub fn takes_both(gpu: &Gpu) -> bool {
        gpu.limits().max_storage_buffers_per_shader_stage >= BOTH_STORAGE
    }

    /// Whether [`HadamardQuantizeTranspose::encode_both`] handles `l` (L) rotated in blocks of
    /// `block` with x's own layout `lx`: what [`HadamardQuantizeTranspose::supports`] takes, and
    /// `lx` x's shape (L's transpose) in blocks of the same format that [`QuantizeFused`] takes,
    /// its codes per word a multiple of 4 (read as vec4s).
    pub fn supports_both(l: &QuantLayout, block: u32, lx: &QuantLayout) -> bool {
        Self::supports(l, block)
            && lx.format == l.format
            && (lx.rows, lx.cols) == (l.cols, l.rows)
            && matches!(lx.granularity, Granularity::PerBlock(_))
            && QuantizeFused::supports_with_tensor_amax(lx)
            && lx.per_word().is_multiple_of(4)
    }

    /// The chunks the row sums of an L whose rows are `batch` long come in (`col_sum`'s).
    pub fn sum_chunks(batch: usize) -> usize {
        super::reduce_chunks(batch).1
    }

    /// Records `(codes, scales) ← quantize((x·D·H₁₆)ᵀ)` per block, D the ±1 diagonal of sign key
    /// `signs` (0: none), with what `extras` asks besides. `l` describes L (`l.cols` = x's rows).
    /// `samples > 1` writes SMP's stacked samples (stochastic rounding only).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        signs: u32,
        rounding: Rounding,
        samples: u32,
        extras: RotatedExtras,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, signs, rounding, samples, extras, (codes, scales), None)
    }

    /// [`HadamardQuantizeTranspose::encode`] (one sample of L) that also quantizes x itself,
    /// unrotated, as `x_side` says, in the same launch (entry `main_both`): x's codes and scales
    /// the bits of [`QuantizeFused`] for `x_side.layout` (read through the same mask; NVFP4's with
    /// x's own maximum, as its `encode_with_tensor_amax` takes it). For the layouts of
    /// [`HadamardQuantizeTranspose::supports_both`] on an adapter that
    /// [`HadamardQuantizeTranspose::takes_both`]; a clear error elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        signs: u32,
        rounding: Rounding,
        extras: RotatedExtras,
        (codes, scales): (&GpuBuffer<u32>, &GpuBuffer<f32>),
        x_side: Unrotated,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, signs, rounding, 1, extras, (codes, scales), Some(x_side))
    }

    /// Both of the above: checks what is given against `l` (and x's side against its layout),
    /// then dispatches `main`, or `main_both` with x's side.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        signs: u32,
        rounding: Rounding,
        samples: u32,
        extras: RotatedExtras,
        (codes, scales): (&GpuBuffer<u32>, &GpuBuffer<f32>),
        x_side: Option<Unrotated>,
    ) -> Result<()> {
        let op = "hadamard_quantize_transpose";
        check_built_for(op, self.format, l)?;
        if !Self::supports(l, ROTATION) {
            return Err(Error::InvalidArgument(format!(
                "{op}: {} scales of {} over a [{}, {}] L are not blocks of whole {ROTATION}-rotations and words with \
                 rows in fours",
                l.granularity, l.format, l.rows, l.cols
            )));
        }
        super::check_samples(op, rounding, samples)?;
        let RotatedExtras { mask, tensor_amax, sums } = extras;
        check_tensor_amax(l.format, tensor_amax, "the rotated tensor's maximum")?;
        let n = (l.rows * l.cols) as usize;
        check_len(op, "x", x.len(), n)?;
        check_len(op, "codes", codes.len(), l.words() * samples as usize)?;
        check_len(op, "scales", scales.len(), l.n_groups as usize * samples as usize)?;
        let mut p = QuantParams::row_tiles(l, rounding);
        p.samples = samples;
        let (chunk_rows, chunks) = super::reduce_chunks(l.cols as usize);
        if let Some(s) = sums {
            check_len(op, "sums", s.len(), chunks * l.rows as usize)?;
            p.aux = [1, chunk_rows as u32];
        }
        if let Some(m) = mask {
            check_len(op, "mask", m.len(), n)?;
            p.masked = 1;
        }
        // x's side is checked before anything is made.
        let both = match &x_side {
            Some(side) => Some(self.both_entry(gpu, l, side)?),
            None => None,
        };
        // Each row's blocks rounded up to whole runs of `across` threads.
        let blocks = l.rows / 4 * l.cols.div_ceil(l.block_div).next_multiple_of(self.across);
        let threads = blocks + if sums.is_some() { l.rows / 4 * chunks as u32 } else { 0 };
        let negate = (0..ROTATION as usize).fold(0u32, |m, i| m | (negated(signs, i) as u32) << i);
        let workgroups = threads.div_ceil(64);
        let r = RotateParams { negate, blocks, scale: scale(ROTATION), workgroups };
        let params = uniform(gpu, "hadamard_quantize_transpose params", &p);
        let rot = uniform(gpu, "hadamard_quantize_transpose rotation", &r);
        let step = enc.step_state(gpu).clone();
        let mut buffers = vec![
            &params,
            x.buffer(),
            codes.buffer(),
            scales.buffer(),
            &step,
            sums.unwrap_or(&self.no_sums).buffer(),
            tensor_amax.unwrap_or(&self.no_tensor_amax).buffer(),
            mask.unwrap_or(&self.no_mask).buffer(),
            &rot,
        ];
        let (Some(side), Some((bgl, pipe))) = (x_side, both) else {
            return dispatch(gpu, enc, op, &self.pipeline, &self.bgl, &buffers, workgroups);
        };
        let lx = side.layout;
        let mut px = QuantParams::row_tiles(lx, side.rounding);
        px.masked = p.masked;
        // x's blocks a thread: one on a GPU (neighbouring threads read neighbouring blocks), a
        // row's and at least CPU_BLOCKS_A_THREAD on a CPU adapter.
        let groups = super::quantize_fused::groups_of(lx);
        let per_thread = match gpu.cpu_layouts() {
            true => lx.words_per_row.div_ceil(lx.seg()).max(CPU_BLOCKS_A_THREAD),
            false => 1,
        };
        px.aux[0] = per_thread;
        let params_x = uniform(gpu, "hadamard_quantize_transpose params of x", &px);
        buffers.extend([
            side.codes.buffer(),
            side.scales.buffer(),
            &params_x,
            side.tensor_amax.unwrap_or(&self.no_tensor_amax).buffer(),
        ]);
        // x's blocks in workgroups of their own, after L's.
        let x_workgroups = super::thread_workgroups(op, groups.div_ceil(per_thread as usize), 64)?;
        let all = workgroups.checked_add(x_workgroups).ok_or_else(|| {
            Error::InvalidArgument(format!("{op}: {workgroups} + {x_workgroups} workgroups exceed a launch"))
        })?;
        dispatch(gpu, enc, op, pipe, bgl, &buffers, all)
    }

    /// Entry `main_both` and its layout for x's side `side` beside L (`l`), after checking what is
    /// given against `l` and x's layout; a clear error where the adapter or the layouts do not
    /// take it.
    fn both_entry(
        &self,
        gpu: &Gpu,
        l: &QuantLayout,
        side: &Unrotated,
    ) -> Result<&(wgpu::BindGroupLayout, wgpu::ComputePipeline)> {
        let op = "hadamard_quantize_transpose";
        let Some(both) = &self.both else {
            return Err(Error::InvalidArgument(format!(
                "{op}: x's own blocks in the same launch need {BOTH_STORAGE} storage buffers a stage; this adapter \
                 binds {}",
                gpu.limits().max_storage_buffers_per_shader_stage
            )));
        };
        let lx = side.layout;
        if !Self::supports_both(l, ROTATION, lx) {
            return Err(Error::InvalidArgument(format!(
                "{op}: x's own {} scales of {} over {}x{} are not blocks of L's format {} over its transpose {}x{}",
                lx.granularity, lx.format, lx.rows, lx.cols, l.format, l.cols, l.rows
            )));
        }
        check_tensor_amax(lx.format, side.tensor_amax, "x's own maximum")?;
        check_len(op, "x's codes", side.codes.len(), lx.words())?;
        check_len(op, "x's scales", side.scales.len(), lx.n_groups as usize)?;
        Ok(both)
    }
}

/// A tensor maximum (`what`) given where `format` needs one (NVFP4: `[1]`), and only there.
fn check_tensor_amax(format: Format, given: Option<&GpuBuffer<u32>>, what: &str) -> Result<()> {
    let op = "hadamard_quantize_transpose";
    match (format.needs_tensor_amax(), given) {
        (true, None) => Err(Error::InvalidArgument(format!("{op}: {format} needs {what}"))),
        (false, Some(_)) => Err(Error::InvalidArgument(format!("{op}: {format} has no tensor-wide scale"))),
        (_, Some(t)) => check_len(op, what, t.len(), 1),
        _ => Ok(()),
    }
}
