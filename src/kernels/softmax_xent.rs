//! `softmax_xent`: softmax cross-entropy forward and backward in one pass: per-row loss, whether
//! the argmax was right, and `dz = (softmax(z) − onehot(t))·grad_scale`. On a CPU adapter a
//! thread per row; on a GPU a workgroup of 64 threads per row, which load the row side by side
//! while one of them adds it up in the same order, so both layouts give the same bits
//! ([`SoftmaxXent::with_workgroup_per_row`]).
//! `loss` and `correct` may hold several blocks of `rows` values (a ring): a step writes block
//! [`crate::record::StepState::slot`] modulo their count (block 0 outside a step plan).
//! Bindings: 0 params, 1 logits, 2 labels, 3 loss, 4 correct, 5 dz, 6 step.
//! Reference: [`crate::reference::softmax_xent`].

use super::{check_len, dispatch, layouts, pipeline, row_launch, uniform, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct XentParams {
    rows: u32,
    classes: u32,
    grad_scale: f32,
    ring: u32,
}
const _: () = assert!(std::mem::size_of::<XentParams>() == 16);

/// The loss kernel.
pub struct SoftmaxXent {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_rows` (a workgroup per row) where built (a GPU's layout).
    per_row_workgroup: Option<wgpu::ComputePipeline>,
}

impl SoftmaxXent {
    /// Builds the pipeline of the adapter's layout: a thread per row on a CPU adapter, a
    /// workgroup per row elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_workgroup_per_row(gpu, !gpu.cpu_layouts())
    }

    /// Builds the pipeline of either layout (the same bits): a workgroup of 64 threads per row
    /// (`per_row`; on a GPU, where a thread per row of a batch of 128 fills one workgroup and
    /// loads a row apart), or a thread per row.
    pub fn with_workgroup_per_row(gpu: &Gpu, per_row: bool) -> Result<Self> {
        let slots = [Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Write, Slot::Write, Slot::Uniform];
        let (bgl, pl) = layouts(gpu, "softmax_xent", &slots);
        Ok(SoftmaxXent {
            pipeline: pipeline(gpu, "softmax_xent", "main", &pl, &[])?,
            per_row_workgroup: if per_row { Some(pipeline(gpu, "softmax_xent", "main_rows", &pl, &[])?) } else { None },
            bgl,
        })
    }

    /// Records the loss of `logits` `[rows, classes]` against `labels`, and its gradient;
    /// `loss` and `correct` hold a whole number of blocks of `rows` values (see the module docs).
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        logits: &GpuBuffer<f32>,
        labels: &GpuBuffer<u32>,
        classes: usize,
        grad_scale: f32,
        loss: &GpuBuffer<f32>,
        correct: &GpuBuffer<u32>,
        dz: &GpuBuffer<f32>,
    ) -> Result<()> {
        if classes == 0 || labels.is_empty() {
            return Err(Error::Empty("softmax_xent"));
        }
        let rows = labels.len();
        check_len("softmax_xent", "logits", logits.len(), rows * classes)?;
        let ring = super::ring_blocks("softmax_xent", "loss", loss.len(), rows)?;
        check_len("softmax_xent", "correct", correct.len(), ring * rows)?;
        check_len("softmax_xent", "dz", dz.len(), rows * classes)?;
        let p = XentParams { rows: rows as u32, classes: classes as u32, grad_scale, ring: ring as u32 };
        let params = uniform(gpu, "softmax_xent", &p);
        let step = enc.step_state(gpu).clone();
        let bufs = [&params, logits.buffer(), labels.buffer(), loss.buffer(), correct.buffer(), dz.buffer(), &step];
        let (pipeline, groups) = row_launch(self.per_row_workgroup.as_ref(), None, &self.pipeline, rows);
        dispatch(gpu, enc, "softmax_xent", pipeline, &self.bgl, &bufs, groups)
    }
}
