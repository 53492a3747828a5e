//! `gemm_levels`: `C = epilogue(A·op(B)ᵀ)` with A a TinyScript-quantized tensor
//! ([`TinyScriptTensor`]: codes, one scale per row, a level table), decoded to f32 as tiles are
//! loaded, and B in f32 (`[N, K]`, or `[K, N]` with `trans_b`). The gradient products of a
//! TinyScript neural gradient: `dX = Q(dY)·W` and `dW = Q(dYᵀ)·X`. Tiling and split-K as
//! [`super::gemm_f32`]. Bindings: 0 `GemmParams`, 1 a codes, 2 a scales, 3 levels, 4 b, 5 bias,
//! 6 c, 7 amax. Reference: [`crate::reference::gemm_levels`].

use super::gemm::{encode_split, tiles, workgroups, Dummies, Epilogue, GemmParams, Tile, TileCache, TilePipelines};
use super::tinyscript::TinyScriptTensor;
use super::{bind, check_len, dispatch, layouts, pipeline, uniform, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

const SLOTS: &[Slot] =
    &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Write];

/// The TinyScript × f32 GEMM.
pub struct GemmLevels {
    bgl: wgpu::BindGroupLayout,
    pipelines: TilePipelines,
    dummies: Dummies,
    cache: TileCache,
}

impl GemmLevels {
    /// Builds the pipelines of every tile candidate.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "gemm_levels", SLOTS);
        let pipelines = TilePipelines::new(&Tile::ALL, |t| {
            pipeline(gpu, "gemm_levels", t.entry(), &pl, &[("TPT", t.tpt().min(4) as f64)])
        })?;
        Ok(GemmLevels { pipelines, bgl, dummies: Dummies::new(gpu)?, cache: TileCache::default() })
    }

    /// Records `c ← epilogue(A·op(b)ᵀ)`, `A` `[m, k]` = `a`, `op(b)` `[n, k]`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        a: &TinyScriptTensor,
        b: &GpuBuffer<f32>,
        n: usize,
        trans_b: bool,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let tile = self.cache.choose(a.rows, n, a.cols, &Tile::ALL);
        self.encode_with(gpu, enc, tile, a, b, n, trans_b, epi, c)
    }

    /// Records with an explicit tile.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_with(
        &self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        tile: Tile,
        a: &TinyScriptTensor,
        b: &GpuBuffer<f32>,
        n: usize,
        trans_b: bool,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let (m, k) = (a.rows, a.cols);
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::Empty("gemm_levels"));
        }
        check_len("gemm_levels", "b", b.len(), n * k)?;
        check_len("gemm_levels", "c", c.len(), m * n)?;
        epi.check("gemm_levels", n)?;
        let words = k.div_ceil(a.table.per_word() as usize);
        check_len("gemm_levels", "A codes", a.codes.len(), m * words)?;
        let (tiles_n, total_tiles) = tiles(m as u32, n as u32, tile.edge())?;
        let p = GemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            flags: epi.flags(),
            trans_b: trans_b as u32,
            tiles_n,
            total_tiles,
            a_words: words as u32,
            samples: 1,
            aux: [a.table.bits, a.table.levels.len() as u32],
            ..Default::default()
        };
        let bias = epi.bias.unwrap_or(&self.dummies.f32);
        let amax = epi.amax.unwrap_or(&self.dummies.u32);
        let pipe = self.pipelines.get("gemm_levels", tile)?;
        encode_split(gpu, enc, &self.dummies.sum, p, c, |enc, target, p| {
            let params = uniform(gpu, "gemm_levels", &p);
            let group = bind(
                gpu,
                "gemm_levels",
                &self.bgl,
                &[
                    &params,
                    a.codes.buffer(),
                    a.scales.buffer(),
                    a.levels.buffer(),
                    b.buffer(),
                    bias.buffer(),
                    target,
                    amax.buffer(),
                ],
            );
            dispatch(enc, "gemm_levels", pipe, &group, workgroups(&p))
        })
    }
}
