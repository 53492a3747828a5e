//! `gelu`: GELU in its tanh form, elementwise, and its backward. A thread per value, or per vec4
//! where the length is a multiple of 4 (on a CPU adapter in teams, [`VecPath::Teams`]: on
//! llvmpipe a GPT step's GELU launches of a thread per value spent most of their time starting
//! workgroups). Bindings: 0 params, 1 x, 2 dy, 3 out. Reference: [`crate::reference::gelu`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, VecPath};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The GELU kernels.
pub struct Gelu {
    bgl: wgpu::BindGroupLayout,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    /// Entry `main_v4` (a vec4 per thread) or `main_teams`, as `path` says, for both directions:
    /// taken when the length is a multiple of 4.
    v4: wgpu::ComputePipeline,
    path: VecPath,
    dummy: GpuBuffer<f32>,
}

impl Gelu {
    /// Builds the pipelines, the vec4 one as the adapter runs best ([`VecPath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_path(gpu, VecPath::for_adapter(gpu))
    }

    /// Builds the pipelines with lengths that are multiples of 4 taken by `path`.
    pub fn with_path(gpu: &Gpu, path: VecPath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "gelu", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        let (entry, constants) = path.entry("main_v4");
        Ok(Gelu {
            forward: pipeline(gpu, "gelu", "forward", &pl, &[])?,
            backward: pipeline(gpu, "gelu", "backward", &pl, &[])?,
            v4: pipeline(gpu, "gelu", entry, &pl, constants)?,
            path,
            bgl,
            dummy: GpuBuffer::zeros(gpu, "gelu dummy", 4)?,
        })
    }

    /// The path lengths that are multiples of 4 take.
    pub fn path(&self) -> VecPath {
        self.path
    }

    /// Records the launch of `backward`'s direction over `n` values.
    fn run(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        n: u32,
        backward: bool,
        bufs: [&wgpu::Buffer; 3],
    ) -> Result<()> {
        let u = uniform(gpu, "gelu", &[n, backward as u32, 0, 0]);
        let bufs = [&u, bufs[0], bufs[1], bufs[2]];
        let scalar = if backward { &self.backward } else { &self.forward };
        let (pipeline, groups) = self.path.elementwise(n, &self.v4, scalar);
        dispatch(gpu, enc, "gelu", pipeline, &self.bgl, &bufs, groups)
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
        self.run(gpu, enc, n, false, [x.buffer(), self.dummy.buffer(), y.buffer()])
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
        self.run(gpu, enc, n, true, [x.buffer(), dy.buffer(), dx.buffer()])
    }
}
