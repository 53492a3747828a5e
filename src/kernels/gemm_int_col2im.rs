//! `gemm_int_col2im`: a quantized convolution's input gradient `dX = col2im(dY·Wᵀ)` in one launch,
//! on a CPU adapter whose subgroups are one 8-wide SIMD vector (lavapipe). The unfused path
//! multiplies into `dcols` (`[batch·oh·ow, kh·kw·c]`, `kh·kw` times dX's size) with
//! [`super::gemm_int_lanes`] and folds it back with [`super::im2col`]'s col2im; there the stores
//! of dcols and col2im's reads of it cost about what the products do. This kernel gathers, for
//! each pixel of dX and each tap that reaches it, the dY row of that tap, and sums the taps in
//! col2im's order: the bits of the unfused path, without dcols. A workgroup (one subgroup) owns 32
//! pixels × 16 channels; a tap's 16 columns of W reach its lanes by subgroup broadcasts.
//! Operands as [`super::gemm_int`]'s (any of its
//! [`INT_FORMATS`](super::gemm_int::INT_FORMATS)): A the quantized dY `[batch·oh·ow, K]`, B the
//! quantized `Wᵀ` `[kh·kw·c, K]`, both packed along K (the output channels), scale chunks of at
//! most [`MAX_BLOCK`] elements (one over all of K, or blocks); dY may hold SMP's stacked samples,
//! their products averaged per tap as `gemm_int_lanes` averages them into dcols.
//! Bindings: 0 `GemmParams`, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 dx, 6 `ConvParams`.
//! Reference: [`crate::reference::gemm_int_col2im`].

use super::gemm::GemmParams;
use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_int::{check_int_formats, packed_params};
use super::gemm_int_lanes::MAX_BLOCK;
use super::im2col::{ConvGeom, ConvParams};
use super::{check_len, dispatch, layouts, pipeline, uniform, Slot};
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::scheme::QuantLayout;
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// Pixels of dX per workgroup.
pub const TILE_PIXELS: usize = 32;
/// Channels of dX per workgroup.
pub const TILE_CHANNELS: usize = 16;

/// The fused product and fold for one pair of integer operand formats.
pub struct GemmIntCol2im(PackedCol2im);

impl GemmIntCol2im {
    /// Whether `gpu` can run this kernel (8-lane subgroups: [`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// Whether it computes these operands' product: one sample of B (A may hold several), and
    /// every scale chunk along K (all of K for per-row scales) at most [`MAX_BLOCK`] elements, so
    /// each chunk's sums are exact in f32.
    pub fn fits(a: &QuantizedTensor, b: &QuantizedTensor) -> bool {
        b.samples == 1 && Self::fits_layouts(&a.layout, &b.layout, a.samples)
    }

    /// [`GemmIntCol2im::fits`] for operands of layouts `la` (with `samples` stacked samples, at
    /// least one) and `lb` (one), before they are quantized.
    pub fn fits_layouts(la: &QuantLayout, lb: &QuantLayout, samples: u32) -> bool {
        samples >= 1 && la.shared_chunk(lb).min(la.cols) <= MAX_BLOCK
    }

    /// Builds the pipeline for dY in `fmt_a` and Wᵀ in `fmt_b` (any of
    /// [`INT_FORMATS`](super::gemm_int::INT_FORMATS)); an error on an adapter without 8-lane
    /// subgroups.
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        check_int_formats("gemm_int_col2im", [fmt_a, fmt_b])?;
        PackedCol2im::new(gpu, "gemm_int_col2im", fmt_a, fmt_b, true).map(GemmIntCol2im)
    }

    /// Records `dx ← col2im(A·Bᵀ)` for the convolution `g`: A the quantized gradient of its
    /// output `[g.rows(), K]`, B its quantized `Wᵀ` `[g.kdim(), K]`, dx `[g.input_len()]` (NHWC),
    /// overwritten. The same bits as [`super::gemm_int::GemmInt::encode`] into dcols (its
    /// `gemm_int_lanes` path) followed by [`super::im2col::Im2col::encode_fold`].
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        if !Self::fits(a, b) {
            return Err(Error::InvalidArgument(format!(
                "gemm_int_col2im takes one sample and scale chunks of at most {MAX_BLOCK} along K, not {} samples \
                 in chunks of {} over {}",
                a.samples,
                a.layout.shared_chunk(&b.layout),
                a.layout.cols
            )));
        }
        self.0.record(gpu, enc, g, a, b, dx)
    }
}

/// The pipeline of a fused packed input gradient (`gemm_int_col2im`, `gemm_fp8_col2im`) for one
/// pair of formats, and its launch.
pub(crate) struct PackedCol2im {
    name: &'static str,
    fmt_a: Format,
    fmt_b: Format,
    bgl: wgpu::BindGroupLayout,
    /// The pipeline layout, for `one_fold`'s pipeline.
    layout: wgpu::PipelineLayout,
    pipeline: wgpu::ComputePipeline,
    /// Kernels with the `ONE_FOLD` constant (`gemm_int_col2im`): the pipeline with it set, for dY
    /// of one sample whose one scale chunk spans K, built on first use.
    one_fold: Option<std::sync::OnceLock<wgpu::ComputePipeline>>,
}

