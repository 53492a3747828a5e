//! `avgpool`: k×k average pooling with stride k on NHWC tensors, forward and backward
//! (geometry as [`super::maxpool::PoolGeom`]). Bindings: 0 params, 1 src, 2 dst.
//! Reference: [`crate::reference::avgpool`].

use super::maxpool::PoolGeom;
use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// Both directions of average pooling.
pub struct AvgPool {
    bgl: wgpu::BindGroupLayout,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
}

impl AvgPool {
    /// Builds both pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "avgpool", &[Slot::Uniform, Slot::Read, Slot::Write]);
        Ok(AvgPool {
            forward: pipeline(gpu, "avgpool", "forward", &pl, &[])?,
            backward: pipeline(gpu, "avgpool", "backward", &pl, &[])?,
            bgl,
        })
    }

    fn run(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &PoolGeom,
        back: bool,
        src: &GpuBuffer<f32>,
        dst: &GpuBuffer<f32>,
    ) -> Result<()> {
        let p = g.params()?;
        let (sl, dl) = if back { (g.out_len(), g.in_len()) } else { (g.in_len(), g.out_len()) };
        check_len("avgpool", "src", src.len(), sl)?;
        check_len("avgpool", "dst", dst.len(), dl)?;
        let params = uniform(gpu, "avgpool", &p);
        dispatch(
            gpu,
            enc,
            "avgpool",
            if back { &self.backward } else { &self.forward },
            &self.bgl,
            &[&params, src.buffer(), dst.buffer()],
            (dl as u32).div_ceil(WG),
        )
    }

    /// Records `y ← avgpool(x)`.
    pub fn encode_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &PoolGeom,
        x: &GpuBuffer<f32>,
        y: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.run(gpu, enc, g, false, x, y)
    }

    /// Records `dx ← avgpoolᵀ(dy)`.
    pub fn encode_backward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &PoolGeom,
        dy: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.run(gpu, enc, g, true, dy, dx)
    }
}
