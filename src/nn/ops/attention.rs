//! Multi-head scaled dot-product self-attention over the positions of a sequence: the input
//! `(h, w, 3C)` holds each position's query, key and value (a fused q|k|v projection, a Dense
//! layer of `3C` outputs), `T = h·w` positions and `heads` heads of `D = C / heads` values; the
//! output `(h, w, C)` is each position's heads' `softmax(q·kᵀ/√D [+ causal mask])·v`, heads
//! concatenated. Per batch and head, on the GPU:
//!
//! - forward: split q, k, v to head-major `[B·H, T, D]` (`heads`), `S = Q·Kᵀ` (batched
//!   `gemm_f32`), `P = softmax(S/√D)` with keys after the query masked when `causal`
//!   (`softmax`), `O = P·V`, merged back to `[B, T, C]`;
//! - backward: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − Σ P·dP)/√D`, `dQ = dS·K`,
//!   `dK = dSᵀ·Q`, merged into the three parts of the input's gradient.
//!
//! The attention products run in f32 whatever the scheme: the schemes quantize the GEMM layers
//! (the projections around it), as today's low-precision recipes keep attention's own batched
//! products in higher precision. It saves Q, K, V and P (`B·H·T²` values) for the backward.

use super::super::op::{Backward, Cx, Forward, NodeCx, Op, Shape};
use crate::kernels::gemm::Epilogue;
use crate::kernels::gemm_f32::GemmShape;
use crate::kernels::heads::HeadsGeom;
use crate::kernels::softmax::SoftmaxShape;
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// Multi-head self-attention (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Attention {
    /// Heads (must divide the model width C).
    pub heads: usize,
    /// Each position attends only to itself and earlier ones (a language model).
    pub causal: bool,
}

/// `C[m,n] = A·B` with A `[m,k]` and B stored `[k,n]`; with `ta`, A stored `[k,m]`.
fn shape(m: usize, n: usize, k: usize, ta: bool) -> GemmShape {
    GemmShape { m, n, k, trans_a: ta, trans_b: true }
}

struct Geometry {
    /// Batches · heads.
    bh: usize,
    t: usize,
    d: usize,
    qkv: HeadsGeom,
    out: HeadsGeom,
    softmax: SoftmaxShape,
}

impl Attention {
    fn geometry(&self, batch: usize, input: Shape) -> Geometry {
        let (t, c) = (input.0 * input.1, input.2 / 3);
        let d = c / self.heads;
        let qkv = HeadsGeom { batch, t, heads: self.heads, d, parts: 3 };
        let softmax = SoftmaxShape {
            rows: batch * self.heads * t,
            cols: t,
            queries: t,
            causal: self.causal,
            scale: 1.0 / (d as f32).sqrt(),
        };
        Geometry { bh: batch * self.heads, t, d, qkv, out: HeadsGeom { parts: 1, ..qkv }, softmax }
    }
}

impl Op for Attention {
    fn kind(&self) -> &'static str {
        "attention"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        let (h, w, c3) = super::one("attention", inputs)?;
        if self.heads == 0 || !c3.is_multiple_of(3) || !(c3 / 3).is_multiple_of(self.heads) {
            return Err(Error::InvalidArgument(format!(
                "attention: {c3} input values per position are not q, k and v of {} heads",
                self.heads
            )));
        }
        Ok((h, w, c3 / 3))
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let g = self.geometry(cx.batch, node.inputs[0]);
        let (gpu, k) = (cx.gpu, cx.kernels);
        let head_len = g.qkv.head_major_len();
        let mut qkv = Vec::with_capacity(3);
        for (part, label) in ["attention q", "attention k", "attention v"].into_iter().enumerate() {
            let b = cx.scratch::<f32>(label, head_len)?;
            k.heads.encode(gpu, cx.rec, x[0], &b, &g.qkv, part, false)?;
            qkv.push(b);
        }
        let (q, kk, v) = (&qkv[0], &qkv[1], &qkv[2]);
        let scores = g.bh * g.t * g.t;
        let s = cx.scratch::<f32>("attention scores", scores)?;
        let none = Epilogue::default();
        k.f32.encode_batched(gpu, cx.rec, q, kk, GemmShape::nt(g.t, g.t, g.d), g.bh, &none, &s)?;
        let p = cx.scratch::<f32>("attention probabilities", scores)?;
        k.softmax.encode_forward(gpu, cx.rec, &g.softmax, &s, &p)?;
        let o = cx.scratch::<f32>("attention heads out", head_len)?;
        k.f32.encode_batched(gpu, cx.rec, &p, v, shape(g.t, g.d, g.t, false), g.bh, &none, &o)?;
        let y = cx.scratch::<f32>("attention y", head_len)?;
        k.heads.encode(gpu, cx.rec, &o, &y, &g.out, 0, true)?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        let bytes = 3 * q.bytes() + p.bytes();
        cx.save(bytes, bytes);
        let [q, kk, v]: [GpuBuffer<f32>; 3] = qkv.try_into().map_err(|_| Error::Empty("attention"))?;
        Ok(Forward { y, backward: Some(Box::new(AttentionBackward { g, q, k: kk, v, p })) })
    }
}

struct AttentionBackward {
    g: Geometry,
    q: GpuBuffer<f32>,
    k: GpuBuffer<f32>,
    v: GpuBuffer<f32>,
    p: GpuBuffer<f32>,
}

impl Backward for AttentionBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        _node: &NodeCx,
        dy: &GpuBuffer<f32>,
        _need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        let (g, gpu, k) = (&self.g, cx.gpu, cx.kernels);
        let head_len = g.qkv.head_major_len();
        let none = Epilogue::default();
        let d_o = cx.scratch::<f32>("attention dO", head_len)?;
        k.heads.encode(gpu, cx.rec, dy, &d_o, &g.out, 0, false)?;
        let dv = cx.scratch::<f32>("attention dV", head_len)?;
        k.f32.encode_batched(gpu, cx.rec, &self.p, &d_o, shape(g.t, g.d, g.t, true), g.bh, &none, &dv)?;
        let scores = g.bh * g.t * g.t;
        let dp = cx.scratch::<f32>("attention dP", scores)?;
        k.f32.encode_batched(gpu, cx.rec, &d_o, &self.v, GemmShape::nt(g.t, g.t, g.d), g.bh, &none, &dp)?;
        let ds = cx.scratch::<f32>("attention dS", scores)?;
        k.softmax.encode_backward(gpu, cx.rec, &g.softmax, &self.p, &dp, &ds)?;
        let dq = cx.scratch::<f32>("attention dQ", head_len)?;
        k.f32.encode_batched(gpu, cx.rec, &ds, &self.k, shape(g.t, g.d, g.t, false), g.bh, &none, &dq)?;
        let dk = cx.scratch::<f32>("attention dK", head_len)?;
        k.f32.encode_batched(gpu, cx.rec, &ds, &self.q, shape(g.t, g.d, g.t, true), g.bh, &none, &dk)?;
        let dx = cx.scratch::<f32>("attention dx", g.qkv.token_major_len())?;
        for (part, grad) in [&dq, &dk, &dv].into_iter().enumerate() {
            k.heads.encode(gpu, cx.rec, grad, &dx, &g.qkv, part, true)?;
        }
        Ok(vec![Some(dx)])
    }
}
