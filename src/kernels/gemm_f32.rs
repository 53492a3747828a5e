//! `gemm_f32`: tiled, register-blocked f32 GEMM — the baseline and the fallback.
//!
//! Math: `C = epilogue(op(A)·op(B)ᵀ)`, `op(A)` `[M, K]` read from A stored `[M, K]`, or `[K, M]`
//! when `trans_a`; `op(B)` `[N, K]` from B stored `[N, K]`, or `[K, N]` when `trans_b` (so NT, NN
//! and TN products all run without a transpose pass). Layout: 64×64 output tile per workgroup,
//! 16×16 threads with 4×4 outputs each, K in steps of 16 through workgroup memory.
//! Bindings: 0 `GemmParams`, 1 a, 2 b, 3 bias, 4 c, 5 amax. Reference:
//! [`crate::reference::gemm_f32`].

use super::gemm::{tiles, Dummies, Epilogue, GemmParams, F32_SLOTS};

use super::{bind, check_len, dispatch, layouts, pipeline, uniform};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// Dimensions and transposition of an f32 GEMM.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GemmShape {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
    /// A is stored `[K, M]`.
    pub trans_a: bool,
    /// B is stored `[K, N]`.
    pub trans_b: bool,
}

impl GemmShape {
    /// `C[m,n] = A[m,k]·B[n,k]ᵀ`.
    pub fn nt(m: usize, n: usize, k: usize) -> Self {
        GemmShape { m, n, k, trans_a: false, trans_b: false }
    }

    pub(crate) fn params(&self, op: &'static str, flags: u32, tile: u32) -> Result<GemmParams> {
        if self.m == 0 || self.n == 0 || self.k == 0 {
            return Err(Error::Empty(op));
        }
        for (name, v) in [("m", self.m), ("n", self.n), ("k", self.k)] {
            if v > u32::MAX as usize / 2 {
                return Err(Error::InvalidArgument(format!("{op}: {name} = {v} is too large")));
            }
        }
        let (tiles_n, total_tiles) = tiles(self.m as u32, self.n as u32, tile)?;
        Ok(GemmParams {
            m: self.m as u32,
            n: self.n as u32,
            k: self.k as u32,
            flags,
            trans_a: self.trans_a as u32,
            trans_b: self.trans_b as u32,
            tiles_n,
            total_tiles,
            samples: 1,
            ..Default::default()
        })
    }
}

/// Records an f32 GEMM with `pipeline` (shared by the tiled and naive kernels).
pub(crate) fn encode_f32(
    gpu: &Gpu,
    enc: &mut wgpu::CommandEncoder,
    name: &'static str,
    bgl: &wgpu::BindGroupLayout,
    pipeline: &wgpu::ComputePipeline,
    dummies: &Dummies,
    tile: u32,
    a: &GpuBuffer<f32>,
    b: &GpuBuffer<f32>,
    s: GemmShape,
    epi: &Epilogue,
    c: &GpuBuffer<f32>,
) -> Result<()> {
    let p = s.params(name, epi.flags(), tile)?;
    check_len(name, "a", a.len(), s.m * s.k)?;
    check_len(name, "b", b.len(), s.n * s.k)?;
    check_len(name, "c", c.len(), s.m * s.n)?;
    epi.check(name, s.n)?;
    let params = uniform(gpu, name, &p);
    let bias = epi.bias.unwrap_or(&dummies.f32);
    let amax = epi.amax.unwrap_or(&dummies.u32);
    let group = bind(gpu, name, bgl, &[&params, a.buffer(), b.buffer(), bias.buffer(), c.buffer(), amax.buffer()]);
    dispatch(enc, name, pipeline, &group, p.total_tiles)
}

/// The tiled f32 GEMM.
pub struct GemmF32 {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    dummies: Dummies,
}

impl GemmF32 {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "gemm_f32", F32_SLOTS);
        Ok(GemmF32 { pipeline: pipeline(gpu, "gemm_f32", "main", &pl, &[])?, bgl, dummies: Dummies::new(gpu)? })
    }

    /// Records `c ← epilogue(op(a)·op(b)ᵀ)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        s: GemmShape,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        encode_f32(gpu, enc, "gemm_f32", &self.bgl, &self.pipeline, &self.dummies, super::gemm::TILE, a, b, s, epi, c)
    }
}
