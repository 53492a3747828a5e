//! `error_feedback`: `e = v − d` elementwise, the residual an error-feedback gradient exchange
//! ([`crate::dist`]) keeps for the next step: `v` is what was encoded (gradient plus the last
//! residual), `d` its decoded value. One thread per element. Bindings: 0 params, 1 v, 2 d, 3 e.
//! Reference: [`crate::reference::error_feedback`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The residual kernel of error feedback.
pub struct ErrorFeedback {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl ErrorFeedback {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "error_feedback", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        Ok(ErrorFeedback { pipeline: pipeline(gpu, "error_feedback", "main", &pl, &[])?, bgl })
    }

    /// Records `e ← v − d`. `e` may not be `v` or `d`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        v: &GpuBuffer<f32>,
        d: &GpuBuffer<f32>,
        e: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = v.len();
        if n == 0 {
            return Err(Error::Empty("error_feedback"));
        }
        check_len("error_feedback", "d", d.len(), n)?;
        check_len("error_feedback", "e", e.len(), n)?;
        let params = uniform(gpu, "error_feedback", &[n as u32, 0, 0, 0]);
        dispatch(
            gpu,
            enc,
            "error_feedback",
            &self.pipeline,
            &self.bgl,
            &[&params, v.buffer(), d.buffer(), e.buffer()],
            (n as u32).div_ceil(WG),
        )
    }
}
