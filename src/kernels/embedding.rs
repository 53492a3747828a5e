//! `embedding`: token plus learned position embeddings of `n = B·T` tokens whose ids are f32
//! values (exact below 2^24), and their gradients: each token's gradient summed into its id's
//! row of the table, and over the batch into its position's row (deterministic, in order). An id
//! that is not an integer in `[0, vocab)` gives a NaN row in the forward (a training step's
//! finiteness check then refuses the step) and no gradient. Bindings: 0 params, 1 ids, 2 table,
//! 3 pos, 4 out, 5 dy. Reference: [`crate::reference::embedding`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct EmbedParams {
    n: u32,
    t: u32,
    dim: u32,
    vocab: u32,
}

/// An embedding's geometry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EmbedShape {
    /// Tokens (batch · positions).
    pub n: usize,
    /// Positions per sequence (rows of the position table).
    pub t: usize,
    /// Values per embedding.
    pub dim: usize,
    /// Rows of the token table (at most 2^24, so every id is an exact f32).
    pub vocab: usize,
}

/// The embedding kernels.
pub struct Embedding {
    bgl: wgpu::BindGroupLayout,
    forward: wgpu::ComputePipeline,
    /// Entry `forward_v4`, taken where `dim` is a multiple of 4.
    forward_v4: wgpu::ComputePipeline,
    backward_table: wgpu::ComputePipeline,
    backward_pos: wgpu::ComputePipeline,
    dummy: GpuBuffer<f32>,
}

impl Embedding {
    /// Builds the three pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let slots = [Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Read];
        let (bgl, pl) = layouts(gpu, "embedding", &slots);
        Ok(Embedding {
            forward: pipeline(gpu, "embedding", "forward", &pl, &[])?,
            forward_v4: pipeline(gpu, "embedding", "forward_v4", &pl, &[])?,
            backward_table: pipeline(gpu, "embedding", "backward_table", &pl, &[])?,
            backward_pos: pipeline(gpu, "embedding", "backward_pos", &pl, &[])?,
            bgl,
            dummy: GpuBuffer::zeros(gpu, "embedding dummy", 4)?,
        })
    }

    fn params(s: &EmbedShape) -> Result<EmbedParams> {
        let fits = |v: usize| v > 0 && v <= u32::MAX as usize;
        let ok = fits(s.n)
            && fits(s.t)
            && fits(s.dim)
            && s.vocab > 0
            && s.vocab <= 1 << 24
            && s.n.is_multiple_of(s.t)
            && s.n.checked_mul(s.dim).is_some_and(fits)
            && s.vocab.checked_mul(s.dim).is_some_and(fits);
        if !ok {
            return Err(Error::InvalidArgument(format!(
                "embedding: unusable shape {s:?} (tokens a whole number of sequences, vocab at most 2^24)"
            )));
        }
        Ok(EmbedParams { n: s.n as u32, t: s.t as u32, dim: s.dim as u32, vocab: s.vocab as u32 })
    }

    /// Records `y ← table[ids] + pos` (`y` `[n, dim]`).
    pub fn encode_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        s: &EmbedShape,
        ids: &GpuBuffer<f32>,
        (table, pos): (&GpuBuffer<f32>, &GpuBuffer<f32>),
        y: &GpuBuffer<f32>,
    ) -> Result<()> {
        let p = Self::params(s)?;
        check_len("embedding", "ids", ids.len(), s.n)?;
        check_len("embedding", "table", table.len(), s.vocab * s.dim)?;
        check_len("embedding", "pos", pos.len(), s.t * s.dim)?;
        check_len("embedding", "y", y.len(), s.n * s.dim)?;
        let u = uniform(gpu, "embedding", &p);
        let bufs = [&u, ids.buffer(), table.buffer(), pos.buffer(), y.buffer(), self.dummy.buffer()];
        let (pipeline, threads) =
            if s.dim.is_multiple_of(4) { (&self.forward_v4, s.n * s.dim / 4) } else { (&self.forward, s.n * s.dim) };
        dispatch(gpu, enc, "embedding", pipeline, &self.bgl, &bufs, (threads as u32).div_ceil(WG))
    }

    /// Records the gradients of the table (`[vocab, dim]`) and of the positions (`[t, dim]`)
    /// from `dy` `[n, dim]`.
    pub fn encode_backward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        s: &EmbedShape,
        ids: &GpuBuffer<f32>,
        dy: &GpuBuffer<f32>,
        (dtable, dpos): (&GpuBuffer<f32>, &GpuBuffer<f32>),
    ) -> Result<()> {
        let p = Self::params(s)?;
        check_len("embedding", "ids", ids.len(), s.n)?;
        check_len("embedding", "dy", dy.len(), s.n * s.dim)?;
        check_len("embedding", "dtable", dtable.len(), s.vocab * s.dim)?;
        check_len("embedding", "dpos", dpos.len(), s.t * s.dim)?;
        let u = uniform(gpu, "embedding", &p);
        let d = self.dummy.buffer();
        let bufs = [&u, ids.buffer(), d, d, dtable.buffer(), dy.buffer()];
        dispatch(gpu, enc, "embedding", &self.backward_table, &self.bgl, &bufs, s.vocab as u32)?;
        let bufs = [&u, d, d, d, dpos.buffer(), dy.buffer()];
        dispatch(gpu, enc, "embedding", &self.backward_pos, &self.bgl, &bufs, ((s.t * s.dim) as u32).div_ceil(WG))
    }
}
