//! Flatten: `(h, w, c)` → `(1, 1, h·w·c)`. Values are stored channels last, so the data do not
//! move: the output is the input's buffer, and the gradient passes through unchanged. (Linear
//! flattens its input itself; this op names the step in a graph.)

use super::super::op::{numel, Backward, Cx, Forward, NodeCx, Op, Shape};
use crate::tensor::GpuBuffer;
use crate::Result;

/// Flatten.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Flatten;

impl Op for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        Ok((1, 1, numel(super::one("flatten", inputs)?)))
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        inputs[0]
    }

    fn forward(&self, cx: &mut Cx, _node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let backward = cx.training().then(|| Box::new(Through) as Box<dyn Backward>);
        Ok(Forward { y: x[0].clone(), backward })
    }
}

struct Through;

impl Backward for Through {
    fn backward(
        self: Box<Self>,
        _cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        Ok(vec![Some(dy.clone())])
    }
}
