//! Layer normalization over the last dimension of each position (a token's features), with
//! learnable γ and β: parameter `affine` `[2C]` (γ then β; checkpoint names `weight` and
//! `bias`, as in PyTorch), trainable without weight decay.

use super::super::op::{Backward, Cx, Forward, Init, NodeCx, Op, ParamKind, ParamSpec, Shape};
use crate::tensor::GpuBuffer;
use crate::Result;

/// Layer normalization.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LayerNorm;

impl Op for LayerNorm {
    fn kind(&self) -> &'static str {
        "layernorm"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        super::one("layernorm", inputs)
    }

    fn params(&self, inputs: &[Shape]) -> Vec<ParamSpec> {
        let c = inputs[0].2;
        vec![ParamSpec {
            len: 2 * c,
            init: Init::Values((0..2 * c).map(|i| if i < c { 1.0 } else { 0.0 }).collect()),
            kind: ParamKind::Trainable { weight_decay: false },
            exports: vec![("weight".into(), vec![c], 0), ("bias".into(), vec![c], c)],
        }]
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let s = node.inputs[0];
        let (rows, cols) = (cx.batch * s.0 * s.1, s.2);
        let stats = cx.scratch::<f32>("layernorm stats", 2 * rows)?;
        let y = cx.scratch::<f32>("layernorm y", rows * cols)?;
        let affine = &node.params[0].value;
        cx.kernels.layernorm.encode_forward(cx.gpu, cx.rec, x[0], affine, &stats, &y, (rows, cols))?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        cx.save(x[0].bytes() + stats.bytes(), x[0].bytes() + stats.bytes());
        Ok(Forward { y, backward: Some(Box::new(LnBackward { x: x[0].clone(), stats, rows, cols })) })
    }
}

struct LnBackward {
    x: GpuBuffer<f32>,
    stats: GpuBuffer<f32>,
    rows: usize,
    cols: usize,
}

impl Backward for LnBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let (rows, cols) = (self.rows, self.cols);
        let dx = cx.scratch::<f32>("layernorm dx", rows * cols)?;
        let prod = cx.scratch::<f32>("layernorm dy·x̂, dy", 2 * rows * cols)?;
        let affine = &node.params[0];
        let k = cx.kernels;
        k.layernorm.encode_backward(
            cx.gpu,
            cx.rec,
            &self.x,
            &affine.value,
            &self.stats,
            dy,
            &dx,
            &prod,
            (rows, cols),
        )?;
        // The column sums of (dy·x̂, dy) are (dγ, dβ).
        k.colsum.encode(cx.gpu, cx.rec, &prod, rows, 2 * cols, affine.grad("layernorm")?)?;
        Ok(vec![Some(dx)])
    }
}
