//! `gemm_levels_col2im`: a TinyScript convolution's input gradient `dX = col2im(Q(dY)·W)` in one
//! launch, on a CPU adapter whose subgroups are one 8-wide SIMD vector (lavapipe): the bits of
//! [`super::gemm_levels_lanes`] into dcols (`[batch·oh·ow, kh·kw·c]`) followed by
//! [`super::im2col`]'s col2im, without dcols ([`super::gemm_f32_col2im`]'s loop over dY's
//! TinyScript codes, decoded as gemm_levels_lanes decodes them). dY `[batch·oh·ow, K]` coded
//! ([`TinyScriptTensor`]), W `[K, kh·kw·c]` f32 as a convolution stores it (K output channels),
//! K and the input channels multiples of 4. One pipeline per code width, built on first use.
//! Bindings: 0 `GemmParams`, 1 a codes, 2 a scales, 3 levels, 4 w, 5 dx, 6 `ConvParams`.
//! Reference: [`crate::reference::gemm_levels_col2im`].

use super::gemm::GemmParams;
use super::gemm_f32_col2im::{col2im_params, GemmF32Col2im};
use super::gemm_f32_lanes::GemmF32Lanes;
use super::im2col::{ConvGeom, ConvParams};
use super::tinyscript::TinyScriptTensor;
use super::{check_len, dispatch, layouts, uniform, LazyPipelines, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

const OP: &str = "gemm_levels_col2im";

/// The fused TinyScript product and fold.
pub struct GemmLevelsCol2im {
    bgl: wgpu::BindGroupLayout,
    /// By dY's code width.
    pipelines: LazyPipelines<u32>,
}

impl GemmLevelsCol2im {
    /// Whether `gpu` can run this kernel (8-lane subgroups: [`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// Whether it takes convolution `g` with `k` output channels: `k` and the input channels
    /// multiples of 4 (as [`GemmF32Col2im::fits`]).
    pub fn fits(g: &ConvGeom, k: usize) -> bool {
        GemmF32Col2im::fits(g, k)
    }

    /// The kernel; an error on an adapter without 8-lane subgroups.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        GemmF32Lanes::require(gpu, OP)?;
        let slots = [Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform];
        let (bgl, layout) = layouts(gpu, OP, &slots);
        Ok(GemmLevelsCol2im { bgl, pipelines: LazyPipelines::new(OP, layout) })
    }

    /// Records `dx ← col2im(Q(dy)·w)` for convolution `g`: `dy` the coded `[g.rows(), k]` output
    /// gradient (k output channels), w `[k, g.kdim()]`, dx `[g.input_len()]` (NHWC), overwritten.
    /// The same bits as [`super::gemm_levels::GemmLevels::encode`] (`trans_b`, its
    /// `gemm_levels_lanes` path) into dcols followed by [`super::im2col::Im2col::encode_fold`].
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        dy: &TinyScriptTensor,
        w: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        g.check()?;
        let k = dy.cols;
        if dy.rows != g.rows() {
            return Err(Error::Shape {
                op: OP,
                detail: format!("dY has {} rows; the convolution's output has {}", dy.rows, g.rows()),
            });
        }
        if k == 0 || !Self::fits(g, k) {
            return Err(Error::InvalidArgument(format!(
                "{OP} takes output and input channels that are multiples of 4 (vec4 loads), not {k} and {}",
                g.c
            )));
        }
        let words = k.div_ceil(dy.table.per_word() as usize);
        check_len(OP, "dY codes", dy.codes.len(), dy.rows * words)?;
        check_len(OP, "dY scales", dy.scales.len(), dy.rows)?;
        check_len(OP, "levels", dy.levels.len(), dy.table.levels.len())?;
        check_len(OP, "w", w.len(), k * g.kdim())?;
        check_len(OP, "dx", dx.len(), g.input_len())?;
        let aux = [dy.table.bits | ((!dy.table.signed as u32) << 16), dy.table.levels.len() as u32];
        let p = GemmParams { a_words: words as u32, aux, ..col2im_params(OP, g, k)? };
        let total = p.total_tiles;
        let bits = dy.table.bits;
        let pipe = self.pipelines.get(gpu, bits, "main", &[("A_BITS", bits as f64)])?;
        let params = uniform(gpu, OP, &p);
        let conv = uniform(gpu, "gemm_levels_col2im conv", &ConvParams::new(g, g.input_len()));
        let buffers =
            [&params, dy.codes.buffer(), dy.scales.buffer(), dy.levels.buffer(), w.buffer(), dx.buffer(), &conv];
        dispatch(gpu, enc, OP, &pipe, &self.bgl, &buffers, total)
    }
}
