//! GELU (tanh form, as GPT-2), elementwise; the backward reads the saved input.

use super::super::op::{Backward, Cx, Forward, NodeCx, Op, Shape};
use crate::tensor::GpuBuffer;
use crate::Result;

/// GELU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gelu;

impl Op for Gelu {
    fn kind(&self) -> &'static str {
        "gelu"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        super::one("gelu", inputs)
    }

    fn forward(&self, cx: &mut Cx, _node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let y = cx.scratch::<f32>("gelu y", x[0].len())?;
        cx.kernels.gelu.encode_forward(cx.gpu, cx.rec, x[0], &y)?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        cx.save(x[0].bytes(), x[0].bytes());
        Ok(Forward { y, backward: Some(Box::new(GeluBackward(x[0].clone()))) })
    }
}

struct GeluBackward(GpuBuffer<f32>);

impl Backward for GeluBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let dx = cx.scratch::<f32>("gelu dx", dy.len())?;
        cx.kernels.gelu.encode_backward(cx.gpu, cx.rec, &self.0, dy, &dx)?;
        Ok(vec![Some(dx)])
    }
}
