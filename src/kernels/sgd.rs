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
    /// Entry `main_v4`, taken for lengths that are multiples of 4 (CPU adapters).
    v4: Option<wgpu::ComputePipeline>,
}

impl Sgd {
    /// Builds the pipeline: on a CPU adapter also the vec4 entry, where a vec4 load costs about
    /// what one f32 load does (llvmpipe loads lane by lane).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_vec4(gpu, gpu.is_cpu())
    }

    /// Builds the pipeline, with the vec4 entry if `vec4` (the same arithmetic per value).
    pub fn with_vec4(gpu: &Gpu, vec4: bool) -> Result<Self> {
        let (bgl, pl) =
            layouts(gpu, "sgd", &[Slot::Uniform, Slot::Write, Slot::Write, Slot::Read, Slot::Uniform, Slot::Read]);
        let v4 = if vec4 { Some(pipeline(gpu, "sgd", "main_v4", &pl, &[])?) } else { None };
        Ok(Sgd { pipeline: pipeline(gpu, "sgd", "main", &pl, &[])?, v4, bgl })
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
        let (pipe, threads) = match &self.v4 {
            Some(v4) if n.is_multiple_of(4) => (v4, n / 4),
            _ => (&self.pipeline, n),
        };
        dispatch(
            gpu,
            enc,
            "sgd",
            pipe,
            &self.bgl,
            &[&params, w.buffer(), v.buffer(), g.buffer(), &step, &status],
            (threads as u32).div_ceil(WG),
        )
    }
}
