//! `gemm_fp8_lanes`: [`super::gemm_fp8`]'s products on a CPU adapter whose subgroups are one
//! 8-wide SIMD vector (lavapipe). gemm_fp8 runs gemm_f32's workgroup-memory tiles, which llvmpipe
//! loads lane by lane; this kernel decodes and scales each lane word of codes as gemm_fp8 does
//! (the values `dequantize` gives) and runs gemm_f32_lanes' 16×32 subgroup tiles on them: the same
//! products added in the same order as gemm_fp8's unsplit tiles, so, where no multiply-add is
//! fused (llvmpipe) and neither splits K (each plans its splits from its own tiles), the same
//! bits; narrow products as `Cᵀ = B·Aᵀ`, as gemm_f32_lanes runs them
//! (the same bits again). [`super::gemm_fp8::GemmFp8`]'s untiled entry points run it
//! wherever the adapter has it. Bindings: as gemm_fp8's. Reference:
//! [`crate::reference::gemm_fp8_lanes`].

use super::gemm::{Dummies, Epilogue, GemmParams, LanesSplit, PackedLanes};
use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_fp8::check_fp8_formats;
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The lanes FP8 GEMM for one pair of operand formats.
pub struct GemmFp8Lanes(PackedLanes);

impl GemmFp8Lanes {
    /// Whether `gpu` can run this kernel ([`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// Builds the pipeline for A in `fmt_a` and B in `fmt_b` (each fp8-e4m3, fp8-e5m2 or mxfp8);
    /// an error on an adapter without 8-lane subgroups.
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        check_fp8_formats("gemm_fp8_lanes", [fmt_a, fmt_b])?;
        Ok(GemmFp8Lanes(PackedLanes::new(gpu, "gemm_fp8_lanes", fmt_a, fmt_b)?))
    }

    /// Records the product of `p` (gemm_fp8's params for these operands, already checked) with
    /// this kernel's 16×32 tiles, split along K where few tiles run over a long K (one product,
    /// no epilogue: [`LanesSplit::Partial`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        p: GemmParams,
        dummies: &Dummies,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.0.record(gpu, enc, p, dummies, a, b, epi, c.buffer(), LanesSplit::Partial(c))
    }
}
