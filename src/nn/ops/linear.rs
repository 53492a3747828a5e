//! Linear (fully connected) layer: flattens its input to `k = h·w·c` features and computes
//! `y = relu?(x·Wᵀ + b)`, `W` `[outputs, k]`, its three products as the layer's precision policy
//! says ([`crate::nn::gemm`]).

use super::super::gemm::{self, GemmSaved};
use super::super::op::{numel, Backward, Cx, Forward, NodeCx, Op, ParamSpec, Shape};
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// A fully connected layer with an optional fused ReLU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Output features.
    pub outputs: usize,
    /// ReLU fused into the GEMM epilogue.
    pub relu: bool,
}

impl Op for Linear {
    fn kind(&self) -> &'static str {
        "linear"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        super::one("linear", inputs)?;
        if self.outputs == 0 {
            return Err(Error::InvalidArgument("linear: a layer needs at least one output".into()));
        }
        Ok((1, 1, self.outputs))
    }

    fn params(&self, inputs: &[Shape]) -> Vec<ParamSpec> {
        let n = self.outputs;
        gemm::params(n, numel(inputs[0]), self.relu, true)
    }

    fn is_gemm(&self) -> bool {
        true
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        self.relu
    }

    fn grad_maxima_wanted(&self, cx: &Cx, node: &NodeCx) -> Option<crate::scheme::Granularity> {
        gemm::dy_maxima_wanted(cx, node, cx.batch, self.outputs, self.relu)
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let k = numel(node.inputs[0]);
        let (y, saved) = gemm::forward(cx, node, x[0], None, cx.batch, k, self.outputs, self.relu)?;
        Ok(Forward { y, backward: saved.map(|s| Box::new(LinearBackward(s)) as Box<dyn Backward>) })
    }
}

struct LinearBackward(GemmSaved);

impl Backward for LinearBackward {
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
