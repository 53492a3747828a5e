//! `adam`: in-place AdamW on fp32 master weights, the two moments in one state buffer
//! `[m (n), v (n)]`: `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`,
//! `w = w − lr·(bias·m/(√v + ε) + λw)`, `bias` the recorder's [`crate::record::StepState::bias`]
//! (1 outside a step plan) and λ decoupled from the gradient; skipped entirely while the
//! recorder's status is set (a non-finite step, see [`super::finite`]). [`Adam::encode_many`]
//! updates a model's tensors, each with its own λ, eight to a dispatch ([`super::OPTIM_SLOTS`];
//! one each on an adapter that binds fewer than 25 storage buffers a stage). Bindings: 0 params,
//! 1 step, 2 status, then per slot w, state, g. Reference: [`crate::reference::adam`].

use super::{OptimLaunch, OptimTensor};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// Hyper-parameters of one update.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay β₁.
    pub beta1: f32,
    /// Second-moment decay β₂.
    pub beta2: f32,
    /// ε added to √v.
    pub eps: f32,
    /// Decoupled weight decay λ.
    pub weight_decay: f32,
}

/// The bias correction of step `t` (from 1): `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`, in f64.
pub fn bias_correction(beta1: f32, beta2: f32, t: u64) -> f32 {
    let t = t.min(i32::MAX as u64) as i32;
    ((1.0 - (beta2 as f64).powi(t)).sqrt() / (1.0 - (beta1 as f64).powi(t))) as f32
}

/// The optimizer kernel.
pub struct Adam {
    launch: OptimLaunch,
}

impl Adam {
    /// Builds the pipelines: the multi-tensor entries where the adapter binds them, and on a CPU
    /// adapter also the vec4 entries (llvmpipe loads lane by lane: a vec4 costs about one f32).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_options(gpu, gpu.cpu_layouts(), OptimLaunch::multi_fits(gpu))
    }

    /// Builds the pipelines: with the vec4 entry if `vec4` (the same arithmetic per value), the
    /// eight-tensor entries if `multi` (an error on an adapter that cannot bind them), else one
    /// tensor a dispatch.
    pub fn with_options(gpu: &Gpu, vec4: bool, multi: bool) -> Result<Self> {
        Ok(Adam { launch: OptimLaunch::new(gpu, "adam", 2, vec4, multi)? })
    }

    /// Records one update of `w` (and its moments `state`, `2·len(w)`) with gradient `g`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        w: &GpuBuffer<f32>,
        state: &GpuBuffer<f32>,
        g: &GpuBuffer<f32>,
        s: AdamStep,
    ) -> Result<()> {
        let t = OptimTensor { w, state, g, weight_decay: s.weight_decay };
        self.encode_many(gpu, enc, &[t], s)
    }

    /// Records one update of every tensor of `tensors` (`state`: the moments, `2·len(w)`) with
    /// the hyper-parameters of `s` but each tensor's own weight decay (`s.weight_decay` is not
    /// read), in [`Adam::dispatches`] dispatches. Fails before recording anything on mismatched
    /// lengths, unusable hyper-parameters, or a buffer written twice.
    pub fn encode_many(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tensors: &[OptimTensor],
        s: AdamStep,
    ) -> Result<()> {
        let ok = |b: f32| (0.0..1.0).contains(&b);
        let eps_ok = s.eps.is_finite() && s.eps > 0.0;
        if !ok(s.beta1) || !ok(s.beta2) || !eps_ok || !s.lr.is_finite() {
            return Err(Error::InvalidArgument(format!("adam: unusable hyper-parameters {s:?}")));
        }
        self.launch.encode(gpu, enc, tensors, [s.lr, s.beta1, s.beta2, s.eps])
    }

    /// How many dispatches [`Adam::encode_many`] records for tensors of lengths `lens`.
    pub fn dispatches(&self, lens: &[usize]) -> usize {
        self.launch.dispatches(lens)
    }
}
