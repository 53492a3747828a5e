//! `add`: elementwise `y = relu?(a + b)`, or `y = relu?(a)` without `b` — residual merges,
//! gradient accumulation and standalone ReLU (NaN maps to 0, as in the GEMM epilogue: see the
//! shader). One thread per element, or per vec4 where the length is a multiple of 4. Bindings: 0
//! params, 1 a, 2 b, 3 y.
//! Reference: [`crate::reference::add`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The elementwise add kernel.
pub struct Add {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4`: a vec4 per thread, taken when the length is a multiple of 4.
    v4: wgpu::ComputePipeline,
}

impl Add {
    /// Builds the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "add", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        Ok(Add {
            pipeline: pipeline(gpu, "add", "main", &pl, &[])?,
            v4: pipeline(gpu, "add", "main_v4", &pl, &[])?,
            bgl,
        })
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
        let v4 = n.is_multiple_of(4);
        dispatch(
            gpu,
            enc,
            "add",
            if v4 { &self.v4 } else { &self.pipeline },
            &self.bgl,
            &[&params, a.buffer(), b.buffer(), y.buffer()],
            (n as u32 / if v4 { 4 } else { 1 }).div_ceil(WG),
        )
    }
}
