//! `gemm_fp8_col2im`: an FP8 convolution's input gradient `dX = col2im(deq(dY)·deq(Wᵀ)ᵀ)` in one
//! launch, on a CPU adapter whose subgroups are one 8-wide SIMD vector (lavapipe): the bits of
//! [`super::gemm_fp8_lanes`] into dcols followed by [`super::im2col`]'s col2im, without dcols
//! (see [`super::gemm_int_col2im`], its integer counterpart, for why). Operands as
//! [`super::gemm_fp8`]'s (fp8-e4m3, fp8-e5m2, mxfp8): A the quantized dY `[batch·oh·ow, K]`, B
//! the quantized `Wᵀ` `[kh·kw·c, K]`, both packed along K, one sample.
//! Bindings: 0 `GemmParams`, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 dx, 6 `ConvParams`.
//! Reference: [`crate::reference::gemm_fp8_col2im`].

use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_fp8::check_fp8_formats;
use super::gemm_int_col2im::PackedCol2im;
use super::im2col::ConvGeom;
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The fused FP8 product and fold for one pair of operand formats.
pub struct GemmFp8Col2im(PackedCol2im);

impl GemmFp8Col2im {
    /// Whether `gpu` can run this kernel (8-lane subgroups: [`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// Builds the pipeline for dY in `fmt_a` and Wᵀ in `fmt_b` (each fp8-e4m3, fp8-e5m2 or
    /// mxfp8); an error on an adapter without 8-lane subgroups.
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        check_fp8_formats("gemm_fp8_col2im", [fmt_a, fmt_b])?;
        PackedCol2im::new(gpu, "gemm_fp8_col2im", fmt_a, fmt_b, false).map(GemmFp8Col2im)
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
        if a.samples != 1 || b.samples != 1 {
            return Err(Error::InvalidArgument(format!("gemm_fp8_col2im takes one sample, not {}", a.samples)));
        }
        self.0.record(gpu, enc, g, a, b, dx)
    }
}
