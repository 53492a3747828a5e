//! `heads`: attention heads between the token-major layout `[B, T, P, H, D]` of a layer's
//! activations (P parts per position: 3 for a fused q|k|v projection) and the head-major
//! `[B, H, T, D]` of attention's batched products (`split` one part), and back (`merge` into one
//! part). A thread per head-major element (per vec4 of it where heads hold multiples of 4
//! values) on a GPU, per head-major row of a head's values on a CPU adapter (the same moves).
//! A fused q|k|v tensor's three parts move in one launch ([`Heads::encode_parts`]).
//! Bindings: 0 params, 1 src, 2 dst; the three-part launch 0 params, 1 the token-major tensor,
//! 2..4 the head-major parts.
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
    /// Any head size: a thread per element, or per row on the per-row path.
    pipeline: wgpu::ComputePipeline,
    /// Heads of multiples of 4 values: through vec4s.
    pipeline_v4: wgpu::ComputePipeline,
    /// All three parts of a q|k|v tensor in one launch (heads of multiples of 4 values), with
    /// its own layout: `main_parts_rows_v4` on the per-row path, `main_parts_v4` elsewhere.
    parts_bgl: wgpu::BindGroupLayout,
    parts: wgpu::ComputePipeline,
    /// A thread per head-major row of `d` values (entries `main_rows`, `main_rows_v4`).
    per_row: bool,
}

impl Heads {
    /// Builds the pipelines: a thread per head-major row on a CPU adapter, where SIMD integer
    /// division runs lane by lane (on llvmpipe a thread per element spent many times the move
    /// on its index arithmetic), a thread per element (or vec4) elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_thread_per_row(gpu, gpu.cpu_layouts())
    }

    /// Builds the pipelines of either layout (the same moves).
    pub fn with_thread_per_row(gpu: &Gpu, per_row: bool) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "heads", &[Slot::Uniform, Slot::Read, Slot::Write]);
        let (scalar, v4) = if per_row { ("main_rows", "main_rows_v4") } else { ("main", "main_v4") };
        let (parts_bgl, parts_pl) =
            layouts(gpu, "heads", &[Slot::Uniform, Slot::Write, Slot::Write, Slot::Write, Slot::Write]);
        let parts = if per_row { "main_parts_rows_v4" } else { "main_parts_v4" };
        Ok(Heads {
            pipeline: pipeline(gpu, "heads", scalar, &pl, &[])?,
            pipeline_v4: pipeline(gpu, "heads", v4, &pl, &[])?,
            parts: pipeline(gpu, "heads", parts, &parts_pl, &[])?,
            parts_bgl,
            per_row,
            bgl,
        })
    }

    /// Threads of a launch over one head-major tensor of `g`: a row each on the per-row path,
    /// else a vec4 (`v4`) or a value each.
    fn threads(&self, g: &HeadsGeom, v4: bool) -> usize {
        match (self.per_row, v4) {
            (true, _) => g.head_major_len() / g.d,
            (false, true) => g.head_major_len() / 4,
            (false, false) => g.head_major_len(),
        }
    }

    fn params(g: &HeadsGeom, part: usize, merge: bool) -> Result<HeadsParams> {
        let n = [g.batch, g.t, g.heads, g.d, g.parts].iter().try_fold(1usize, |n, &v| n.checked_mul(v));
        if n.is_none_or(|n| n == 0 || n > u32::MAX as usize) || part >= g.parts {
            return Err(Error::InvalidArgument(format!("heads: part {part} of {g:?} is empty or too large")));
        }
        Ok(HeadsParams {
            batch: g.batch as u32,
            t: g.t as u32,
            heads: g.heads as u32,
            d: g.d as u32,
            n: g.head_major_len() as u32,
            merge: merge as u32,
            parts: g.parts as u32,
            part: part as u32,
        })
    }

    /// Records all three parts of a fused q|k|v tensor at once: `heads[j] ← part j of token`
    /// as `[B, H, T, D]` (`merge` false), or `heads[j]` into part `j` of `token` (`merge` true).
    /// One launch where heads hold multiples of 4 values, else three [`Heads::encode`]s; the
    /// same moves either way. `g.parts` must be 3.
    pub fn encode_parts(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        token: &GpuBuffer<f32>,
        heads: [&GpuBuffer<f32>; 3],
        g: &HeadsGeom,
        merge: bool,
    ) -> Result<()> {
        if g.parts != 3 {
            return Err(Error::InvalidArgument(format!("heads: encode_parts moves three parts, not {}", g.parts)));
        }
        if !g.d.is_multiple_of(4) {
            for (part, h) in heads.into_iter().enumerate() {
                let (src, dst) = if merge { (h, token) } else { (token, h) };
                self.encode(gpu, enc, src, dst, g, part, merge)?;
            }
            return Ok(());
        }
        let p = Self::params(g, 0, merge)?;
        check_len("heads", "the token-major tensor", token.len(), g.token_major_len())?;
        for h in heads {
            check_len("heads", "a head-major part", h.len(), g.head_major_len())?;
        }
        let params = uniform(gpu, "heads", &p);
        let threads = self.threads(g, true);
        let bufs = [&params, token.buffer(), heads[0].buffer(), heads[1].buffer(), heads[2].buffer()];
        dispatch(gpu, enc, "heads", &self.parts, &self.parts_bgl, &bufs, (threads as u32).div_ceil(WG))
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
        let p = Self::params(g, part, merge)?;
        let (head, token) = if merge { (src, dst) } else { (dst, src) };
        check_len("heads", "the head-major tensor", head.len(), g.head_major_len())?;
        check_len("heads", "the token-major tensor", token.len(), g.token_major_len())?;
        let params = uniform(gpu, "heads", &p);
        let v4 = g.d.is_multiple_of(4);
        let pipeline = if v4 { &self.pipeline_v4 } else { &self.pipeline };
        let groups = (self.threads(g, v4) as u32).div_ceil(WG);
        dispatch(gpu, enc, "heads", pipeline, &self.bgl, &[&params, src.buffer(), dst.buffer()], groups)
    }
}
