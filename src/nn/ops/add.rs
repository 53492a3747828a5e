//! Elementwise sum of two values of one shape with an optional ReLU after it — the merge of a
//! residual block. Backward: the output's gradient (through the ReLU's mask) goes to both inputs
//! unchanged; where one value feeds both, the trainer adds the two contributions. An output read
//! by two nodes (a block's, read by the next block's convolution and shortcut) comes with its two
//! gradients not yet added, and the ReLU's mask adds them in its launch
//! ([`Backward::backward_of_sum`]).

use super::super::op::{summed_gradient, Backward, Cx, Forward, NodeCx, Op, Shape};
use super::relu::ReluBackward;
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// `y = relu?(a + b)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Add {
    /// ReLU after the sum.
    pub relu: bool,
}

impl Op for Add {
    fn kind(&self) -> &'static str {
        "add"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        match inputs {
            [a, b] if a == b => Ok(*a),
            [a, b] => Err(Error::InvalidArgument(format!("add: the inputs' shapes differ ({a:?} and {b:?})"))),
            _ => Err(Error::InvalidArgument(format!("add takes two inputs, got {}", inputs.len()))),
        }
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        self.relu || inputs.iter().all(|&n| n)
    }

    fn forward(&self, cx: &mut Cx, _node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let y = cx.scratch::<f32>("add y", x[0].len())?;
        cx.kernels.add.encode(cx.gpu, cx.rec, x[0], Some(x[1]), self.relu, &y)?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        let mask = self.relu.then(|| {
            cx.save(y.bytes(), y.bytes());
            ReluBackward(y.clone())
        });
        Ok(Forward { y, backward: Some(Box::new(AddBackward(mask))) })
    }
}

struct AddBackward(Option<ReluBackward>);

impl Backward for AddBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let g = match &self.0 {
            Some(m) => m.mask(cx, dy)?,
            None => dy.clone(),
        };
        Ok(need.iter().map(|&n| n.then(|| g.clone())).collect())
    }

    /// With the ReLU, the two contributions are added inside its mask's launch.
    fn backward_of_sum(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        dy_b: &GpuBuffer<f32>,
        need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let g = match &self.0 {
            Some(m) => m.mask_sum(cx, dy, dy_b)?,
            None => summed_gradient(cx, dy, dy_b)?,
        };
        Ok(need.iter().map(|&n| n.then(|| g.clone())).collect())
    }
}
