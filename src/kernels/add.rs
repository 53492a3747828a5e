//! `add`: elementwise `y = relu?(a + b)`, or `y = relu?(a)` without `b` — residual merges,
//! gradient accumulation and standalone ReLU (NaN maps to 0, as in the GEMM epilogue: see the
//! shader). One thread per element, or per vec4 where the length is a multiple of 4 (on a CPU
//! adapter in teams, [`VecPath::Teams`]: 1.6–1.8× the rate of a vec4 per thread on llvmpipe over
//! 16M values with b and the ReLU, a scratch kernel of the same loads, arithmetic and stores).
//! Bindings: 0 params, 1 a, 2 b, 3 y.
//! Reference: [`crate::reference::add`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, VecPath};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The elementwise add kernel.
pub struct Add {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4` (a vec4 per thread) or `main_teams`, as `path` says: taken when the
    /// length is a multiple of 4.
    v4: wgpu::ComputePipeline,
    path: VecPath,
}

impl Add {
    /// Builds the pipelines, the vec4 one as the adapter runs best ([`VecPath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_path(gpu, VecPath::for_adapter(gpu))
    }

    /// Builds the pipelines with lengths that are multiples of 4 taken by `path`.
    pub fn with_path(gpu: &Gpu, path: VecPath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "add", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        let (entry, constants) = path.entry("main_v4");
        let v4 = pipeline(gpu, "add", entry, &pl, constants)?;
        Ok(Add { pipeline: pipeline(gpu, "add", "main", &pl, &[])?, v4, path, bgl })
    }

    /// The path lengths that are multiples of 4 take.
    pub fn path(&self) -> VecPath {
        self.path
    }

    /// Records `y ← relu?(a + b)` (or `relu?(a)` when `b` is `None`). `y` may not be `a` or `b`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &GpuBuffer<f32>,
        b: Option<&GpuBuffer<f32>>,
        relu: bool,
        y: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = a.len();
        if n == 0 {
            return Err(Error::Empty("add"));
        }
        if let Some(b) = b {
            check_len("add", "b", b.len(), n)?;
        }
        check_len("add", "y", y.len(), n)?;
        let params = uniform(gpu, "add", &[n as u32, relu as u32, b.is_some() as u32, 0]);
        // Without b, a stands in for it (read-only in both places).
        let b = b.unwrap_or(a);
        let (pipeline, groups) = self.path.elementwise(n as u32, &self.v4, &self.pipeline);
        dispatch(gpu, enc, "add", pipeline, &self.bgl, &[&params, a.buffer(), b.buffer(), y.buffer()], groups)
    }
}
