//! Embedding: token ids `(h, w, 1)` (f32 values, one per position; `T = h·w` positions) to
//! `(h, w, dim)` vectors, the sum of the id's row of a token table `[vocab, dim]` and the
//! position's row of a learned position table `[T, dim]` (GPT's input layer). Parameters:
//! `weight` (the token table) and `position`, both trainable, uniform with GPT-2's standard
//! deviation 0.02. The ids get no gradient. An id that is not an integer in `[0, vocab)` makes
//! its position's output NaN, so a training step on it fails its finiteness check and changes
//! nothing ([`crate::Error::NonFinite`]).

use super::super::op::{Backward, Cx, Forward, Init, NodeCx, Op, ParamKind, ParamSpec, Shape};
use crate::kernels::embedding::EmbedShape;
use crate::tensor::GpuBuffer;
use crate::{Error, Result};

/// Uniform bound with standard deviation 0.02 (bound = 0.02·√3).
const INIT_BOUND: f32 = 0.02 * 1.732_050_8;

/// Token plus position embedding.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Embedding {
    /// Rows of the token table (ids `0..vocab`).
    pub vocab: usize,
    /// Values per embedding.
    pub dim: usize,
}

impl Embedding {
    fn shape(&self, batch: usize, input: Shape) -> EmbedShape {
        let t = input.0 * input.1;
        EmbedShape { n: batch * t, t, dim: self.dim, vocab: self.vocab }
    }
}

impl Op for Embedding {
    fn kind(&self) -> &'static str {
        "embedding"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        let (h, w, c) = super::one("embedding", inputs)?;
        if c != 1 {
            return Err(Error::InvalidArgument(format!("embedding: takes one token id per position, not {c}")));
        }
        if self.dim == 0 || self.vocab == 0 || self.vocab > 1 << 24 {
            return Err(Error::InvalidArgument(format!(
                "embedding: {} ids of {} values (at least one of each; at most 2^24 ids)",
                self.vocab, self.dim
            )));
        }
        Ok((h, w, self.dim))
    }

    fn params(&self, inputs: &[Shape]) -> Vec<ParamSpec> {
        let (t, d) = (inputs[0].0 * inputs[0].1, self.dim);
        let table = |len, name: &str, rows| ParamSpec {
            len,
            init: Init::Uniform { bound: INIT_BOUND },
            kind: ParamKind::Trainable { weight_decay: false },
            exports: vec![(name.to_string(), vec![rows, d], 0)],
        };
        vec![table(self.vocab * d, "weight", self.vocab), table(t * d, "position", t)]
    }

    fn forward(&self, cx: &mut Cx, node: &NodeCx, x: &[&GpuBuffer<f32>]) -> Result<Forward> {
        let s = self.shape(cx.batch, node.inputs[0]);
        let y = cx.scratch::<f32>("embedding y", s.n * s.dim)?;
        let (table, pos) = (&node.params[0].value, &node.params[1].value);
        cx.kernels.embedding.encode_forward(cx.gpu, cx.rec, &s, x[0], (table, pos), &y)?;
        if !cx.training() {
            return Ok(Forward { y, backward: None });
        }
        cx.save(x[0].bytes(), x[0].bytes());
        Ok(Forward { y, backward: Some(Box::new(EmbeddingBackward { ids: x[0].clone(), s })) })
    }
}

struct EmbeddingBackward {
    ids: GpuBuffer<f32>,
    s: EmbedShape,
}

impl Backward for EmbeddingBackward {
    fn backward(
        self: Box<Self>,
        cx: &mut Cx,
        node: &NodeCx,
        dy: &GpuBuffer<f32>,
        need: &[bool],
    ) -> Result<Vec<Option<GpuBuffer<f32>>>> {
        if need[0] {
            return Err(Error::InvalidArgument(
                "embedding: token ids have no gradient (an embedding reads the model's input)".into(),
            ));
        }
        let grads = (node.params[0].grad("embedding")?, node.params[1].grad("embedding")?);
        cx.kernels.embedding.encode_backward(cx.gpu, cx.rec, &self.s, &self.ids, dy, grads)?;
        Ok(vec![None])
    }
}
