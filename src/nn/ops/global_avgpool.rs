//! Global average pooling: `(h, h, c)` → `(1, 1, c)`, the mean of each channel over space (a
//! ResNet's head). Runs as average pooling with an h×h window, so the input must be square.

use super::super::op::{Cx, Forward, NodeCx, Op, Shape};
use super::avgpool::average;
use crate::kernels::maxpool::PoolGeom;
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// Global average pooling.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GlobalAvgPool;

impl Op for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "global_avgpool"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        let s = super::one("global_avgpool", inputs)?;
        if s.0 != s.1 {
            return Err(Error::InvalidArgument(format!("global_avgpool: needs a square input, got {}x{}", s.0, s.1)));
        }
        Ok((1, 1, s.2))
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        inputs[0]
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let s = node.inputs[0];
        average(cx, PoolGeom { batch: cx.batch, h: s.0, w: s.1, c: s.2, k: s.0 }, x[0])
    }
}
