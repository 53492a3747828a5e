//! `gemm_f32_naive`: one thread per output, 16×16 outputs per workgroup, no tiling through
//! workgroup memory — the algorithmic reference on the GPU and the bottom rung of the benchmark
//! ladder. Same math, bindings and checks as [`super::gemm_f32`].
//! Reference: [`crate::reference::gemm_f32_naive`].

use super::gemm::{Dummies, Epilogue, F32_SLOTS};
use super::gemm_f32::{encode_f32, GemmShape};
use super::{layouts, pipeline};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The naive f32 GEMM.
pub struct GemmF32Naive {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    dummies: Dummies,
}

impl GemmF32Naive {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "gemm_f32_naive", F32_SLOTS);
        Ok(GemmF32Naive {
            pipeline: pipeline(gpu, "gemm_f32_naive", "main", &pl, &[])?,
            bgl,
            dummies: Dummies::new(gpu)?,
        })
    }

    /// Records `c ← epilogue(op(a)·op(b)ᵀ)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        s: GemmShape,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        encode_f32(
            gpu,
            enc,
            "gemm_f32_naive",
            &self.bgl,
            &self.pipeline,
            &self.dummies,
            (16, 16),
            a,
            b,
            s,
            epi,
            c,
            false,
            1,
            false,
        )
    }
}
