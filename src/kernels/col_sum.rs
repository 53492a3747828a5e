//! `col_sum`: column sums of a `[rows, cols]` tensor in row order (bias gradients).
//! Bindings: 0 params, 1 x, 2 out. Reference: [`crate::reference::col_sum`].

use super::{bind, check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The column-sum kernel.
pub struct ColSum {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl ColSum {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "col_sum", &[Slot::Uniform, Slot::Read, Slot::Write]);
        Ok(ColSum { pipeline: pipeline(gpu, "col_sum", "main", &pl, &[])?, bgl })
    }

    /// Records `out[j] ← Σ_i x[i][j]`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Err(Error::Empty("col_sum"));
        }
        check_len("col_sum", "x", x.len(), rows * cols)?;
        check_len("col_sum", "out", out.len(), cols)?;
        let params = uniform(gpu, "col_sum", &[rows as u32, cols as u32, 0, 0]);
        let group = bind(gpu, "col_sum", &self.bgl, &[&params, x.buffer(), out.buffer()]);
        dispatch(enc, "col_sum", &self.pipeline, &group, (cols as u32).div_ceil(WG))
    }
}
