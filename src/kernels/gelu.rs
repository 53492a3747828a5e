//! `gelu`: GELU in its tanh form, elementwise, and its backward. Bindings: 0 params, 1 x, 2 dy,
//! 3 out. Reference: [`crate::reference::gelu`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The GELU kernels.
pub struct Gelu {
    bgl: wgpu::BindGroupLayout,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    dummy: GpuBuffer<f32>,
}

impl Gelu {
    /// Builds both pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "gelu", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        Ok(Gelu {
            forward: pipeline(gpu, "gelu", "forward", &pl, &[])?,
            backward: pipeline(gpu, "gelu", "backward", &pl, &[])?,
            bgl,
            dummy: GpuBuffer::zeros(gpu, "gelu dummy", 4)?,
        })
    }

    fn n(x: &GpuBuffer<f32>) -> Result<u32> {
        match u32::try_from(x.len()) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::InvalidArgument(format!("gelu: {} values", x.len()))),
        }
    }

    /// Records `y ← gelu(x)`.
    pub fn encode_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        y: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = Self::n(x)?;
        check_len("gelu", "y", y.len(), x.len())?;
        let u = uniform(gpu, "gelu", &[n, 0, 0, 0]);
        let bufs = [&u, x.buffer(), self.dummy.buffer(), y.buffer()];
        dispatch(gpu, enc, "gelu", &self.forward, &self.bgl, &bufs, n.div_ceil(WG))
    }

    /// Records `dx ← dy · gelu'(x)`.
    pub fn encode_backward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        dy: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = Self::n(x)?;
        check_len("gelu", "dy", dy.len(), x.len())?;
        check_len("gelu", "dx", dx.len(), x.len())?;
        let u = uniform(gpu, "gelu", &[n, 0, 0, 0]);
        let bufs = [&u, x.buffer(), dy.buffer(), dx.buffer()];
        dispatch(gpu, enc, "gelu", &self.backward, &self.bgl, &bufs, n.div_ceil(WG))
    }
}
