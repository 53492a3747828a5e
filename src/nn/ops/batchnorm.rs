//! Batch normalization per channel over batch and space, with learnable γ and β and an optional
//! ReLU after it. Parameters: `affine` `[2C]` (γ then β; checkpoint names `weight`, `bias`) and
//! the running statistics `[2C]` (mean then variance; `running_mean`, `running_var`), updated
//! by every forward pass that normalizes with the batch's statistics.

use super::super::op::{Backward, Cx, Forward, Init, NodeCx, Op, ParamKind, ParamSpec, Shape};
use crate::kernels::batchnorm::{stats_len, NormBuffers};
use crate::tensor::GpuBuffer;
use crate::Result;

/// Batch normalization with an optional fused ReLU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BatchNorm {
    /// ReLU after the normalization.
    pub relu: bool,
}

impl Op for BatchNorm {
    fn kind(&self) -> &'static str {
        "batchnorm"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        super::one("batchnorm", inputs)
    }

    fn writes_grad_maxima(&self) -> bool {
        true
    }

    fn params(&self, inputs: &[Shape]) -> Vec<ParamSpec> {
        let c = inputs[0].2;
        let halves = |a: f32, b: f32| (0..2 * c).map(|i| if i < c { a } else { b }).collect();
        vec![
            ParamSpec {
                len: 2 * c,
                init: Init::Values(halves(1.0, 0.0)),
                kind: ParamKind::Trainable { weight_decay: false },
                exports: vec![("weight".into(), vec![c], 0), ("bias".into(), vec![c], c)],
            },
            ParamSpec {
                len: 2 * c,
                init: Init::Values(halves(0.0, 1.0)),
                kind: ParamKind::State,
                exports: vec![("running_mean".into(), vec![c], 0), ("running_var".into(), vec![c], c)],
            },
        ]
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        self.relu
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let s = node.inputs[0];
        let (rows, c) = (cx.batch * s.0 * s.1, s.2);
        let stats = cx.scratch::<f32>("bn stats", stats_len(c))?;
        let y = cx.scratch::<f32>("bn y", rows * c)?;
        let (affine, running) = (&node.params[0].value, &node.params[1].value);
        let b = NormBuffers { x: x[0], stats: &stats, affine, running, y: &y, dy: None, dx: None, sums: None };
        if cx.training() {
            // The running statistics are updated after the step's gradients are checked.
            cx.kernels.norm.encode_train_forward_deferred(cx.gpu, cx.rec, &b, rows, c, self.relu)?;
            cx.defer_norm_commit(stats.clone(), running.clone(), c);
        } else if cx.batch_stats() {
            cx.kernels.norm.encode_train_forward(cx.gpu, cx.rec, &b, rows, c, self.relu)?;
        } else {
            cx.kernels.norm.encode_eval_forward(cx.gpu, cx.rec, &b, rows, c, self.relu)?;
        }
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        let bytes = x[0].bytes() + y.bytes();
        cx.save(bytes, bytes);
        let back = NormBackward { x: x[0].clone(), y: y.clone(), stats, rows, c, relu: self.relu };
        Ok(Forward { y, backward: Some(Box::new(back)) })
    }
}

struct NormBackward {
    x: GpuBuffer<f32>,
    y: GpuBuffer<f32>,
    stats: GpuBuffer<f32>,
    rows: usize,
    c: usize,
    relu: bool,
}

impl Backward for NormBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        // dx is always computed: the kernel uses it as scratch for its partial sums.
        let dx = cx.scratch::<f32>("bn dx", self.rows * self.c)?;
        let (affine, running) = (&node.params[0].value, &node.params[1].value);
        let sums = node.params[0].grad("batchnorm")?;
        let b = NormBuffers {
            x: &self.x,
            stats: &self.stats,
            affine,
            running,
            y: &self.y,
            dy: Some(dy),
            dx: Some(&dx),
            sums: Some(sums),
        };
        match cx.take_maxima_ask() {
            Some(gran) => {
                let len = crate::kernels::batchnorm::BatchNorm::maxima_len(self.rows, self.c, gran)?;
                let m = cx.scratch::<u32>("bn dx maxima", len)?;
                cx.kernels.norm.encode_backward_maxima(cx.gpu, cx.rec, &b, self.rows, self.c, self.relu, &m, gran)?;
                cx.give_grad_maxima(m);
            }
            None => cx.kernels.norm.encode_backward(cx.gpu, cx.rec, &b, self.rows, self.c, self.relu)?,
        }
        Ok(vec![Some(dx)])
    }
}