impl PackedCol2im {
    /// Builds kernel `name`'s `main` for `fmt_a` × `fmt_b` (checked by the caller), and where
    /// `one_fold` (the kernel declares `ONE_FOLD`) its single-fold variant when first used; an
    /// error on an adapter without 8-lane subgroups.
    pub(crate) fn new(gpu: &Gpu, name: &'static str, fmt_a: Format, fmt_b: Format, one_fold: bool) -> Result<Self> {
        GemmF32Lanes::require(gpu, name)?;
        let (bgl, pl) = layouts(
            gpu,
            name,
            &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform],
        );
        let c = [("FMT_A", fmt_a.id() as f64), ("FMT_B", fmt_b.id() as f64)];
        let pipeline = pipeline(gpu, name, "main", &pl, &c)?;
        let one_fold = one_fold.then(std::sync::OnceLock::new);
        Ok(PackedCol2im { name, fmt_a, fmt_b, pipeline, one_fold, bgl, layout: pl })
    }

    /// Checks the operands of convolution `g`'s input gradient (A `[g.rows(), K]`, B `[g.kdim(),
    /// K]`, packed along K, in the formats it was built for; their samples and chunks checked by
    /// the caller) and dx, and records the launch over the 32-pixel × 16-channel tiles.
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        let op = self.name;
        g.check()?;
        if a.layout.format != self.fmt_a || b.layout.format != self.fmt_b {
            return Err(Error::InvalidArgument(format!(
                "{op}: built for {} × {}, got {} × {}",
                self.fmt_a, self.fmt_b, a.layout.format, b.layout.format
            )));
        }
        if (a.layout.rows as usize, b.layout.rows as usize) != (g.rows(), g.kdim()) {
            return Err(Error::Shape {
                op,
                detail: format!(
                    "dY has {} rows and Wᵀ {}: the convolution ({g:?}) has {} output pixels and {} taps × channels",
                    a.layout.rows,
                    b.layout.rows,
                    g.rows(),
                    g.kdim()
                ),
            });
        }
        check_len(op, "dx", dx.len(), g.input_len())?;
        let mut p: GemmParams = packed_params(op, a, b, 0, super::gemm::Tile::T32, 1)?;
        let (tiles_n, total) = tiles(op, g)?;
        (p.tiles_n, p.total_tiles, p.splits) = (tiles_n, total, 1);
        let params = uniform(gpu, op, &p);
        let conv = uniform(gpu, op, &ConvParams::new(g, g.input_len()));
        let buffers =
            [&params, a.codes.buffer(), a.scales.buffer(), b.codes.buffer(), b.scales.buffer(), dx.buffer(), &conv];
        dispatch(gpu, enc, op, self.pipeline_for(gpu, &p)?, &self.bgl, &buffers, total)
    }

    /// The pipeline for a launch of params `p`: the single-fold one where the kernel has it and dY
    /// holds one sample whose one scale chunk spans K, else `main` as built.
    fn pipeline_for(&self, gpu: &Gpu, p: &GemmParams) -> Result<&wgpu::ComputePipeline> {
        match &self.one_fold {
            Some(cell) if p.samples == 1 && p.chunk >= p.k => super::built(cell, || {
                let c = [("FMT_A", self.fmt_a.id() as f64), ("FMT_B", self.fmt_b.id() as f64), ("ONE_FOLD", 1.0)];
                pipeline(gpu, self.name, "main", &self.layout, &c)
            }),
            _ => Ok(&self.pipeline),
        }
    }
}

/// The channel groups of convolution `g`'s dX and its tiles of [`TILE_PIXELS`] pixels ×
/// [`TILE_CHANNELS`] channels (the fused kernels' `tiles_n` and `total_tiles`): the pixels of each
/// class of (y mod stride, x mod stride) make whole tiles of their own (see
/// `shaders/common/col2im_tile.wgsl`).
pub(crate) fn tiles(op: &str, g: &ConvGeom) -> Result<(u32, u32)> {
    let s = g.stride;
    let extent = |n: usize, r: usize| if r < n { (n - r).div_ceil(s) } else { 0 };
    let pixel_tiles: usize =
        (0..s * s).map(|c| (g.batch * extent(g.h, c / s) * extent(g.w, c % s)).div_ceil(TILE_PIXELS)).sum();
    let tiles_n = g.c.div_ceil(TILE_CHANNELS);
    let total = pixel_tiles
        .checked_mul(tiles_n)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| Error::InvalidArgument(format!("{op}: {g:?} is too many tiles")))?;
    Ok((tiles_n as u32, total))
}
