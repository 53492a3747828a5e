//! `gemm_f32`: tiled, register-blocked f32 GEMM — the baseline and the fallback.
//!
//! Math: `C = epilogue(op(A)·op(B)ᵀ)`, `op(A)` `[M, K]` read from A stored `[M, K]`, or `[K, M]`
//! when `trans_a`; `op(B)` `[N, K]` from B stored `[N, K]`, or `[K, N]` when `trans_b` (so NT, NN
//! and TN products all run without a transpose pass). Layout: 128×128, 64×64 or 32×32 output tile
//! per workgroup ([`Tile`], picked per shape class by [`GemmF32::tune`] or a heuristic), 16×16
//! threads with 8×8 (vec4 registers, K steps of 8), 4×4 or 2×2 outputs each (K steps of 16)
//! through workgroup memory. On a CPU adapter with 8-lane subgroups (lavapipe) [`GemmF32::encode`]
//! runs [`super::gemm_f32_lanes`] instead, which gives the same bits there without workgroup
//! memory where neither splits K (the two plan their splits from their own tiles).
//! Bindings: 0 `GemmParams`, 1 a, 2 b, 3 bias, 4 c, 5 amax. Reference:
//! [`crate::reference::gemm_f32`].

use super::gemm::{
    encode_split, pick_fastest, tiles_rect, workgroups, Dummies, Epilogue, GemmParams, Tile, TileCache, TilePipelines,
    F32_SLOTS,
};
use super::gemm_f32_lanes::GemmF32Lanes;
use crate::timing::gpu_seconds;

