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
//! The six products run in f32 unless the scheme says `+attn` ([`crate::nn::AttentionPolicy`],
//! given to the op as [`crate::nn::AttentionSite`]): then each product whose operands are both
//! quantized packs them along its contracted dimension, one batch and head at a time (operands
//! stored the other way round are first transposed per batch and head by `transpose`), and runs
//! as one batched integer or FP8 GEMM (`gemm_int` / `gemm_fp8` with `batches`); the gradient
//! operands dO and dS round stochastically, each of the four in its own random stream. Today's
//! low-precision recipes keep these products in higher precision, hence the default. It saves
//! Q, K, V and P (`B·H·T²` values) in f32 for the backward.

use super::super::op::{AttentionSite, Backward, Cx, Forward, NodeCx, Op, Shape};
use super::super::policy::Operand;
use crate::kernels::gemm::Epilogue;
use crate::kernels::gemm_f32::GemmShape;
use crate::kernels::heads::HeadsGeom;
use crate::kernels::softmax::SoftmaxShape;
use crate::scheme::{QuantScheme, Rounding};
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::{Error, Result};

/// Multi-head self-attention (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Attention {
    /// Heads (must divide the model width C).
    pub heads: usize,
    /// Each position attends only to itself and earlier ones (a language model).
    pub causal: bool,
}

/// One operand of a batched product `C[i] = A[i]·B[i]ᵀ` (`C[i]` is `[A rows, B rows]`): `bh`
/// stacked matrices of `rows × k` (k contracted), stored as such or, `stored_t`, as `k × rows`.
struct Side<'a> {
    x: &'a GpuBuffer<f32>,
    rows: usize,
    k: usize,
    stored_t: bool,
    op: Operand,
    /// The stream of a stochastic operand (within the step).
    stream: u32,
}

impl<'a> Side<'a> {
    fn new(x: &'a GpuBuffer<f32>, rows: usize, k: usize, stored_t: bool, op: Operand) -> Self {
        Side { x, rows, k, stored_t, op, stream: 0 }
    }

    fn stream(self, stream: u32) -> Self {
        Side { stream, ..self }
    }

    /// Packed along k per row: transposed first when stored the other way.
    fn quantize(&self, cx: &mut Cx, bh: usize, label: &str) -> Result<crate::quant::QuantizedTensor> {
        let Operand::Packed { format, granularity, stochastic, .. } = self.op else {
            return Err(Error::InvalidArgument(format!("attention: {label} is not a packed operand")));
        };
        let (gpu, k) = (cx.gpu, cx.kernels);
        let rounding =
            if stochastic { Rounding::Stochastic { seed: cx.seed, stream: self.stream } } else { Rounding::Nearest };
        let scheme = QuantScheme { format, granularity, rounding };
        // Stored the other way: transposed inside the quantizer's one launch where it can.
        let l = crate::scheme::QuantLayout::new(bh * self.rows, self.k, format, granularity)?;
        if self.stored_t && crate::quant::Quantizer::batched_transpose_in_one_pass(gpu, &l) {
            return k.qz.quantize_batched_transposed(gpu, cx.rec, self.x, (bh, self.k, self.rows), scheme);
        }
        let src = if self.stored_t {
            let t = cx.scratch::<f32>(label, bh * self.rows * self.k)?;
            k.transpose.encode(gpu, cx.rec, self.x, &t, (bh, self.k, self.rows))?;
            t
        } else {
            self.x.clone()
        };
        let t = GpuTensor::from_buffer(src, &[bh * self.rows, self.k])?;
        k.qz.quantize(gpu, cx.rec, &t, scheme)
    }
}

/// Records `c[i] ← a[i]·b[i]ᵀ` for the `bh` batches and heads: one batched integer or FP8 GEMM
/// when both operands are packed, the batched f32 GEMM otherwise (on the operands as stored).
fn product(cx: &mut Cx, bh: usize, a: Side, b: Side, c: &GpuBuffer<f32>) -> Result<()> {
    let packed = |s: &Side| matches!(s.op, Operand::Packed { .. });
    if packed(&a) && packed(&b) {
        let qa = a.quantize(cx, bh, "attention A packed")?;
        let qb = b.quantize(cx, bh, "attention B packed")?;
        return cx.kernels.packed_batched(cx.gpu, cx.rec, &qa, &qb, bh, &Epilogue::default(), c);
    }
    let shape = GemmShape { m: a.rows, n: b.rows, k: a.k, trans_a: a.stored_t, trans_b: b.stored_t };
    cx.kernels.f32.encode_batched(cx.gpu, cx.rec, a.x, b.x, shape, bh, &Epilogue::default(), c)
}

