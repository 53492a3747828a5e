//! `peak`: the adapter's f32 FMA and int8 dot-product rates, measured with no memory traffic, so
//! GEMM throughput can be reported as a fraction of what the hardware actually does (and the
//! ratio of the two rates says what an int8 GEMM can gain over an f32 one on this adapter).
//!
//! Entry points `main_f32` (f32 FMA chains) and `main_dot` (`dot4I8Packed` chains); the shader's
//! header gives the arithmetic. Reference: [`crate::reference::peak`].

use super::{dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::reference::peak::{CHAINS, STEPS};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct PeakParams {
    threads: u32,
    iters: u32,
    b: u32,
    pad0: u32,
    m: f32,
    c: f32,
    pad1: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<PeakParams>() == 32);

/// Which unit a probe runs.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum PeakOp {
    /// f32 fused multiply-add, `v = fma(v, m, c)`: 2 flops each.
    F32Fma {
        /// Multiplier.
        m: f32,
        /// Addend.
        c: f32,
    },
    /// `v = dot4I8Packed(v, b) + v`: 8 int8 ops each (4 multiplies, 4 adds).
    Dot4I8 {
        /// The packed int8 lanes every chain is multiplied with.
        b: u32,
    },
}

impl PeakOp {
    /// Operations (flops or int8 ops) one thread does per round.
    pub fn ops_per_round(self) -> f64 {
        let per_step = match self {
            PeakOp::F32Fma { .. } => 2.0,
            PeakOp::Dot4I8 { .. } => 8.0,
        };
        per_step * (CHAINS * STEPS) as f64
    }
}

/// The rate probe.
pub struct Peak {
    bgl: wgpu::BindGroupLayout,
    f32_pipeline: wgpu::ComputePipeline,
    dot_pipeline: wgpu::ComputePipeline,
}

impl Peak {
    /// Builds both pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "peak", &[Slot::Uniform, Slot::Write]);
        Ok(Peak {
            f32_pipeline: pipeline(gpu, "peak", "main_f32", &pl, &[])?,
            dot_pipeline: pipeline(gpu, "peak", "main_dot", &pl, &[])?,
            bgl,
        })
    }

    /// Records `out.len()` threads (a multiple of 256, at least one workgroup) running `iters`
    /// rounds of `op`; `out[i]` receives thread i's checksum (see the reference).
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        op: PeakOp,
        iters: u32,
        out: &GpuBuffer<u32>,
    ) -> Result<()> {
        let threads = out.len();
        if threads == 0 || !threads.is_multiple_of(WG as usize) {
            return Err(Error::Shape {
                op: "peak",
                detail: format!("{threads} threads: need a positive multiple of {WG}"),
            });
        }
        let (pipe, b, m, c) = match op {
            PeakOp::F32Fma { m, c } => (&self.f32_pipeline, 0, m, c),
            PeakOp::Dot4I8 { b } => (&self.dot_pipeline, b, 0.0, 0.0),
        };
        let params = PeakParams { threads: threads as u32, iters, b, pad0: 0, m, c, pad1: [0; 2] };
        let params = uniform(gpu, "peak params", &params);
        dispatch(gpu, enc, "peak", pipe, &self.bgl, &[&params, out.buffer()], (threads / WG as usize) as u32)
    }
}