use super::{check_len, dispatch, layouts, pipeline, uniform};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

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

    /// The uniform block for output tiles of `tile = (rows, columns)`.
    pub(crate) fn params(&self, op: &'static str, flags: u32, tile: (u32, u32)) -> Result<GemmParams> {
        if self.m == 0 || self.n == 0 || self.k == 0 {
            return Err(Error::Empty(op));
        }
        for (name, v) in [("m", self.m), ("n", self.n), ("k", self.k)] {
            if v > u32::MAX as usize / 2 {
                return Err(Error::InvalidArgument(format!("{op}: {name} = {v} is too large")));
            }
        }
        let (tiles_n, total_tiles) = tiles_rect(self.m as u32, self.n as u32, tile.0, tile.1)?;
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

/// Records an f32 GEMM with `pipeline` (shared by the tiled, naive and lanes kernels); with `swap`
/// (the lanes kernel only), `a`, `b` and `s` are those of `Cᵀ = B·Aᵀ`, which the launch stores as
/// C.
pub(crate) fn encode_f32<R: crate::Record>(
    gpu: &Gpu,
    enc: &mut R,
    name: &'static str,
    bgl: &wgpu::BindGroupLayout,
    pipeline: &wgpu::ComputePipeline,
    dummies: &Dummies,
    tile: (u32, u32),
    a: &GpuBuffer<f32>,
    b: &GpuBuffer<f32>,
    s: GemmShape,
    epi: &Epilogue,
    c: &GpuBuffer<f32>,
    split: bool,
    batches: usize,
    swap: bool,
) -> Result<()> {
    let swap_bit = if swap { super::gemm::flags::SWAP } else { 0 };
    // (The swap is no epilogue: it does not keep a product from splitting.)
    let mut p = s.params(name, epi.flags(), tile)?;
    if batches == 0 {
        return Err(Error::Empty(name));
    }
    p.batches = u32::try_from(batches).map_err(|_| Error::InvalidArgument(format!("{name}: {batches} batches")))?;
    super::grid(
        p.total_tiles
            .checked_mul(p.batches)
            .ok_or_else(|| Error::InvalidArgument(format!("{name}: too many tiles")))?,
    )?;
    let total =
        |x: usize| x.checked_mul(batches).ok_or_else(|| Error::InvalidArgument(format!("{name}: sizes overflow")));
    check_len(name, "a", a.len(), total(s.m * s.k)?)?;
    check_len(name, "b", b.len(), total(s.n * s.k)?)?;
    check_len(name, "c", c.len(), total(s.m * s.n)?)?;
    // (With `swap`, s is Cᵀ's shape: C's columns are its rows.)
    epi.check(name, if swap { s.m } else { s.n })?;
    let bias = epi.bias.unwrap_or(&dummies.f32);
    let amax = epi.amax.unwrap_or(&dummies.u32);
    let go = |enc: &mut R, target: &wgpu::Buffer, mut p: GemmParams| {
        p.flags |= swap_bit;
        let params = uniform(gpu, name, &p);
        dispatch(
            gpu,
            enc,
            name,
            pipeline,
            bgl,
            &[&params, a.buffer(), b.buffer(), bias.buffer(), target, amax.buffer()],
            workgroups(&p),
        )
    };
    if split {
        encode_split(gpu, enc, &dummies.sum, p, c, go)
    } else {
        go(enc, c.buffer(), p)
    }
}

/// The tiled f32 GEMM.
pub struct GemmF32 {
    bgl: wgpu::BindGroupLayout,
    pipelines: TilePipelines,
    dummies: Arc<Dummies>,
    cache: TileCache,
    /// The 8-lane kernel, on CPU adapters that have it.
    lanes: Option<GemmF32Lanes>,
}

impl GemmF32 {
    /// Builds the pipelines of every tile candidate.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "gemm_f32", F32_SLOTS);
        let pipelines = TilePipelines::new(&Tile::ALL, |t| {
            pipeline(gpu, "gemm_f32", t.entry(), &pl, &[("TPT", t.tpt().min(4) as f64)])
        })?;
        let dummies = Arc::new(Dummies::new(gpu)?);
        let lanes = match GemmF32Lanes::chosen(gpu) {
            true => Some(GemmF32Lanes::with_dummies(gpu, dummies.clone())?),
            false => None,
        };
        Ok(GemmF32 { pipelines, bgl, dummies, cache: TileCache::new(gpu), lanes })
    }

    /// Whether [`GemmF32::encode`] and [`GemmF32::encode_batched`] run on [`GemmF32Lanes`]: on a
    /// CPU adapter with 8-lane subgroups, every shape (on lavapipe it ran 1024³ ~5× faster than
    /// the best tile); elsewhere the tiles.
    pub fn uses_lanes(&self) -> bool {
        self.lanes.is_some()
    }

    /// Records `c ← epilogue(op(a)·op(b)ᵀ)` with [`GemmF32Lanes`] where [`GemmF32::uses_lanes`],
    /// else the tuned (or heuristic) tile for this shape.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        s: GemmShape,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        if let Some(l) = &self.lanes {
            return l.encode(gpu, enc, a, b, s, epi, c);
        }
        self.encode_with(gpu, enc, self.cache.choose(s.m, s.n, s.k, &Tile::ALL), a, b, s, epi, c)
    }

    /// Records with an explicit tile (the tiled kernel, on any adapter).
    pub fn encode_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        s: GemmShape,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let p = self.pipelines.get("gemm_f32", tile)?;
        encode_f32(gpu, enc, "gemm_f32", &self.bgl, p, &self.dummies, tile.rect(), a, b, s, epi, c, true, 1, false)
    }

    /// Records `batches` products of shape `s` at once: product `i` reads `a` from element
    /// `i·m·k` and `b` from `i·n·k` (each stored as `s` says) and writes `c` from `i·m·n`, with
    /// the epilogue (its bias shared). For attention's products, one per batch and head.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_batched(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        s: GemmShape,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        if let Some(l) = &self.lanes {
            return l.encode_batched(gpu, enc, a, b, s, batches, epi, c);
        }
        let tile = self.cache.choose(s.m, s.n, s.k, &Tile::ALL);
        let p = self.pipelines.get("gemm_f32", tile)?;
        encode_f32(
            gpu,
            enc,
            "gemm_f32",
            &self.bgl,
            p,
            &self.dummies,
            tile.rect(),
            a,
            b,
            s,
            epi,
            c,
            false,
            batches,
            false,
        )
    }

    /// The tile `tune` chose for this shape's class, if it ran.
    pub fn tuned(&self, m: usize, n: usize, k: usize) -> Option<Tile> {
        self.cache.get(m, n, k)
    }

    /// Times every tile candidate on this shape (scratch operands; submits and waits) and caches
    /// the fastest for the shape's class. Returns it with each candidate's seconds per call.
    /// Where [`GemmF32::uses_lanes`], `encode` does not consult the cache.
    pub fn tune(&self, gpu: &Gpu, s: GemmShape) -> Result<(Tile, Vec<(Tile, f64)>)> {
        let a = GpuBuffer::<f32>::zeros(gpu, "tune a", s.m * s.k)?;
        let b = GpuBuffer::<f32>::zeros(gpu, "tune b", s.n * s.k)?;
        let c = GpuBuffer::<f32>::zeros(gpu, "tune c", s.m * s.n)?;
        let iters = ((2e8 / (2.0 * (s.m * s.n * s.k) as f64)) as u32).clamp(1, 10);
        let r = pick_fastest(&Tile::ALL, |t| {
            gpu_seconds(gpu, iters, 2, |e| self.encode_with(gpu, e, t, &a, &b, s, &Epilogue::default(), &c))
        })?;
        self.cache.insert(s.m, s.n, s.k, r.0);
        Ok(r)
    }
}
