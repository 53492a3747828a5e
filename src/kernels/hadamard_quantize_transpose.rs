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
//! in fours, read as vec4s), the 16-point butterflies in registers; with sums, one more thread
//! per four rows of L and chunk. No workgroup memory or barriers, on any adapter: the threads
//! cover the whole tensor, not only L's rows as the transposing quantizer's do (measured on
//! lavapipe only). Bindings: 0 `QuantParams`, 1 x (read f32), 2 codes (read-write u32), 3 scales
//! (read-write f32), 4 step state, 5 sums (read-write f32), 6 tensor maximum (read u32, NVFP4),
//! 7 mask (read f32), 8 the rotation's uniform.

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
    pad: u32,
}

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

/// The fused rotation and transposing quantizer for one format.
pub struct HadamardQuantizeTranspose {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
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
        let name = "hadamard_quantize_transpose";
        let (bgl, pl) = layouts(
            gpu,
            name,
            &[
                Slot::Uniform,
                Slot::Read,
                Slot::Write,
                Slot::Write,
                Slot::Uniform,
                Slot::Write,
                Slot::Read,
                Slot::Read,
                Slot::Uniform,
            ],
        );
        Ok(HadamardQuantizeTranspose {
            format,
            pipeline: pipeline(gpu, name, "main", &pl, &format_constant(format))?,
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
        match (l.format.needs_tensor_amax(), tensor_amax) {
            (true, None) => {
                return Err(Error::InvalidArgument(format!("{op}: {} needs the rotated tensor's maximum", l.format)))
            }
            (false, Some(_)) => {
                return Err(Error::InvalidArgument(format!("{op}: {} has no tensor-wide scale", l.format)))
            }
            (_, Some(t)) => check_len(op, "tensor_amax", t.len(), 1)?,
            _ => {}
        }
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
        let blocks = l.rows / 4 * l.cols.div_ceil(l.block_div);
        let negate = (0..ROTATION as usize).fold(0u32, |m, i| m | (negated(signs, i) as u32) << i);
        let r = RotateParams { negate, blocks, scale: scale(ROTATION), pad: 0 };
        let params = uniform(gpu, "hadamard_quantize_transpose params", &p);
        let rot = uniform(gpu, "hadamard_quantize_transpose rotation", &r);
        let step = enc.step_state(gpu).clone();
        let buffers = [
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
        let threads = blocks + if sums.is_some() { l.rows / 4 * chunks as u32 } else { 0 };
        dispatch(gpu, enc, op, &self.pipeline, &self.bgl, &buffers, threads.div_ceil(64))
    }
}
