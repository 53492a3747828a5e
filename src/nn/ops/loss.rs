//! The losses a training step ends with, applied to the graph's output: softmax cross-entropy
//! against class labels, or squared error against values. Each records the per-sample losses
//! (and correct predictions) into ring slot `StepState::slot` of the trainer's loss buffers —
//! they accumulate on the GPU and are read every few steps — and the gradient of the batch's
//! mean loss.

use super::super::op::Cx;
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// A loss over a batch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Softmax cross-entropy against labels, averaged over the batch.
    CrossEntropy,
    /// Squared error against targets: with `per_sample`, summed over each sample's values and
    /// averaged over the batch (DCQ's feature loss); else averaged over every value (PyTorch's
    /// `MSELoss`).
    SquaredError {
        /// Sum over a sample's values.
        per_sample: bool,
    },
}

/// The loss outputs of one kind of step: ring buffers `[slots, batch]`.
pub(crate) struct LossOut<'a> {
    pub loss: &'a GpuBuffer<f32>,
    pub correct: &'a GpuBuffer<u32>,
}

impl Loss {
    /// What the per-sample losses are divided by for the batch's mean loss.
    pub fn divisor(self, batch: usize, outputs: usize) -> usize {
        match self {
            Loss::SquaredError { per_sample: false } => batch * outputs,
            _ => batch,
        }
    }

    /// Records the loss of `y` (`batch × outputs` values) against `labels` or `targets`, with
    /// the gradient scaled by `scale / divisor` into a new buffer.
    pub(crate) fn record(
        self,
        cx: &mut Cx,
        y: &GpuBuffer<f32>,
        outputs: usize,
        labels: &GpuBuffer<u32>,
        targets: Option<&GpuBuffer<f32>>,
        scale: f32,
        out: LossOut,
    ) -> Result<GpuBuffer<f32>> {
        let batch = cx.batch;
        let dy = cx.scratch::<f32>("dy of the loss", batch * outputs)?;
        let s = scale / self.divisor(batch, outputs) as f32;
        match self {
            Loss::CrossEntropy => {
                cx.kernels.xent.encode(cx.gpu, cx.rec, y, labels, outputs, s, out.loss, out.correct, &dy)?
            }
            Loss::SquaredError { .. } => {
                let t = targets.ok_or_else(|| Error::InvalidArgument("a squared-error step needs targets".into()))?;
                cx.kernels.mse.encode(cx.gpu, cx.rec, y, t, batch, outputs, s, out.loss, &dy)?
            }
        }
        Ok(dy)
    }
}
