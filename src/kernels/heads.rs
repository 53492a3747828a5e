//! `heads`: attention heads between the token-major layout `[B, T, P, H, D]` of a layer's
//! activations (P parts per position: 3 for a fused q|k|v projection) and the head-major
//! `[B, H, T, D]` of attention's batched products (`split` one part), and back (`merge` into one
//! part). One thread per head-major element. Bindings: 0 params, 1 src, 2 dst.
//! Reference: [`crate::reference::heads`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct HeadsParams {
    batch: u32,
    t: u32,
    heads: u32,
    d: u32,
    n: u32,
    merge: u32,
    parts: u32,
    part: u32,
}
const _: () = assert!(std::mem::size_of::<HeadsParams>() == 32);

/// Attention's layout geometry: `batch` batches of `t` positions, `heads` heads of `d` values,
/// and `parts` parts per position in the token-major tensor.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HeadsGeom {
    /// Batches.
    pub batch: usize,
    /// Positions.
    pub t: usize,
    /// Heads.
    pub heads: usize,
    /// Values per head.
    pub d: usize,
    /// Parts per position of the token-major tensor (3 for a fused q|k|v projection).
    pub parts: usize,
}

impl HeadsGeom {
    /// Elements of one head-major tensor `[B, H, T, D]`.
    pub fn head_major_len(&self) -> usize {
        self.batch * self.heads * self.t * self.d
    }

    /// Elements of the token-major tensor `[B, T, P, H, D]`.
    pub fn token_major_len(&self) -> usize {
        self.head_major_len() * self.parts
    }
}

/// The head layout kernel.
pub struct Heads {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Heads {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "heads", &[Slot::Uniform, Slot::Read, Slot::Write]);
        Ok(Heads { pipeline: pipeline(gpu, "heads", "main", &pl, &[])?, bgl })
    }

    /// Records `dst ← part `part` of src` as `[B, H, T, D]` (`merge` false), or writes `src`
    /// `[B, H, T, D]` into part `part` of `dst` (`merge` true; the other parts keep their values).
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        src: &GpuBuffer<f32>,
        dst: &GpuBuffer<f32>,
        g: &HeadsGeom,
        part: usize,
        merge: bool,
    ) -> Result<()> {
        let n = [g.batch, g.t, g.heads, g.d, g.parts].iter().try_fold(1usize, |n, &v| n.checked_mul(v));
        if n.is_none_or(|n| n == 0 || n > u32::MAX as usize) || part >= g.parts {
            return Err(Error::InvalidArgument(format!("heads: part {part} of {g:?} is empty or too large")));
        }
        let (head, token) = if merge { (src, dst) } else { (dst, src) };
        check_len("heads", "the head-major tensor", head.len(), g.head_major_len())?;
        check_len("heads", "the token-major tensor", token.len(), g.token_major_len())?;
        let p = HeadsParams {
            batch: g.batch as u32,
            t: g.t as u32,
            heads: g.heads as u32,
            d: g.d as u32,
            n: g.head_major_len() as u32,
            merge: merge as u32,
            parts: g.parts as u32,
            part: part as u32,
        };
        let params = uniform(gpu, "heads", &p);
        let groups = (g.head_major_len() as u32).div_ceil(WG);
        dispatch(gpu, enc, "heads", &self.pipeline, &self.bgl, &[&params, src.buffer(), dst.buffer()], groups)
    }
}
