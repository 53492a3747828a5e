//! `sgd`: in-place SGD with momentum and weight decay on fp32 master weights:
//! `v = μ·v + (g + λ·w)`, `w = w − lr·v`, skipped entirely while the recorder's status is set
//! (a non-finite step, see [`super::finite`]). [`Sgd::encode_many`] updates a model's tensors,
//! each with its own λ, eight to a dispatch ([`super::OPTIM_SLOTS`]; one each on an adapter that
//! binds fewer than 25 storage buffers a stage). Bindings: 0 params, 1 step, 2 status, then per
//! slot w, v, g. Reference: [`crate::reference::sgd`].

use super::{OptimLaunch, OptimTensor};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

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
    launch: OptimLaunch,
}

impl Sgd {
    /// Builds the pipelines: the multi-tensor entries where the adapter binds them, and on a CPU
    /// adapter also the vec4 entries, where a vec4 load costs about what one f32 load does
    /// (llvmpipe loads lane by lane).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_options(gpu, gpu.cpu_layouts(), OptimLaunch::multi_fits(gpu))
    }

    /// Builds the pipelines, with the vec4 entry if `vec4` (the same arithmetic per value).
    pub fn with_vec4(gpu: &Gpu, vec4: bool) -> Result<Self> {
        Self::with_options(gpu, vec4, OptimLaunch::multi_fits(gpu))
    }

    /// Builds the pipelines: with the vec4 entry if `vec4`, the eight-tensor entries if `multi`
    /// (an error on an adapter that cannot bind them), else one tensor a dispatch.
    pub fn with_options(gpu: &Gpu, vec4: bool, multi: bool) -> Result<Self> {
        Ok(Sgd { launch: OptimLaunch::new(gpu, "sgd", 1, vec4, multi)? })
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
        let t = OptimTensor { w, state: v, g, weight_decay: s.weight_decay };
        self.encode_many(gpu, enc, &[t], s.lr, s.momentum)
    }

    /// Records one update of every tensor of `tensors` (`state`: the velocity, as long as `w`),
    /// with learning rate `lr` and momentum `momentum`, in [`Sgd::dispatches`] dispatches. Fails
    /// before recording anything on mismatched lengths, a non-finite hyper-parameter, or a buffer
    /// written twice (two tensors' weights or states, or a gradient that is also written).
    pub fn encode_many(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tensors: &[OptimTensor],
        lr: f32,
        momentum: f32,
    ) -> Result<()> {
        if !lr.is_finite() || !momentum.is_finite() {
            return Err(Error::InvalidArgument(format!("sgd: learning rate {lr} and momentum {momentum}")));
        }
        self.launch.encode(gpu, enc, tensors, [lr, momentum, 0.0, 0.0])
    }

    /// How many dispatches [`Sgd::encode_many`] records for tensors of lengths `lens`.
    pub fn dispatches(&self, lens: &[usize]) -> usize {
        self.launch.dispatches(lens)
    }
}
