//! `scale`: group maxima to scales and exact inverse scales.
//!
//! Math: the format's rule ([`crate::format::group_scale`]: `s = amax · (1/qmax)`, or rounded up
//! to a power of two, or NVFP4's two levels from the tensor's maximum, which follows the group
//! maxima in `amax`), `inv = recip_rne(s)` (integer long division, correctly rounded on every
//! device); groups with a zero or subnormal `s` get `(0, 0)` (`format::scale`).
//! Layout: one thread per group. Bindings: 0 `QuantParams` (`n_groups`), 1 amax (read u32),
//! 2 scales (read-write f32), 3 inv (read-write f32). Reference: [`crate::reference::scale`].

use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot, WG};
use crate::format::Format;
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The scale kernel for one format.
pub struct Scale {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Scale {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "scale", &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write]);
        Ok(Scale { format, pipeline: pipeline(gpu, "scale", "main", &pl, &format_constant(format))?, bgl })
    }

    /// The format it was built for.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Records `(scales, inv) ← scale(amax)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        amax: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
        inv: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = scales.len();
        let tensor = self.format.needs_tensor_amax();
        check_len("scale", "amax", amax.len(), n + tensor as usize)?;
        check_len("scale", "inv", inv.len(), n)?;
        let p = QuantParams { n_groups: n as u32, tensor_slot: tensor as u32, ..Default::default() };
        let params = uniform(gpu, "scale params", &p);
        dispatch(
            gpu,
            enc,
            "scale",
            &self.pipeline,
            &self.bgl,
            &[&params, amax.buffer(), scales.buffer(), inv.buffer()],
            (n as u32).div_ceil(WG),
        )
    }
}
