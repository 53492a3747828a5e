//! `hadamard`: block Walsh–Hadamard rotation along one axis, for BHQ-style variance reduction.
//!
//! Math: `out = x·H_B` per block of `B` (a power of two, 2…256) consecutive elements along the
//! chosen axis, `H_B` the normalized (orthogonal) Hadamard matrix, so `H Hᵀ = I` and rotating
//! both GEMM operands along K leaves `A·Bᵀ` unchanged while spreading outliers before they are
//! quantized. With a sign key it is a random Hadamard transform `x·D·H_B` (`D` a fixed
//! pseudo-random ±1 diagonal, [`RANDOM_SIGNS`] in training: NVIDIA's NVFP4 recipe rotates the
//! weight gradient's operands with a 16×16 one). Layout: 256/B vectors per workgroup,
//! butterflies in workgroup memory; on CPU adapters ([`ReducePath::PerThread`]), blocks of 16
//! along the rows with columns in fours take a thread per 16×4 values instead, vec4 loads and
//! stores, the butterflies in registers (entries `main_thread16`, `main_thread16_amax`; same bits).
//! With [`Hadamard::encode_signed_with_amax`] it also writes the output's tensor maximum (the
//! largest finite, normal `|out|` as f32 bits, what `absmax` over the whole of `out` writes), so a
//! rotated NVFP4 operand needs no separate reduction before its quantizer. With
//! [`Hadamard::encode_with`] it can also read x as 0 wherever a mask (ReLU's output Y) is not
//! above 0 (a ReLU layer's gradient rotated without a `relu_backward` launch; same bits) and
//! write the input's maximum (the unrotated operand's tensor scale, for another product).
//! [`Hadamard::encode_maxima`] writes the maxima alone, not the rotated tensor (for a quantizer
//! that rotates again itself, `hadamard_quantize_transpose`). On the per-thread path the rotation
//! that writes its maximum can also write x's column sums as `col_sum`'s first level leaves them
//! ([`RotateExtras::sums`]): a layer's bias gradient from the launch that rotates its gradient,
//! where NVFP4's weight-gradient operand takes the chain (rotation, then quantizer) on a CPU
//! adapter.
//! Bindings: 0 params, 1 x (read), 2 out (read-write), 3 mask (read; x when unmasked), 4 amax and
//! 5 amax_in (read-write u32 `[1]`, the `_amax` entries only; amax again when not asked), 6 sums
//! (read-write f32 `[chunks, cols]`, `main_thread16_amax` only; amax again when not asked).
//! Reference: [`crate::reference::hadamard`] (the maxima: [`crate::reference::absmax`] of the
//! output and of the input; the sums: [`crate::reference::col_sum`] of the input as read).

use super::quantize_fused::ReducePath;
use super::{check_len, dispatch, layouts, pipeline, reduce_chunks, uniform, Slot};
pub use crate::reference::hadamard::{scale, Axis};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// The sign key of the random Hadamard transforms the trainer applies (any fixed nonzero key:
/// both operands of a product must use the same one).
pub const RANDOM_SIGNS: u32 = 0x9e37_79b9;

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct HadamardParams {
    rows: u32,
    cols: u32,
    block: u32,
    axis: u32,
    n_vectors: u32,
    scale: f32,
    signs: u32,
    /// Bit 0: x masked; bit 1: the input's maximum too; bit 2: the maxima alone, no `out`; bit
    /// 3: x's column sums too.
    flags: u32,
    /// With the sums: `col_sum`'s rows per chunk.
    chunk_rows: u32,
    pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<HadamardParams>() == 48);

/// What a rotation does besides `out ← x·D·H` ([`Hadamard::encode_with`]).
#[derive(Default, Clone, Copy)]
pub struct RotateExtras<'a> {
    /// Read x as 0 wherever this (ReLU's output Y, x's layout) is not above 0: bit for bit the
    /// rotation of what `relu_backward` writes.
    pub mask: Option<&'a GpuBuffer<f32>>,
    /// Write the output's tensor maximum into `amax[0]` (as
    /// [`Hadamard::encode_signed_with_amax`]).
    pub amax: Option<&'a GpuBuffer<u32>>,
    /// Also write x's (as read, masked) tensor maximum into `input_amax[0]`, bit for bit what
    /// `absmax` over the whole of it gives: the maximum of the unrotated operand another product
    /// quantizes. Needs `amax`.
    pub input_amax: Option<&'a GpuBuffer<u32>>,
    /// Also write x's column sums (as read, masked; unrotated) as `col_sum`'s first level leaves
    /// them: `[chunks, cols]`, chunk c the sum over x's rows in its c-th chunk
    /// ([`crate::kernels::col_sum::ColSum::encode_finish`] adds them in order; with one chunk,
    /// the sums themselves) — bit for bit `col_sum` of x: a layer's bias gradient, from the
    /// launch that rotates its gradient. Needs `amax`, and the per-thread rotation
    /// ([`Hadamard::writes_sums`]).
    pub sums: Option<&'a GpuBuffer<f32>>,
}

