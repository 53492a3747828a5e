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
    /// The backward a thread per pixel (entry `backward_pixels`).
    per_pixel: bool,
    /// On the per-pixel path, `forward_pixels_v4` (a thread per four channels of a pixel) and
    /// `backward_pixels_v4` (channels four at a time), taken where the channels are a multiple
    /// of 4.
    v4: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
}

impl AvgPool {
    /// Builds both pipelines: the backward a thread per pixel on a CPU adapter, where SIMD integer
    /// division runs lane by lane (llvmpipe: the per-value coordinates cost more than the pooling,
    /// as in [`super::maxpool::MaxPool`]), a thread per value elsewhere; the forward a thread per
    /// value (its k² loads share the divisions), four channels a thread on the per-pixel path.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_thread_per_pixel(gpu, gpu.cpu_layouts())
    }

    /// Builds both pipelines of either layout (the same values).
    pub fn with_thread_per_pixel(gpu: &Gpu, per_pixel: bool) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "avgpool", &[Slot::Uniform, Slot::Read, Slot::Write]);
        let bwd = if per_pixel { "backward_pixels" } else { "backward" };
        Ok(AvgPool {
            forward: pipeline(gpu, "avgpool", "forward", &pl, &[])?,
            backward: pipeline(gpu, "avgpool", bwd, &pl, &[])?,
            v4: if per_pixel {
                Some((
                    pipeline(gpu, "avgpool", "forward_pixels_v4", &pl, &[])?,
                    pipeline(gpu, "avgpool", "backward_pixels_v4", &pl, &[])?,
                ))
            } else {
                None
            },
            per_pixel,
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
        // The backward a thread per pixel of dx or per value; the forward a thread per value, or
        // (forward_pixels_v4) per four channels of a pixel.
        let per = if self.per_pixel { dl / g.c } else { dl };
        let (pipe, threads) = match (self.v4.as_ref().filter(|_| g.c.is_multiple_of(4)), back) {
            (Some(v), false) => (&v.0, dl / 4),
            (Some(v), true) => (&v.1, per),
            (None, false) => (&self.forward, dl),
            (None, true) => (&self.backward, per),
        };
        let threads = threads as u32;
        dispatch(gpu, enc, "avgpool", pipe, &self.bgl, &[&params, src.buffer(), dst.buffer()], threads.div_ceil(WG))
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
