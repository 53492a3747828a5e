//! `relu_backward`: `dx = dy · [y > 0]` (the mask of a ReLU fused into a GEMM epilogue), or
//! `dx = (dy + dy_b) · [y > 0]` for a gradient that comes as two contributions not yet added
//! ([`ReluBackward::encode_sum`]: `add`'s sum and the mask in one launch, the same bits).
//! One thread per element, or per vec4 where the length is a multiple of 4 (on a CPU adapter in
//! teams, [`VecPath::Teams`], as `add`). Bindings: 0 params, 1 y, 2 dy, 3 dx, 4 dy_b. Reference:
//! [`crate::reference::relu_backward`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, VecPath};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The ReLU backward kernel.
pub struct ReluBackward {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4` (a vec4 per thread) or `main_teams`, as `path` says: taken when the
    /// length is a multiple of 4.
    v4: wgpu::ComputePipeline,
    path: VecPath,
}

impl ReluBackward {
    /// Builds the pipelines, the vec4 one as the adapter runs best ([`VecPath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_path(gpu, VecPath::for_adapter(gpu))
    }

    /// Builds the pipelines with lengths that are multiples of 4 taken by `path`.
    pub fn with_path(gpu: &Gpu, path: VecPath) -> Result<Self> {
        let (bgl, pl) =
            layouts(gpu, "relu_backward", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Read]);
        let (entry, constants) = path.entry("main_v4");
        Ok(ReluBackward {
            pipeline: pipeline(gpu, "relu_backward", "main", &pl, &[])?,
            v4: pipeline(gpu, "relu_backward", entry, &pl, constants)?,
            path,
            bgl,
        })
    }

    /// The path lengths that are multiples of 4 take.
    pub fn path(&self) -> VecPath {
        self.path
    }

    /// Records `dx ← dy · [y > 0]`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        y: &GpuBuffer<f32>,
        dy: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, y, dy, None, dx)
    }

    /// Records `dx ← (dy + dy_b) · [y > 0]`: the bits of `add`'s `dy + dy_b` (no ReLU) masked by
    /// [`ReluBackward::encode`], in one launch. `dx` may not be `dy` or `dy_b`.
    pub fn encode_sum(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        y: &GpuBuffer<f32>,
        dy: &GpuBuffer<f32>,
        dy_b: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, y, dy, Some(dy_b), dx)
    }

    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        y: &GpuBuffer<f32>,
        dy: &GpuBuffer<f32>,
        dy_b: Option<&GpuBuffer<f32>>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = y.len();
        check_len("relu_backward", "dy", dy.len(), n)?;
        if let Some(b) = dy_b {
            check_len("relu_backward", "dy_b", b.len(), n)?;
        }
        check_len("relu_backward", "dx", dx.len(), n)?;
        let params = uniform(gpu, "relu_backward", &[n as u32, dy_b.is_some() as u32, 0, 0]);
        // Without dy_b, dy stands in for it (read-only in both places).
        let b = dy_b.unwrap_or(dy);
        let (pipeline, groups) = self.path.elementwise(n as u32, &self.v4, &self.pipeline);
        dispatch(
            gpu,
            enc,
            "relu_backward",
            pipeline,
            &self.bgl,
            &[&params, y.buffer(), dy.buffer(), dx.buffer(), b.buffer()],
            groups,
        )
    }
}
