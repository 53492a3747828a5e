//! `layernorm`: layer normalization of each row of a `[rows, cols]` tensor with learnable γ and β
//! (`affine` = γ then β); the forward keeps `(mean, rstd)` per row for the backward, which writes
//! dx and `prod` `[rows, 2·cols]` = `(dy·x̂, dy)`, whose column sums (`col_sum`) are the gradient
//! of `affine` (dγ then dβ). On a CPU adapter a thread per row (through vec4s where `cols` is a
//! multiple of 4: the same arithmetic in the same order); on a GPU a workgroup of 64 threads per
//! row, which load the row side by side while one of them adds it up in the same order, so both
//! layouts give the same bits ([`LayerNorm::with_workgroup_per_row`]). Bindings: 0 params, 1 x,
//! 2 affine, 3 stats, 4 y, 5 dy, 6 dx, 7 prod. Reference: [`crate::reference::layernorm`].

use super::{check_len, dispatch, layouts, pipeline, row_launch, uniform, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// ε added to the variance.
pub const EPS: f32 = 1e-5;

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct LnParams {
    rows: u32,
    cols: u32,
    eps: f32,
    pad: u32,
}

/// The layer normalization kernels.
pub struct LayerNorm {
    bgl: wgpu::BindGroupLayout,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    /// Entries `forward_v4` and `backward_v4`, taken where `cols` is a multiple of 4.
    forward_v4: wgpu::ComputePipeline,
    backward_v4: wgpu::ComputePipeline,
    /// Entries `forward_rows` and `backward_rows` (a workgroup per row), taken for any `cols`
    /// where built (a GPU's layout).
    per_row_workgroup: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    /// Stand-ins for unused bindings: one read-only, two writable (a buffer may not be bound
    /// read-only and writable in one dispatch).
    dummies: [GpuBuffer<f32>; 3],
}

impl LayerNorm {
    /// Builds the pipelines of the adapter's layout: a thread per row on a CPU adapter, a
    /// workgroup per row elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_workgroup_per_row(gpu, !gpu.cpu_layouts())
    }

    /// Builds the pipelines of either layout (the same bits): a workgroup of 64 threads per row
    /// (`per_row`; on a GPU, where a thread per row of the GPT's 1,024 rows fills 4 workgroups
    /// and loads a row apart), or a thread per row.
    pub fn with_workgroup_per_row(gpu: &Gpu, per_row: bool) -> Result<Self> {
        let slots =
            [Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Write, Slot::Read, Slot::Write, Slot::Write];
        let (bgl, pl) = layouts(gpu, "layernorm", &slots);
        let d = |l| GpuBuffer::zeros(gpu, l, 4);
        Ok(LayerNorm {
            forward: pipeline(gpu, "layernorm", "forward", &pl, &[])?,
            backward: pipeline(gpu, "layernorm", "backward", &pl, &[])?,
            forward_v4: pipeline(gpu, "layernorm", "forward_v4", &pl, &[])?,
            backward_v4: pipeline(gpu, "layernorm", "backward_v4", &pl, &[])?,
            per_row_workgroup: if per_row {
                Some((
                    pipeline(gpu, "layernorm", "forward_rows", &pl, &[])?,
                    pipeline(gpu, "layernorm", "backward_rows", &pl, &[])?,
                ))
            } else {
                None
            },
            bgl,
            dummies: [d("layernorm dummy r")?, d("layernorm dummy w0")?, d("layernorm dummy w1")?],
        })
    }

    fn params(rows: usize, cols: usize) -> Result<LnParams> {
        if rows == 0 || cols == 0 || rows.checked_mul(cols).is_none_or(|n| n > u32::MAX as usize) {
            return Err(Error::InvalidArgument(format!("layernorm: {rows}x{cols}")));
        }
        Ok(LnParams { rows: rows as u32, cols: cols as u32, eps: EPS, pad: 0 })
    }

    /// Records `y ← layernorm(x)` and the row statistics (`stats`, `2·rows`).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        affine: &GpuBuffer<f32>,
        stats: &GpuBuffer<f32>,
        y: &GpuBuffer<f32>,
        (rows, cols): (usize, usize),
    ) -> Result<()> {
        let p = Self::params(rows, cols)?;
        check_len("layernorm", "x", x.len(), rows * cols)?;
        check_len("layernorm", "y", y.len(), rows * cols)?;
        check_len("layernorm", "affine", affine.len(), 2 * cols)?;
        check_len("layernorm", "stats", stats.len(), 2 * rows)?;
        let u = uniform(gpu, "layernorm", &p);
        let [r, w0, w1] = &self.dummies;
        let bufs = [&u, x.buffer(), affine.buffer(), stats.buffer(), y.buffer(), r.buffer(), w0.buffer(), w1.buffer()];
        let (pipeline, groups) = row_launch(
            self.per_row_workgroup.as_ref().map(|(forward, _)| forward),
            cols.is_multiple_of(4).then_some(&self.forward_v4),
            &self.forward,
            rows,
        );
        dispatch(gpu, enc, "layernorm", pipeline, &self.bgl, &bufs, groups)
    }

    /// Records `dx` and `prod` `[rows, 2·cols]` = `(dy·x̂, dy)` from the forward's `stats`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_backward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        affine: &GpuBuffer<f32>,
        stats: &GpuBuffer<f32>,
        dy: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
        prod: &GpuBuffer<f32>,
        (rows, cols): (usize, usize),
    ) -> Result<()> {
        let p = Self::params(rows, cols)?;
        for (n, b) in [("x", x), ("dy", dy), ("dx", dx)] {
            check_len("layernorm", n, b.len(), rows * cols)?;
        }
        check_len("layernorm", "prod", prod.len(), 2 * rows * cols)?;
        check_len("layernorm", "affine", affine.len(), 2 * cols)?;
        check_len("layernorm", "stats", stats.len(), 2 * rows)?;
        let u = uniform(gpu, "layernorm", &p);
        let w = &self.dummies[1];
        let bufs =
            [&u, x.buffer(), affine.buffer(), stats.buffer(), w.buffer(), dy.buffer(), dx.buffer(), prod.buffer()];
        let (pipeline, groups) = row_launch(
            self.per_row_workgroup.as_ref().map(|(_, backward)| backward),
            cols.is_multiple_of(4).then_some(&self.backward_v4),
            &self.backward,
            rows,
        );
        dispatch(gpu, enc, "layernorm", pipeline, &self.bgl, &bufs, groups)
    }
}
