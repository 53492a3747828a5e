//! `maxpool`: k×k max pooling with stride k on NHWC tensors, forward (value and argmax) and
//! backward (gather through the argmax). Bindings: 0 params, 1 src, 2 dst, 3 arg.
//! Reference: [`crate::reference::maxpool`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// Pooling geometry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    /// Batch.
    pub batch: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Window edge and stride.
    pub k: usize,
}

impl PoolGeom {
    /// The kernels' uniform block; an error when the output would be empty.
    pub(crate) fn params(&self) -> Result<PoolParams> {
        if self.k == 0 || self.oh() == 0 || self.ow() == 0 || self.batch == 0 || self.c == 0 {
            return Err(Error::InvalidArgument(format!("pooling geometry gives an empty output: {self:?}")));
        }
        Ok(PoolParams {
            batch: self.batch as u32,
            h: self.h as u32,
            w: self.w as u32,
            c: self.c as u32,
            k: self.k as u32,
            oh: self.oh() as u32,
            ow: self.ow() as u32,
            total: self.out_len() as u32,
        })
    }

    /// Output height (a partial window at the edge is dropped).
    pub fn oh(&self) -> usize {
        self.h / self.k
    }
    /// Output width.
    pub fn ow(&self) -> usize {
        self.w / self.k
    }
    /// Output elements.
    pub fn out_len(&self) -> usize {
        self.batch * self.oh() * self.ow() * self.c
    }
    /// Input elements.
    pub fn in_len(&self) -> usize {
        self.batch * self.h * self.w * self.c
    }
}

/// The uniform block of both pooling kernels (`PoolParams` in `shaders/common/pool.wgsl`).
#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
pub(crate) struct PoolParams {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    oh: u32,
    ow: u32,
    total: u32,
}
const _: () = assert!(std::mem::size_of::<PoolParams>() == 32);

/// Both directions of max pooling.
pub struct MaxPool {
    bgl: wgpu::BindGroupLayout,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    /// A thread per pixel (entries `forward_pixels`, `backward_pixels`).
    per_pixel: bool,
    /// On the per-pixel path, `forward_pixels_v4` and `backward_pixels_v4` (channels four at a
    /// time), taken where the channels are a multiple of 4.
    v4: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
}

impl MaxPool {
    /// Builds both pipelines: a thread per pixel on a CPU adapter, where SIMD integer division
    /// runs lane by lane (llvmpipe: the per-value coordinates cost more than the pooling), a
    /// thread per value elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_thread_per_pixel(gpu, gpu.cpu_layouts())
    }

    /// Builds both pipelines of either layout (the same values and indices).
    pub fn with_thread_per_pixel(gpu: &Gpu, per_pixel: bool) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "maxpool", &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write]);
        let (fwd, bwd) = if per_pixel { ("forward_pixels", "backward_pixels") } else { ("forward", "backward") };
        Ok(MaxPool {
            forward: pipeline(gpu, "maxpool", fwd, &pl, &[])?,
            backward: pipeline(gpu, "maxpool", bwd, &pl, &[])?,
            v4: if per_pixel {
                Some((
                    pipeline(gpu, "maxpool", "forward_pixels_v4", &pl, &[])?,
                    pipeline(gpu, "maxpool", "backward_pixels_v4", &pl, &[])?,
                ))
            } else {
                None
            },
            per_pixel,
            bgl,
        })
    }

    /// Records `(y, arg) ← maxpool(x)`.
    pub fn encode_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &PoolGeom,
        x: &GpuBuffer<f32>,
        y: &GpuBuffer<f32>,
        arg: &GpuBuffer<u32>,
    ) -> Result<()> {
        let p = g.params()?;
        check_len("maxpool", "x", x.len(), g.in_len())?;
        check_len("maxpool", "y", y.len(), g.out_len())?;
        check_len("maxpool", "arg", arg.len(), g.out_len())?;
        let params = uniform(gpu, "maxpool", &p);
        dispatch(
            gpu,
            enc,
            "maxpool",
            self.v4.as_ref().filter(|_| g.c.is_multiple_of(4)).map_or(&self.forward, |v| &v.0),
            &self.bgl,
            &[&params, x.buffer(), y.buffer(), arg.buffer()],
            if self.per_pixel { (g.batch * g.oh() * g.ow()) as u32 } else { p.total }.div_ceil(WG),
        )
    }

    /// Records `dx ← maxpoolᵀ(dy)` through the forward pass's `arg`.
    pub fn encode_backward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &PoolGeom,
        dy: &GpuBuffer<f32>,
        arg: &GpuBuffer<u32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        let p = g.params()?;
        check_len("maxpool", "dy", dy.len(), g.out_len())?;
        check_len("maxpool", "arg", arg.len(), g.out_len())?;
        check_len("maxpool", "dx", dx.len(), g.in_len())?;
        let params = uniform(gpu, "maxpool", &p);
        let buffers = [&params, dy.buffer(), dx.buffer(), arg.buffer()];
        let threads = if self.per_pixel { g.batch * g.h * g.w } else { g.in_len() } as u32;
        let backward = self.v4.as_ref().filter(|_| g.c.is_multiple_of(4)).map_or(&self.backward, |v| &v.1);
        dispatch(gpu, enc, "maxpool", backward, &self.bgl, &buffers, threads.div_ceil(WG))
    }
}
