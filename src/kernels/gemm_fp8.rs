//! `gemm_fp8`: FP8 GEMM (E4M3 × E4M3 forward, E5M2 gradient × E4M3 backward, any pairing).
//!
//! Math: `C = epilogue(deq(A)·deq(B)ᵀ)` with f32 accumulation, where `deq` is exactly what the
//! `dequantize` kernel computes (code value × group scale); A `[M, K]`, B `[N, K]` packed along K.
//! Layout: codes decoded and scaled on their way into workgroup memory; 64×64 output tiles,
//! 16×16 threads × 4×4 outputs, K in steps of 16. Bindings: 0 `GemmParams`, 1 a codes,
//! 2 a scales, 3 b codes, 4 b scales, 5 bias, 6 c, 7 amax. Reference:
//! [`crate::reference::gemm_fp8`].

use super::gemm::{Dummies, Epilogue, PACKED_SLOTS};
use super::gemm_int::packed_params;
use super::{bind, check_len, dispatch, layouts, pipeline, uniform};
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The FP8 GEMM for one pair of operand formats.
pub struct GemmFp8 {
    fmt_a: Format,
    fmt_b: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    dummies: Dummies,
}

impl GemmFp8 {
    /// Builds the pipeline for A in `fmt_a` and B in `fmt_b` (each fp8-e4m3 or fp8-e5m2).
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        for f in [fmt_a, fmt_b] {
            if !matches!(f, Format::Fp8E4M3 | Format::Fp8E5M2) {
                return Err(Error::InvalidArgument(format!("gemm_fp8 takes fp8-e4m3 or fp8-e5m2 operands, not {f}")));
            }
        }
        let (bgl, pl) = layouts(gpu, "gemm_fp8", PACKED_SLOTS);
        let c = [("FMT_A", fmt_a.id() as f64), ("FMT_B", fmt_b.id() as f64)];
        Ok(GemmFp8 {
            fmt_a,
            fmt_b,
            pipeline: pipeline(gpu, "gemm_fp8", "main", &pl, &c)?,
            bgl,
            dummies: Dummies::new(gpu)?,
        })
    }

    /// Records `c ← epilogue(deq(A)·deq(B)ᵀ)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        if a.layout.format != self.fmt_a || b.layout.format != self.fmt_b {
            return Err(Error::InvalidArgument(format!(
                "gemm_fp8 built for {} × {}, got {} × {}",
                self.fmt_a, self.fmt_b, a.layout.format, b.layout.format
            )));
        }
        if a.samples != 1 {
            return Err(Error::InvalidArgument("gemm_fp8: SMP samples are supported by gemm_int only".into()));
        }
        let p = packed_params("gemm_fp8", a, b, epi.flags())?;
        check_len("gemm_fp8", "c", c.len(), p.m as usize * p.n as usize)?;
        epi.check("gemm_fp8", p.n as usize)?;
        let params = uniform(gpu, "gemm_fp8", &p);
        let bias = epi.bias.unwrap_or(&self.dummies.f32);
        let amax = epi.amax.unwrap_or(&self.dummies.u32);
        let group = bind(
            gpu,
            "gemm_fp8",
            &self.bgl,
            &[
                &params,
                a.codes.buffer(),
                a.scales.buffer(),
                b.codes.buffer(),
                b.scales.buffer(),
                bias.buffer(),
                c.buffer(),
                amax.buffer(),
            ],
        );
        dispatch(enc, "gemm_fp8", &self.pipeline, &group, p.total_tiles)
    }
}
