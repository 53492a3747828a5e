//! k×k max pooling with stride k (a partial window at the edge is dropped); the backward routes
//! each output's gradient to its window's argmax, saved by the forward.

use super::super::op::{Backward, Cx, Forward, NodeCx, Op, Shape};
use crate::kernels::maxpool::PoolGeom;
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// Max pooling.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MaxPool {
    /// Window edge and stride.
    pub k: usize,
}

/// The output shape of k×k pooling with stride k.
pub(crate) fn pooled(kind: &str, k: usize, inputs: &[Shape]) -> Result<Shape> {
    let s = super::one(kind, inputs)?;
    if k == 0 || s.0 < k || s.1 < k {
        return Err(Error::InvalidArgument(format!("{kind}: {k}x{k} pooling on a {}x{} input", s.0, s.1)));
    }
    Ok((s.0 / k, s.1 / k, s.2))
}

impl Op for MaxPool {
    fn kind(&self) -> &'static str {
        "maxpool"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        pooled("maxpool", self.k, inputs)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        inputs[0]
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let s = node.inputs[0];
        let geom = PoolGeom { batch: cx.batch, h: s.0, w: s.1, c: s.2, k: self.k };
        let y = cx.scratch::<f32>("pool y", geom.out_len())?;
        let arg = cx.scratch::<u32>("pool arg", geom.out_len())?;
        cx.kernels.maxpool.encode_forward(cx.gpu, cx.rec, &geom, x[0], &y, &arg)?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        cx.save(arg.bytes(), arg.bytes());
        Ok(Forward { y, backward: Some(Box::new(PoolBackward { geom, arg })) })
    }
}

struct PoolBackward {
    geom: PoolGeom,
    arg: GpuBuffer<u32>,
}

impl Backward for PoolBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let dx = cx.scratch::<f32>("pool dx", self.geom.in_len())?;
        cx.kernels.maxpool.encode_backward(cx.gpu, cx.rec, &self.geom, dy, &self.arg, &dx)?;
        Ok(vec![Some(dx)])
    }
}
