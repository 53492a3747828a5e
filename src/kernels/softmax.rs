//! `softmax`: attention's scaled, optionally causal row softmax of a `[rows, cols]` score
//! tensor (row `r` is query `r % queries`), and its backward `ds = scale · p ⊙ (dp − Σ p·dp)`.
//! On a CPU adapter a thread per row (through vec4s where `cols` is a multiple of 4: the same
//! arithmetic in the same order); on a GPU a workgroup of 64 threads per row, which load the row
//! side by side while one of them adds it up in the same order, so both layouts give the same
//! bits ([`Softmax::with_workgroup_per_row`]). Bindings: 0 params, 1 x (the scores, or the
//! backward's p), 2 dp, 3 out.
//! Reference: [`crate::reference::softmax`].

use super::{check_len, dispatch, layouts, pipeline, row_launch, uniform, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct SoftmaxParams {
    rows: u32,
    cols: u32,
    queries: u32,
    causal: u32,
    scale: f32,
    pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<SoftmaxParams>() == 32);

/// A softmax's geometry: `rows` rows of `cols` keys, row `r` being query `r % queries`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SoftmaxShape {
    /// Rows (batches · heads · queries).
    pub rows: usize,
    /// Keys per row.
    pub cols: usize,
    /// Queries per batch (the causal mask's period).
    pub queries: usize,
    /// Mask keys past the query.
    pub causal: bool,
    /// Applied to the scores before the softmax (1/√d in attention).
    pub scale: f32,
}

/// The attention softmax kernels.
pub struct Softmax {
    bgl: wgpu::BindGroupLayout,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    /// Entries `forward_v4` and `backward_v4`, taken where `cols` is a multiple of 4.
    forward_v4: wgpu::ComputePipeline,
    backward_v4: wgpu::ComputePipeline,
    /// Entries `forward_rows` and `backward_rows` (a workgroup per row), taken for any `cols`
    /// where built (a GPU's layout).
    per_row_workgroup: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    dummy: GpuBuffer<f32>,
}

impl Softmax {
    /// Builds the pipelines of the adapter's layout: a thread per row on a CPU adapter, a
    /// workgroup per row elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_workgroup_per_row(gpu, !gpu.cpu_layouts())
    }

    /// Builds the pipelines of either layout (the same bits): a workgroup of 64 threads per row
    /// (`per_row`; on a GPU, where a thread per row of the GPT's 4,096 rows of scores fills 16
    /// workgroups and loads a row apart), or a thread per row.
    pub fn with_workgroup_per_row(gpu: &Gpu, per_row: bool) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "softmax", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        Ok(Softmax {
            forward: pipeline(gpu, "softmax", "forward", &pl, &[])?,
            backward: pipeline(gpu, "softmax", "backward", &pl, &[])?,
            forward_v4: pipeline(gpu, "softmax", "forward_v4", &pl, &[])?,
            backward_v4: pipeline(gpu, "softmax", "backward_v4", &pl, &[])?,
            per_row_workgroup: if per_row {
                Some((
                    pipeline(gpu, "softmax", "forward_rows", &pl, &[])?,
                    pipeline(gpu, "softmax", "backward_rows", &pl, &[])?,
                ))
            } else {
                None
            },
            bgl,
            dummy: GpuBuffer::zeros(gpu, "softmax dummy", 4)?,
        })
    }

    fn params(s: &SoftmaxShape) -> Result<SoftmaxParams> {
        let n = s.rows.checked_mul(s.cols).filter(|&n| n > 0 && n <= u32::MAX as usize);
        if n.is_none() || s.queries == 0 || !s.scale.is_finite() {
            return Err(Error::InvalidArgument(format!("softmax: unusable shape {s:?}")));
        }
        Ok(SoftmaxParams {
            rows: s.rows as u32,
            cols: s.cols as u32,
            queries: s.queries as u32,
            causal: s.causal as u32,
            scale: s.scale,
            pad: [0; 3],
        })
    }

    /// Records `p ← softmax(scale · x)` per row.
    pub fn encode_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        s: &SoftmaxShape,
        x: &GpuBuffer<f32>,
        p: &GpuBuffer<f32>,
    ) -> Result<()> {
        let params = Self::params(s)?;
        check_len("softmax", "x", x.len(), s.rows * s.cols)?;
        check_len("softmax", "p", p.len(), s.rows * s.cols)?;
        let u = uniform(gpu, "softmax", &params);
        let bufs = [&u, x.buffer(), self.dummy.buffer(), p.buffer()];
        let (pipeline, groups) = row_launch(
            self.per_row_workgroup.as_ref().map(|(forward, _)| forward),
            s.cols.is_multiple_of(4).then_some(&self.forward_v4),
            &self.forward,
            s.rows,
        );
        dispatch(gpu, enc, "softmax", pipeline, &self.bgl, &bufs, groups)
    }

    /// Records `ds ← scale · p ⊙ (dp − Σ p·dp)` per row.
    pub fn encode_backward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        s: &SoftmaxShape,
        p: &GpuBuffer<f32>,
        dp: &GpuBuffer<f32>,
        ds: &GpuBuffer<f32>,
    ) -> Result<()> {
        let params = Self::params(s)?;
        for (n, b) in [("p", p), ("dp", dp), ("ds", ds)] {
            check_len("softmax", n, b.len(), s.rows * s.cols)?;
        }
        let u = uniform(gpu, "softmax", &params);
        let bufs = [&u, p.buffer(), dp.buffer(), ds.buffer()];
        let (pipeline, groups) = row_launch(
            self.per_row_workgroup.as_ref().map(|(_, backward)| backward),
            s.cols.is_multiple_of(4).then_some(&self.backward_v4),
            &self.backward,
            s.rows,
        );
        dispatch(gpu, enc, "softmax", pipeline, &self.bgl, &bufs, groups)
    }
}
