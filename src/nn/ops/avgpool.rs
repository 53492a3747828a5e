//! k×k average pooling with stride k; the backward spreads each output's gradient evenly over
//! its window.

use super::super::op::{Backward, Cx, Forward, NodeCx, Op, Shape};
use super::maxpool::pooled;
use crate::kernels::maxpool::PoolGeom;
use crate::tensor::GpuBuffer;
use crate::Result;

/// Average pooling.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AvgPool {
    /// Window edge and stride.
    pub k: usize,
}

impl Op for AvgPool {
    fn kind(&self) -> &'static str {
        "avgpool"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        pooled("avgpool", self.k, inputs)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        inputs[0]
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let s = node.inputs[0];
        let geom = PoolGeom { batch: cx.batch, h: s.0, w: s.1, c: s.2, k: self.k };
        average(cx, geom, x[0])
    }
}

/// Records average pooling over `geom` (shared with [`super::GlobalAvgPool`]).
pub(crate) fn average(cx: &mut Cx, geom: PoolGeom, x: &GpuBuffer<f32>) -> Result<Forward> {
    let y = cx.scratch::<f32>("avgpool y", geom.out_len())?;
    cx.kernels.avgpool.encode_forward(cx.gpu, cx.rec, &geom, x, &y)?;
    let backward = cx.training().then(|| Box::new(AvgBackward(geom)) as Box<dyn Backward>);
    Ok(Forward { y, backward })
}

struct AvgBackward(PoolGeom);

impl Backward for AvgBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let dx = cx.scratch::<f32>("avgpool dx", self.0.in_len())?;
        cx.kernels.avgpool.encode_backward(cx.gpu, cx.rec, &self.0, dy, &dx)?;
        Ok(vec![Some(dx)])
    }
}
