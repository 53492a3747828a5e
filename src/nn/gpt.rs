//! GPT: a decoder-only transformer language model in GPT-2's pre-LayerNorm layout, as a
//! [`Graph`] the [`super::Trainer`] trains like any other.
//!
//! The input is a sequence of `context` token ids `(1, context, 1)`; the output is next-token
//! logits at every position `(1, context, vocab)`, each position with its own label (the next
//! token). Nodes:
//!
//! - `embed`: token plus learned position embedding (width C);
//! - per block `blocks.{i}`: `ln1` → `qkv` (Dense, 3C) → `attention` (causal, `heads` heads)
//!   → `proj` (Dense, C) → `add1` (residual) → `ln2` → `fc` (Dense, 4C) → `gelu` → `fc2`
//!   (Dense, C) → `add2` (residual);
//! - `ln_f`, then `head` (Dense, vocab; untied from the embedding).
//!
//! The GEMM layers a scheme quantizes are, in order: each block's `qkv`, `proj`, `fc`, `fc2`,
//! then `head` (`4·layers + 1`); the graph marks the first block's and the head's sensitive
//! ([`GptConfig::sensitive_layers`]), the ones the low-precision recipes keep at higher
//! precision.

use super::graph::{Graph, GraphBuilder};
use crate::{Error, Result};

/// A GPT's size.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GptConfig {
    /// Token ids `0..vocab`.
    pub vocab: usize,
    /// Positions per sequence.
    pub context: usize,
    /// Model width C.
    pub width: usize,
    /// Attention heads (dividing the width).
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
}

impl GptConfig {
    /// GEMM layers per block (qkv, proj, fc, fc2).
    pub const GEMMS_PER_BLOCK: usize = 4;

    /// The model's graph.
    pub fn graph(&self) -> Result<Graph> {
        let c = self.width;
        if self.layers == 0 || self.heads == 0 || !c.is_multiple_of(self.heads) || self.context == 0 {
            return Err(Error::InvalidArgument(format!(
                "gpt: {self:?} needs at least one block and one position, and heads dividing the width"
            )));
        }
        let mut b = GraphBuilder::new(format!("gpt{}x{}", self.layers, c), (1, self.context, 1));
        let mut x = b.embedding("embed", b.input(), self.vocab, c)?;
        for i in 0..self.layers {
            let n = |s: &str| format!("blocks.{i}.{s}");
            let a = b.layernorm(n("ln1"), x)?;
            let qkv = b.dense(n("qkv"), a, 3 * c, false)?;
            let att = b.attention(n("attention"), qkv, self.heads, true)?;
            let proj = b.dense(n("proj"), att, c, false)?;
            x = b.add(n("add1"), x, proj, false)?;
            let h = b.layernorm(n("ln2"), x)?;
            let fc = b.dense(n("fc"), h, 4 * c, false)?;
            let g = b.gelu(n("gelu"), fc)?;
            let fc2 = b.dense(n("fc2"), g, c, false)?;
            x = b.add(n("add2"), x, fc2, false)?;
            if i == 0 {
                for v in [qkv, att, proj, fc, fc2] {
                    b.mark_sensitive(v)?;
                }
            }
        }
        let f = b.layernorm("ln_f", x)?;
        let head = b.dense("head", f, self.vocab, false)?;
        b.mark_sensitive(head)?;
        b.finish(head)
    }

    /// GEMM layers of the model.
    pub fn gemm_layers(&self) -> usize {
        Self::GEMMS_PER_BLOCK * self.layers + 1
    }

    /// The GEMM layers the graph marks sensitive (kept at higher precision by the schemes that
    /// keep them): the first block's four and the head (the embedding is not a GEMM layer and
    /// stays fp32).
    pub fn sensitive_layers(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..Self::GEMMS_PER_BLOCK).collect();
        v.push(self.gemm_layers() - 1);
        v
    }
}
