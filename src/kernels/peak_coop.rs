//! `peak_coop`: the cooperative-matrix unit's rate (16×16×16, or where the adapter offers only
//! those 8×8×8, f16 × f16 → f32 multiply-adds in registers, no memory traffic in the loop), for
//! `kernel_report`'s `peak_coop` line beside `peak`'s f32 and int8 rates. Needs an adapter with
//! such a configuration ([`PeakCoop::size`]; NVIDIA's Vulkan driver offers 16×16×16, lavapipe from
//! Mesa 25.1 on 8×8×8) and reports why not elsewhere. Bindings: 0 params, 1 out. Reference: [`crate::reference::peak_coop`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct PeakCoopParams {
    rounds: u32,
    pad0: u32,
    a: f32,
    b: f32,
}

/// Outputs per workgroup: 16 subgroups (of at least 8 invocations) × 4 matrices × 256.
pub const OUT_PER_WORKGROUP: usize = 16 * 1024;

/// The probe's pipeline.
pub struct PeakCoop {
    size: u32,
    bgl: wgpu::BindGroupLayout,
    main: wgpu::ComputePipeline,
}

impl PeakCoop {
    /// The matrix size the probe runs on `gpu`: 16 where it has 16×16×16 f16 → f32 cooperative
    /// matrices (with f16 and subgroups), else 8 where it has 8×8×8; `None` elsewhere.
    pub fn size(gpu: &Gpu) -> Option<u32> {
        [16, 8].into_iter().find(|&s| gpu.has_coop_f16(s))
    }

    /// Whether `gpu` can run the probe ([`PeakCoop::size`]).
    pub fn available(gpu: &Gpu) -> bool {
        Self::size(gpu).is_some()
    }

    /// Builds the probe, or says why this adapter cannot run it.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let Some(size) = Self::size(gpu) else {
            let r = gpu.report();
            return Err(Error::InvalidArgument(format!(
                "peak_coop needs 16x16x16 or 8x8x8 f16->f32 cooperative matrices, shader-f16 and subgroups; {} offers \
                 cooperative matrices [{}], f16 {}, subgroups {}",
                r.name,
                r.cooperative_matrix.join(", "),
                r.shader_f16,
                r.subgroups
            )));
        };
        let (bgl, pl) = layouts(gpu, "peak_coop", &[Slot::Uniform, Slot::Write]);
        let entry = if size == 16 { "main" } else { "main8" };
        Ok(PeakCoop { size, main: pipeline(gpu, "peak_coop", entry, &pl, &[])?, bgl })
    }

    /// The matrix size this probe runs (16 or 8).
    pub fn matrix_size(&self) -> u32 {
        self.size
    }

    /// Multiply-add flops of one [`PeakCoop::encode`] of `workgroups` on subgroups of
    /// `subgroup` invocations: 4 matrices · 2 · size³ per round and subgroup.
    pub fn flops(&self, workgroups: u32, subgroup: u32, rounds: u32) -> f64 {
        workgroups as f64 * (128 / subgroup) as f64 * rounds as f64 * 4.0 * 2.0 * self.size.pow(3) as f64
    }

    /// Records `workgroups` workgroups running `rounds` rounds with A filled with `a` and B
    /// with `b` into `out` (at least `workgroups ·` [`OUT_PER_WORKGROUP`] floats).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        workgroups: u32,
        rounds: u32,
        a: f32,
        b: f32,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        check_len("peak_coop", "out", out.len(), workgroups as usize * OUT_PER_WORKGROUP)?;
        let params = uniform(gpu, "peak_coop params", &PeakCoopParams { rounds, pad0: 0, a, b });
        dispatch(gpu, enc, "peak_coop", &self.main, &self.bgl, &[&params, out.buffer()], workgroups)
    }
}
