//! 2-D convolution on NHWC values as im2col + GEMM: the input unfolds into `[batch·oh·ow,
//! kh·kw·c]` columns, multiplied by `W` `[channels, kh·kw·c]` (kernel-row-major, channels last)
//! under the layer's precision policy ([`crate::nn::gemm`]); the backward folds the columns'
//! gradient back (col2im).

use super::super::gemm::{self, GemmSaved};
use super::super::op::{Backward, Cx, Forward, NodeCx, Op, ParamSpec, Shape};
use crate::kernels::im2col::ConvGeom;
use crate::tensor::GpuBuffer;
use crate::{Error, Record, Result};

/// A square-kernel convolution with an optional bias and an optional fused ReLU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Conv {
    /// Output channels.
    pub channels: usize,
    /// Kernel edge.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// ReLU fused into the GEMM epilogue.
    pub relu: bool,
    /// A learned bias `[channels]`, added in the GEMM epilogue. A convolution that batch norm
    /// follows needs none: the normalization subtracts each channel's mean, bias included, so
    /// the bias would never change the output, and its gradient (dY's column sums) is zero but
    /// for rounding.
    pub bias: bool,
}

impl Conv {
    fn geom(&self, batch: usize, s: Shape) -> ConvGeom {
        ConvGeom { batch, h: s.0, w: s.1, c: s.2, kh: self.kernel, kw: self.kernel, stride: self.stride, pad: self.pad }
    }
}

impl Op for Conv {
    fn kind(&self) -> &'static str {
        "conv"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        let s = super::one("conv", inputs)?;
        if self.channels == 0 || self.kernel == 0 || self.stride == 0 {
            return Err(Error::InvalidArgument(format!(
                "conv: {} channels, {}x{} kernel, stride {}: none may be 0",
                self.channels, self.kernel, self.kernel, self.stride
            )));
        }
        let padded = |e: usize| e.checked_add(self.pad.checked_mul(2)?);
        match (padded(s.0), padded(s.1)) {
            (Some(h), Some(w)) if h >= self.kernel && w >= self.kernel => {
                Ok(((h - self.kernel) / self.stride + 1, (w - self.kernel) / self.stride + 1, self.channels))
            }
            _ => Err(Error::InvalidArgument(format!(
                "conv: {k}x{k} kernel with padding {p} on a {}x{} input",
                s.0,
                s.1,
                k = self.kernel,
                p = self.pad
            ))),
        }
    }

    fn params(&self, inputs: &[Shape]) -> Vec<ParamSpec> {
        let n = self.channels;
        gemm::params(n, self.kernel * self.kernel * inputs[0].2, self.relu, self.bias)
    }

    fn is_gemm(&self) -> bool {
        true
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        self.relu
    }

    fn grad_maxima_wanted(&self, cx: &Cx, node: &NodeCx) -> Option<crate::scheme::Granularity> {
        let o = node.output;
        gemm::dy_maxima_wanted(cx, node, cx.batch * o.0 * o.1, o.2, self.relu)
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let g = self.geom(cx.batch, node.inputs[0]);
        let (y, saved) = forward(cx, node, g, x[0], self.channels, self.relu)?;
        Ok(Forward { y, backward: saved.map(|s| Box::new(s) as Box<dyn Backward>) })
    }
}

/// What a convolution's backward needs.
pub(crate) struct ConvSaved {
    saved: GemmSaved,
    geom: ConvGeom,
}

/// Records a convolution of `x` (NHWC, as `g` says) into a new `[batch·oh·ow, channels]` output:
/// im2col (with the forward quantizer of its rows where [`gemm::forward`] fuses them), then the
/// forward product; in training, what the backward needs.
pub(crate) fn forward<R: Record>(
    cx: &mut Cx<R>,
    node: &NodeCx,
    g: ConvGeom,
    x: &GpuBuffer<f32>,
    channels: usize,
    relu: bool,
) -> Result<(GpuBuffer<f32>, Option<ConvSaved>)> {
    let cols = cx.scratch::<f32>("im2col", g.rows() * g.kdim())?;
    let (y, saved) = gemm::forward(cx, node, &cols, Some((&g, x)), g.rows(), g.kdim(), channels, relu)?;
    Ok((y, saved.map(|saved| ConvSaved { saved, geom: g })))
}

/// Records a convolution's backward from `dy`: the weight gradient (and the bias's, where it has
/// one), and dX (NHWC) folded back from the columns' gradient when `need_dx`.
pub(crate) fn backward<R: Record>(
    cx: &mut Cx<R>,
    node: &NodeCx,
    s: ConvSaved,
    dy: &GpuBuffer<f32>,
    need_dx: bool,
) -> Result<Option<GpuBuffer<f32>>> {
    gemm::backward(cx, node, s.saved, dy, need_dx, Some(&s.geom))
}

impl Backward for ConvSaved {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        node: &NodeCx,
        dy: &GpuBuffer<f32>,
        need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        Ok(vec![backward(cx, node, *self, dy, need[0])?])
    }
}
