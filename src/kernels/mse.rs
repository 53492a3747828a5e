//! `mse`: squared-error loss against real-valued targets with its gradient, one thread per row
//! (the loss of divide-and-conquer distillation, [`crate::nn::dcq`]). Bindings: 0 params, 1 y,
//! 2 t, 3 loss, 4 dy, 5 step. `loss` may hold several blocks of `rows` values, as
//! [`super::softmax_xent`]'s. Reference: [`crate::reference::mse`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct MseParams {
    rows: u32,
    cols: u32,
    grad_scale2: f32,
    ring: u32,
}

/// The squared-error kernel.
pub struct Mse {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Mse {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) =
            layouts(gpu, "mse", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Write, Slot::Uniform]);
        Ok(Mse { pipeline: pipeline(gpu, "mse", "main", &pl, &[])?, bgl })
    }

    /// Records `loss[b] ← Σ_j (y − t)²` and `dy ← 2·grad_scale·(y − t)` for `rows` rows of
    /// `cols` values.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        y: &GpuBuffer<f32>,
        t: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        grad_scale: f32,
        loss: &GpuBuffer<f32>,
        dy: &GpuBuffer<f32>,
    ) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Err(Error::Empty("mse"));
        }
        for (n, b) in [("y", y), ("t", t), ("dy", dy)] {
            check_len("mse", n, b.len(), rows * cols)?;
        }
        let ring = super::ring_blocks("mse", "loss", loss.len(), rows)?;
        let p = MseParams { rows: rows as u32, cols: cols as u32, grad_scale2: 2.0 * grad_scale, ring: ring as u32 };
        let params = uniform(gpu, "mse", &p);
        let step = enc.step_state(gpu).clone();
        dispatch(
            gpu,
            enc,
            "mse",
            &self.pipeline,
            &self.bgl,
            &[&params, y.buffer(), t.buffer(), loss.buffer(), dy.buffer(), &step],
            (rows as u32).div_ceil(WG),
        )
    }
}
