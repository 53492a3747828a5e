//! `gemm_fp8_col2im`: an FP8 convolution's input gradient `dX = col2im(deq(dY)·deq(Wᵀ)ᵀ)` in one
//! launch, on a CPU adapter whose subgroups are one 8-wide SIMD vector (lavapipe): the bits of
//! [`super::gemm_fp8_lanes`] into dcols followed by [`super::im2col`]'s col2im, without dcols
//! (see [`super::gemm_int_col2im`], its integer counterpart, for why). Operands as
//! [`super::gemm_fp8`]'s (fp8-e4m3, fp8-e5m2, mxfp8): A the quantized dY `[batch·oh·ow, K]`, B
//! the quantized `Wᵀ` `[kh·kw·c, K]`, both packed along K, one sample.
//! Bindings: 0 `GemmParams`, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 dx, 6 `ConvParams`.
//! Reference: [`crate::reference::gemm_fp8_col2im`].

use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_int_col2im::record_packed;
use super::im2col::ConvGeom;
use super::{layouts, pipeline, Slot};
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The fused FP8 product and fold for one pair of operand formats.
pub struct GemmFp8Col2im {
    fmt_a: Format,
    fmt_b: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl GemmFp8Col2im {
    /// Whether `gpu` can run this kernel (8-lane subgroups: [`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// Builds the pipeline for dY in `fmt_a` and Wᵀ in `fmt_b` (each fp8-e4m3, fp8-e5m2 or
    /// mxfp8); an error on an adapter without 8-lane subgroups.
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        const OP: &str = "gemm_fp8_col2im";
        for f in [fmt_a, fmt_b] {
            if !f.is_fp8() {
                return Err(Error::InvalidArgument(format!(
                    "{OP} takes fp8-e4m3, fp8-e5m2 or mxfp8 operands, not {f}"
                )));
            }
        }
        GemmF32Lanes::require(gpu, OP)?;
        let (bgl, pl) = layouts(
            gpu,
            OP,
            &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform],
        );
        let c = [("FMT_A", fmt_a.id() as f64), ("FMT_B", fmt_b.id() as f64)];
        Ok(GemmFp8Col2im { fmt_a, fmt_b, pipeline: pipeline(gpu, OP, "main", &pl, &c)?, bgl })
    }

    /// Records `dx ← col2im(deq(A)·deq(B)ᵀ)` for the convolution `g`: A the quantized gradient of
    /// its output `[g.rows(), K]` (one sample), B its quantized `Wᵀ` `[g.kdim(), K]`, dx
    /// `[g.input_len()]` (NHWC), overwritten. The same bits as
    /// [`super::gemm_fp8::GemmFp8::encode`] into dcols (its `gemm_fp8_lanes` path) followed by
    /// [`super::im2col::Im2col::encode_fold`].
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        const OP: &str = "gemm_fp8_col2im";
        g.check()?;
        if a.layout.format != self.fmt_a || b.layout.format != self.fmt_b {
            return Err(Error::InvalidArgument(format!(
                "{OP}: built for {} × {}, got {} × {}",
                self.fmt_a, self.fmt_b, a.layout.format, b.layout.format
            )));
        }
        if a.samples != 1 || b.samples != 1 {
            return Err(Error::InvalidArgument(format!("{OP} takes one sample, not {}", a.samples)));
        }
        record_packed(gpu, enc, OP, &self.bgl, &self.pipeline, g, a, b, dx)
    }
}
