//! The losses a training step ends with, applied to the graph's output: softmax cross-entropy
//! against class labels (one per position of the output: a classifier's `(1, 1, classes)` has
//! one, a sequence model's `(1, T, vocab)` one per token), or squared error against values. Each records the per-sample losses
//! (and correct predictions) into ring slot `StepState::slot` of the trainer's loss buffers —
//! they accumulate on the GPU and are read every few steps — and the gradient of the batch's
//! mean loss.

use super::super::op::Cx;
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// A loss over a batch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Softmax cross-entropy against labels, averaged over the batch's labels.
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
    /// Loss rows a step writes (its ring's rows): one per label, or one per sample.
    pub fn rows(self, batch: usize, positions: usize) -> usize {
        match self {
            Loss::CrossEntropy => batch * positions,
            Loss::SquaredError { .. } => batch,
        }
    }

    /// What the rows' losses are divided by for the batch's mean loss (`outputs`: values per
    /// sample, `positions`: labels per sample).
    pub fn divisor(self, batch: usize, outputs: usize, positions: usize) -> usize {
        match self {
            Loss::SquaredError { per_sample: false } => batch * outputs,
            Loss::SquaredError { per_sample: true } => batch,
            Loss::CrossEntropy => batch * positions,
        }
    }

    /// Records the loss of `y` (`batch × outputs` values, `positions` rows of logits per sample
    /// for cross-entropy) against `labels` (`batch × positions`) or `targets`, with the gradient
    /// scaled by `scale / divisor` into a new buffer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        self,
        cx: &mut Cx,
        y: &GpuBuffer<f32>,
        (outputs, positions): (usize, usize),
        labels: &GpuBuffer<u32>,
        targets: Option<&GpuBuffer<f32>>,
        scale: f32,
        out: LossOut,
    ) -> Result<GpuBuffer<f32>> {
        let batch = cx.batch;
        let dy = cx.scratch::<f32>("dy of the loss", batch * outputs)?;
        let s = scale / self.divisor(batch, outputs, positions) as f32;
        match self {
            Loss::CrossEntropy => {
                let classes = outputs / positions;
                cx.kernels.xent.encode(cx.gpu, cx.rec, y, labels, classes, s, out.loss, out.correct, &dy)?
            }
            Loss::SquaredError { .. } => {
                let t = targets.ok_or_else(|| Error::InvalidArgument("a squared-error step needs targets".into()))?;
                cx.kernels.mse.encode(cx.gpu, cx.rec, y, t, batch, outputs, s, out.loss, &dy)?
            }
        }
        Ok(dy)
    }
}
