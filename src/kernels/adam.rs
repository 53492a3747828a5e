//! `adam`: in-place AdamW on fp32 master weights, the two moments in one state buffer
//! `[m (n), v (n)]`: `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`,
//! `w = w − lr·(bias·m/(√v + ε) + λw)`, `bias` the recorder's [`crate::record::StepState::bias`]
//! (1 outside a step plan) and λ decoupled from the gradient; skipped entirely while the
//! recorder's status is set (a non-finite step, see [`super::finite`]). Bindings: 0 params, 1 w,
//! 2 state, 3 g, 4 step, 5 status. Reference: [`crate::reference::adam`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct AdamParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<AdamParams>() == 32);

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
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Adam {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) =
            layouts(gpu, "adam", &[Slot::Uniform, Slot::Write, Slot::Write, Slot::Read, Slot::Uniform, Slot::Read]);
        Ok(Adam { pipeline: pipeline(gpu, "adam", "main", &pl, &[])?, bgl })
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
        let n = w.len();
        check_len("adam", "state", state.len(), 2 * n)?;
        check_len("adam", "g", g.len(), n)?;
        let ok = |b: f32| (0.0..1.0).contains(&b);
        let eps_ok = s.eps.is_finite() && s.eps > 0.0;
        if !ok(s.beta1) || !ok(s.beta2) || !eps_ok || !s.lr.is_finite() || !s.weight_decay.is_finite() {
            return Err(Error::InvalidArgument(format!("adam: unusable hyper-parameters {s:?}")));
        }
        let p = AdamParams {
            n: n as u32,
            lr: s.lr,
            beta1: s.beta1,
            beta2: s.beta2,
            eps: s.eps,
            weight_decay: s.weight_decay,
            pad: [0; 2],
        };
        let (step, status) = (enc.step_state(gpu).clone(), enc.status(gpu).clone());
        let params = uniform(gpu, "adam", &p);
        dispatch(
            gpu,
            enc,
            "adam",
            &self.pipeline,
            &self.bgl,
            &[&params, w.buffer(), state.buffer(), g.buffer(), &step, &status],
            (n as u32).div_ceil(WG),
        )
    }
}
