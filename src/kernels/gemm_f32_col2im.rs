//! `gemm_f32_col2im`: an f32 convolution's input gradient `dX = col2im(dY·W)` in one launch, on
//! a CPU adapter whose subgroups are one 8-wide SIMD vector (lavapipe): the bits of
//! [`super::gemm_f32_lanes`] into dcols (`[batch·oh·ow, kh·kw·c]`) followed by
//! [`super::im2col`]'s col2im, without dcols (see [`super::gemm_int_col2im`], its integer
//! counterpart, for why). dY `[batch·oh·ow, K]`, W `[K, kh·kw·c]` as a convolution stores it (K
//! output channels), both with K and the input channels multiples of 4 (vec4 loads).
//! Bindings: 0 `GemmParams`, 1 dy, 2 w, 3 dx, 4 `ConvParams`. Reference:
//! [`crate::reference::gemm_f32_col2im`].

use super::gemm::GemmParams;
use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_int_col2im::tiles;
use super::im2col::{ConvGeom, ConvParams};
use super::{check_len, dispatch, layouts, pipeline, uniform, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The fused f32 product and fold.
pub struct GemmF32Col2im {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl GemmF32Col2im {
    /// Whether `gpu` can run this kernel (8-lane subgroups: [`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// Whether it takes convolution `g` with `k` output channels: `k` and the input channels
    /// multiples of 4.
    pub fn fits(g: &ConvGeom, k: usize) -> bool {
        k.is_multiple_of(4) && g.c.is_multiple_of(4)
    }

    /// Builds the pipeline; an error on an adapter without 8-lane subgroups.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        const OP: &str = "gemm_f32_col2im";
        GemmF32Lanes::require(gpu, OP)?;
        let (bgl, pl) = layouts(gpu, OP, &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform]);
        Ok(GemmF32Col2im { pipeline: pipeline(gpu, OP, "main", &pl, &[])?, bgl })
    }

    /// Records `dx ← col2im(dy·w)` for the convolution `g` with `k` output channels: dy `[g.rows(),
    /// k]`, w `[k, g.kdim()]`, dx `[g.input_len()]` (NHWC), overwritten. The same bits as
    /// [`super::gemm_f32::GemmF32::encode`] into dcols (its `gemm_f32_lanes` path) followed by
    /// [`super::im2col::Im2col::encode_fold`].
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        k: usize,
        dy: &GpuBuffer<f32>,
        w: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        const OP: &str = "gemm_f32_col2im";
        g.check()?;
        if k == 0 || !Self::fits(g, k) {
            return Err(Error::InvalidArgument(format!(
                "{OP} takes output and input channels that are multiples of 4 (vec4 loads), not {k} and {}",
                g.c
            )));
        }
        check_len(OP, "dy", dy.len(), g.rows() * k)?;
        check_len(OP, "w", w.len(), k * g.kdim())?;
        check_len(OP, "dx", dx.len(), g.input_len())?;
        let p = col2im_params(OP, g, k)?;
        let total = p.total_tiles;
        let params = uniform(gpu, OP, &p);
        let conv = uniform(gpu, "gemm_f32_col2im conv", &ConvParams::new(g, g.input_len()));
        dispatch(
            gpu,
            enc,
            OP,
            &self.pipeline,
            &self.bgl,
            &[&params, dy.buffer(), w.buffer(), dx.buffer(), &conv],
            total,
        )
    }
}

/// The params of kernel `op`'s fused product and fold for convolution `g` with `k` output
/// channels (dcols' M and N, K, the fold's tiles), shared with `gemm_levels_col2im`.
pub(crate) fn col2im_params(op: &str, g: &ConvGeom, k: usize) -> Result<GemmParams> {
    let (tiles_n, total) = tiles(op, g)?;
    let dims = [g.rows(), g.kdim(), k].map(u32::try_from);
    let [Ok(m), Ok(n), Ok(kk)] = dims else {
        return Err(Error::InvalidArgument(format!("{op}: {g:?} with {k} channels is too large")));
    };
    Ok(GemmParams { m, n, k: kk, tiles_n, total_tiles: total, splits: 1, ..Default::default() })
}