/// The rotation kernel.
pub struct Hadamard {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    amax_bgl: wgpu::BindGroupLayout,
    with_amax: wgpu::ComputePipeline,
    /// On the per-thread path (CPU adapters), `main_thread16` and `main_thread16_amax`: blocks of
    /// 16 along the rows, columns in fours, a thread per 16×4 values, no barriers.
    thread16: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
}

impl Hadamard {
    /// Builds the pipelines for the adapter ([`ReducePath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_reduce_path(gpu, ReducePath::for_adapter(gpu))
    }

    /// Builds the pipelines: the workgroup butterflies, and on [`ReducePath::PerThread`] also the
    /// per-thread entries that take blocks of 16 along the rows where the columns come in fours
    /// (what training rotates; the same bits). On lavapipe the tree's nine barriers per vector
    /// made the rotation a quarter of a GPT `nvfp4+attn` step.
    pub fn with_reduce_path(gpu: &Gpu, path: ReducePath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "hadamard", &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Read]);
        let (amax_bgl, amax_pl) = layouts(
            gpu,
            "hadamard",
            &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Read, Slot::Write, Slot::Write, Slot::Write],
        );
        let thread16 = match path {
            ReducePath::Tree => None,
            ReducePath::PerThread => Some((
                pipeline(gpu, "hadamard", "main_thread16", &pl, &[])?,
                pipeline(gpu, "hadamard", "main_thread16_amax", &amax_pl, &[])?,
            )),
        };
        Ok(Hadamard {
            pipeline: pipeline(gpu, "hadamard", "main", &pl, &[])?,
            bgl,
            with_amax: pipeline(gpu, "hadamard", "main_amax", &amax_pl, &[])?,
            amax_bgl,
            thread16,
        })
    }

    /// Records `out ← x·H` blockwise along `axis` of the `[rows, cols]` tensor `x`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        block: u32,
        axis: Axis,
    ) -> Result<()> {
        self.encode_signed(gpu, enc, x, out, (rows, cols), block, axis, 0)
    }

    /// Records `out ← x·D·H` blockwise, `D` the ±1 diagonal of sign key `signs` (0: none).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_signed(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
        shape: (usize, usize),
        block: u32,
        axis: Axis,
        signs: u32,
    ) -> Result<()> {
        self.encode_with(gpu, enc, x, out, shape, block, axis, signs, RotateExtras::default())
    }

    /// [`Hadamard::encode_signed`] that also writes `amax[0]`: the largest finite, normal `|out|`
    /// as f32 bits, bit for bit what `absmax` over the whole of `out` gives (`amax` is cleared
    /// first). This is the tensor maximum NVFP4's block scales read
    /// ([`crate::quant::Quantizer::quantize_transposed_with_amax`]).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_signed_with_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
        shape: (usize, usize),
        block: u32,
        axis: Axis,
        signs: u32,
        amax: &GpuBuffer<u32>,
    ) -> Result<()> {
        let extras = RotateExtras { amax: Some(amax), ..Default::default() };
        self.encode_with(gpu, enc, x, out, shape, block, axis, signs, extras)
    }

    /// The maxima of [`Hadamard::encode_with`] without its output: `amax[0]` ← the largest finite,
    /// normal `|x·D·H|` (as `extras.amax` gets it) and, with `input_amax`, x's own, with `x` read
    /// through `mask` if given. The tensor maximum NVFP4's block scales need where the rotation
    /// itself is applied again by the operand's quantizer
    /// ([`HadamardQuantizeTranspose`](super::hadamard_quantize_transpose::HadamardQuantizeTranspose)),
    /// so the rotated tensor is never written.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_maxima(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        shape: (usize, usize),
        block: u32,
        axis: Axis,
        signs: u32,
        mask: Option<&GpuBuffer<f32>>,
        amax: &GpuBuffer<u32>,
        input_amax: Option<&GpuBuffer<u32>>,
    ) -> Result<()> {
        let extras = RotateExtras { mask, amax: Some(amax), input_amax, sums: None };
        self.record(gpu, enc, x, None, shape, block, axis, signs, extras)
    }

    /// Whether a rotation of `[rows, cols]` by `block` along `axis` can also write x's column sums
    /// ([`RotateExtras::sums`]): on the per-thread path (CPU adapters), blocks of 16 along the
    /// rows, columns in fours.
    pub fn writes_sums(&self, cols: usize, block: u32, axis: Axis) -> bool {
        self.per_thread(cols, block, axis).is_some()
    }

    /// The per-thread entries (plain, and with the maxima) where they take the rotation: on the
    /// per-thread path, blocks of 16 along the rows, columns in fours.
    fn per_thread(
        &self,
        cols: usize,
        block: u32,
        axis: Axis,
    ) -> Option<&(wgpu::ComputePipeline, wgpu::ComputePipeline)> {
        self.thread16.as_ref().filter(|_| block == 16 && axis == Axis::Rows && cols.is_multiple_of(4))
    }

    /// [`Hadamard::encode_signed`] with what `extras` asks besides: `x` read masked, the output's
    /// maximum, and the input's.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
        (rows, cols): (usize, usize),
        block: u32,
        axis: Axis,
        signs: u32,
        extras: RotateExtras,
    ) -> Result<()> {
        self.record(gpu, enc, x, Some(out), (rows, cols), block, axis, signs, extras)
    }

    /// [`Hadamard::encode_with`], or with no `out` [`Hadamard::encode_maxima`].
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: Option<&GpuBuffer<f32>>,
        (rows, cols): (usize, usize),
        block: u32,
        axis: Axis,
        signs: u32,
        extras: RotateExtras,
    ) -> Result<()> {
        let RotateExtras { mask, amax, input_amax, sums } = extras;
        if !(2..=256).contains(&block) || !block.is_power_of_two() {
            return Err(Error::InvalidArgument(format!("hadamard: block {block} must be a power of two in 2..=256")));
        }
        let along = if axis == Axis::Cols { cols } else { rows };
        if along % block as usize != 0 {
            return Err(Error::Shape {
                op: "hadamard",
                detail: format!("the rotated dimension ({along}) must be a multiple of the block ({block})"),
            });
        }
        check_len("hadamard", "x", x.len(), rows * cols)?;
        if let Some(out) = out {
            check_len("hadamard", "out", out.len(), rows * cols)?;
        }
        if let Some(m) = mask {
            check_len("hadamard", "mask", m.len(), rows * cols)?;
        }
        for a in [amax, input_amax].into_iter().flatten() {
            check_len("hadamard", "amax", a.len(), 1)?;
        }
        if input_amax.is_some() && amax.is_none() {
            return Err(Error::InvalidArgument("hadamard: the input's maximum comes with the output's (amax)".into()));
        }
        let (chunk_rows, chunks) = reduce_chunks(rows);
        if let Some(s) = sums {
            if amax.is_none() || !self.writes_sums(cols, block, axis) {
                return Err(Error::InvalidArgument(format!(
                    "hadamard: the column sums come with the output's maximum, on the per-thread rotation of blocks of \
                     16 along the rows with columns in fours (this adapter's layouts: {}); not block {block} along \
                     {axis:?} of [{rows}, {cols}]{}",
                    if self.thread16.is_some() { "per thread" } else { "workgroup trees" },
                    if amax.is_none() { " without a maximum" } else { "" }
                )));
            }
            check_len("hadamard", "sums", s.len(), chunks * cols)?;
        }
        let (out, no_out) = match (out, amax) {
            (Some(o), _) => (o.buffer(), false),
            // The maxima alone: nothing is written to `out`, bound to amax.
            (None, Some(a)) => (a.buffer(), true),
            (None, None) => {
                return Err(Error::InvalidArgument("hadamard: neither an output nor a maximum to write".into()))
            }
        };
        let n_vectors = (rows * cols / block as usize) as u32;
        let p = HadamardParams {
            rows: rows as u32,
            cols: cols as u32,
            block,
            axis: (axis == Axis::Rows) as u32,
            n_vectors,
            scale: scale(block),
            signs,
            flags: mask.is_some() as u32
                | (input_amax.is_some() as u32) << 1
                | (no_out as u32) << 2
                | (sums.is_some() as u32) << 3,
            chunk_rows: chunk_rows as u32,
            pad: [0; 3],
        };
        let mask = mask.unwrap_or(x);
        let params = uniform(gpu, "hadamard", &p);
        // A thread per 16×4 values (n_vectors / 4 threads, 64 per workgroup), or 256 / block
        // vectors per workgroup.
        let (pipes, groups) = match self.per_thread(cols, block, axis) {
            Some((t, ta)) => {
                // With the sums, a thread per four columns and chunk after the blocks' threads.
                let sum_threads = if sums.is_some() { (cols / 4 * chunks) as u32 } else { 0 };
                ((t, ta), (n_vectors / 4 + sum_threads).div_ceil(64))
            }
            _ => ((&self.pipeline, &self.with_amax), n_vectors.div_ceil(256 / block)),
        };
        match amax {
            None => {
                let buffers = [&params, x.buffer(), out, mask.buffer()];
                dispatch(gpu, enc, "hadamard", pipes.0, &self.bgl, &buffers, groups)
            }
            Some(a) => {
                enc.clear(a.buffer());
                // Unasked, the input's maximum slot is bound to amax and never written.
                let a_in = input_amax.unwrap_or(a);
                if input_amax.is_some() {
                    enc.clear(a_in.buffer());
                }
                // Unasked, the sums are bound to amax and never written.
                let sums = sums.map_or(a.buffer(), |s| s.buffer());
                let buffers = [&params, x.buffer(), out, mask.buffer(), a.buffer(), a_in.buffer(), sums];
                dispatch(gpu, enc, "hadamard", pipes.1, &self.amax_bgl, &buffers, groups)
            }
        }
    }
}