/// The operands' precisions: the site's, or f32.
fn operands(site: Option<AttentionSite>) -> (Operand, Operand, u32) {
    match site {
        Some(s) => (s.policy.activation, s.policy.gradient, s.stream),
        None => (Operand::F32, Operand::F32, 0),
    }
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

    fn is_attention(&self) -> bool {
        true
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
        for label in ["attention q", "attention k", "attention v"] {
            qkv.push(cx.scratch::<f32>(label, head_len)?);
        }
        let (q, kk, v) = (&qkv[0], &qkv[1], &qkv[2]);
        k.heads.encode_parts(gpu, cx.rec, x[0], [q, kk, v], &g.qkv, false)?;
        let (act, _, _) = operands(node.attention);
        let scores = g.bh * g.t * g.t;
        let s = cx.scratch::<f32>("attention scores", scores)?;
        // S = Q·Kᵀ, contracted over D.
        product(cx, g.bh, Side::new(q, g.t, g.d, false, act), Side::new(kk, g.t, g.d, false, act), &s)?;
        let p = cx.scratch::<f32>("attention probabilities", scores)?;
        cx.kernels.softmax.encode_forward(gpu, cx.rec, &g.softmax, &s, &p)?;
        let o = cx.scratch::<f32>("attention heads out", head_len)?;
        // O = P·V over the keys: V [T, D] is B = Vᵀ [D, T] stored transposed.
        product(cx, g.bh, Side::new(&p, g.t, g.t, false, act), Side::new(v, g.d, g.t, true, act), &o)?;
        let k = cx.kernels;
        let y = cx.scratch::<f32>("attention y", head_len)?;
        k.heads.encode(gpu, cx.rec, &o, &y, &g.out, 0, true)?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        let bytes = 3 * q.bytes() + p.bytes();
        cx.save(bytes, bytes);
        let [q, kk, v]: [GpuBuffer<f32>; 3] = qkv.try_into().map_err(|_| Error::Empty("attention"))?;
        let site = node.attention;
        Ok(Forward { y, backward: Some(Box::new(AttentionBackward { g, q, k: kk, v, p, site })) })
    }
}

struct AttentionBackward {
    g: Geometry,
    q: GpuBuffer<f32>,
    k: GpuBuffer<f32>,
    v: GpuBuffer<f32>,
    p: GpuBuffer<f32>,
    site: Option<AttentionSite>,
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
        let (act, grad, s0) = operands(self.site);
        let (t, d, bh) = (g.t, g.d, g.bh);
        let head_len = g.qkv.head_major_len();
        let d_o = cx.scratch::<f32>("attention dO", head_len)?;
        k.heads.encode(gpu, cx.rec, dy, &d_o, &g.out, 0, false)?;
        let dv = cx.scratch::<f32>("attention dV", head_len)?;
        // dV = Pᵀ·dO over the queries: A = Pᵀ, B = dOᵀ [D, T], both stored transposed.
        let (a, b) = (Side::new(&self.p, t, t, true, act), Side::new(&d_o, d, t, true, grad).stream(s0));
        product(cx, bh, a, b, &dv)?;
        let scores = bh * t * t;
        let dp = cx.scratch::<f32>("attention dP", scores)?;
        // dP = dO·Vᵀ over D.
        let (a, b) = (Side::new(&d_o, t, d, false, grad).stream(s0 + 1), Side::new(&self.v, t, d, false, act));
        product(cx, bh, a, b, &dp)?;
        let ds = cx.scratch::<f32>("attention dS", scores)?;
        cx.kernels.softmax.encode_backward(gpu, cx.rec, &g.softmax, &self.p, &dp, &ds)?;
        let dq = cx.scratch::<f32>("attention dQ", head_len)?;
        // dQ = dS·K over the keys: B = Kᵀ [D, T] stored transposed.
        let (a, b) = (Side::new(&ds, t, t, false, grad).stream(s0 + 2), Side::new(&self.k, d, t, true, act));
        product(cx, bh, a, b, &dq)?;
        let dk = cx.scratch::<f32>("attention dK", head_len)?;
        // dK = dSᵀ·Q over the queries: A = dSᵀ, B = Qᵀ [D, T], both stored transposed.
        let (a, b) = (Side::new(&ds, t, t, true, grad).stream(s0 + 3), Side::new(&self.q, d, t, true, act));
        product(cx, bh, a, b, &dk)?;
        let k = cx.kernels;
        let dx = cx.scratch::<f32>("attention dx", g.qkv.token_major_len())?;
        k.heads.encode_parts(gpu, cx.rec, &dx, [&dq, &dk, &dv], &g.qkv, true)?;
        Ok(vec![Some(dx)])
    }
}
