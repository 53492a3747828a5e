//! ReLU as a node of its own: `y = max(x, 0)` (NaN becomes 0, as everywhere in lowbit; see the
//! `add` kernel), backward `dx = dy·[y > 0]`. Linear, Conv, BatchNorm and Add fuse theirs.

use super::super::op::{summed_gradient, Backward, Cx, Forward, NodeCx, Op, Shape};
use crate::tensor::GpuBuffer;
use crate::Result;

/// A standalone ReLU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Relu;

impl Op for Relu {
    fn kind(&self) -> &'static str {
        "relu"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        super::one("relu", inputs)
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        true
    }

    fn forward(&self, cx: &mut Cx, _node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let y = cx.scratch::<f32>("relu y", x[0].len())?;
        cx.kernels.add.encode(cx.gpu, cx.rec, x[0], None, true, &y)?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        cx.save(y.bytes(), y.bytes());
        Ok(Forward { y: y.clone(), backward: Some(Box::new(ReluBackward(y))) })
    }
}

/// ReLU's backward through a saved output's mask (shared with [`super::Add`]).
pub(crate) struct ReluBackward(pub(crate) GpuBuffer<f32>);

impl ReluBackward {
    /// `dy · [y > 0]`.
    pub(crate) fn mask(&self, cx: &mut Cx, dy: &GpuBuffer<f32>) -> Result<GpuBuffer<f32>> {
        let dx = cx.scratch::<f32>("relu dx", dy.len())?;
        cx.kernels.relu.encode(cx.gpu, cx.rec, &self.0, dy, &dx)?;
        Ok(dx)
    }

    /// `(dy + dy_b) · [y > 0]` in one launch (an unfused plan: `add`, then [`ReluBackward::mask`];
    /// the same bits).
    pub(crate) fn mask_sum(&self, cx: &mut Cx, dy: &GpuBuffer<f32>, dy_b: &GpuBuffer<f32>) -> Result<GpuBuffer<f32>> {
        if cx.unfused {
            let sum = summed_gradient(cx, dy, dy_b)?;
            return self.mask(cx, &sum);
        }
        let dx = cx.scratch::<f32>("relu dx", dy.len())?;
        cx.kernels.relu.encode_sum(cx.gpu, cx.rec, &self.0, dy, dy_b, &dx)?;
        Ok(dx)
    }
}

impl Backward for ReluBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        Ok(vec![Some(self.mask(cx, dy)?)])
    }

    fn backward_of_sum(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        dy_b: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        Ok(vec![Some(self.mask_sum(cx, dy, dy_b)?)])
    }
}
