//! `sgd`: in-place SGD with momentum and weight decay on fp32 master weights:
//! `v = μ·v + (g + λ·w)`, `w = w − lr·v`, skipped entirely while the recorder's status is set
//! (a non-finite step, see [`super::finite`]). Bindings: 0 params, 1 w, 2 v, 3 g, 4 step, 5 status.
//! Reference: [`crate::reference::sgd`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct SgdParams {
    n: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}
const _: () = assert!(std::mem::size_of::<SgdParams>() == 16);

/// Hyper-parameters of one update.
#[derive(Copy, Clone, Debug)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f32,
    /// Momentum μ.
    pub momentum: f32,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f32,
}

/// The optimizer kernel.
pub struct Sgd {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Sgd {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) =
            layouts(gpu, "sgd", &[Slot::Uniform, Slot::Write, Slot::Write, Slot::Read, Slot::Uniform, Slot::Read]);
        Ok(Sgd { pipeline: pipeline(gpu, "sgd", "main", &pl, &[])?, bgl })
    }

    /// Records one update of `w` (and its velocity `v`) with gradient `g`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        w: &GpuBuffer<f32>,
        v: &GpuBuffer<f32>,
        g: &GpuBuffer<f32>,
        s: SgdStep,
    ) -> Result<()> {
        let n = w.len();
        check_len("sgd", "v", v.len(), n)?;
        check_len("sgd", "g", g.len(), n)?;
        let p = SgdParams { n: n as u32, lr: s.lr, momentum: s.momentum, weight_decay: s.weight_decay };
        let (step, status) = (enc.step_state(gpu).clone(), enc.status(gpu).clone());
        let params = uniform(gpu, "sgd", &p);
        dispatch(
            gpu,
            enc,
            "sgd",
            &self.pipeline,
            &self.bgl,
            &[&params, w.buffer(), v.buffer(), g.buffer(), &step, &status],
            (n as u32).div_ceil(WG),
        )
    }
}
