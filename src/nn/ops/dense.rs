//! Dense: a Linear layer applied at every position, over the last dimension: `(h, w, c)` →
//! `(h, w, outputs)`, `y = relu?(x·Wᵀ + b)` with `W` `[outputs, c]` and one GEMM over all
//! `batch·h·w` rows. A transformer's projections are Dense layers; their three products run as
//! the layer's precision policy says ([`crate::nn::gemm`]), a row being a token (so per-row
//! scales are per token).

use super::super::gemm::{self, GemmSaved};
use super::super::op::{Backward, Cx, Forward, NodeCx, Op, ParamSpec, Shape};
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// A position-wise fully connected layer with an optional fused ReLU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Dense {
    /// Output features per position.
    pub outputs: usize,
    /// ReLU fused into the GEMM epilogue.
    pub relu: bool,
}

impl Op for Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        let (h, w, _) = super::one("dense", inputs)?;
        if self.outputs == 0 {
            return Err(Error::InvalidArgument("dense: a layer needs at least one output".into()));
        }
        Ok((h, w, self.outputs))
    }

    fn params(&self, inputs: &[Shape]) -> Vec<ParamSpec> {
        gemm::params(self.outputs, inputs[0].2, self.relu, true)
    }

    fn is_gemm(&self) -> bool {
        true
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        self.relu
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let (h, w, c) = node.inputs[0];
        let rows = cx.batch * h * w;
        let (y, saved) = gemm::forward(cx, node, x[0], None, rows, c, self.outputs, self.relu)?;
        Ok(Forward { y, backward: saved.map(|s| Box::new(DenseBackward(s)) as Box<dyn Backward>) })
    }
}

struct DenseBackward(GemmSaved);

impl Backward for DenseBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        node: &NodeCx,
        dy: &GpuBuffer<f32>,
        need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        Ok(vec![gemm::backward(cx, node, self.0, dy, need[0], None)?])
    }
}
