//! `gemm_levels`: `C = epilogue(A·op(B)ᵀ)` with A a TinyScript-quantized tensor
//! ([`TinyScriptTensor`]: codes, one scale per row, a level table), decoded to f32 as tiles are
//! loaded, and B in f32 ([`GemmLevels::encode`]) or TinyScript-coded as well
//! ([`GemmLevels::encode_coded`]); `op(B)` is `[N, K]`, stored `[K, N]` with `trans_b`. The
//! products of a TinyScript network: the forward `Q(X)·Wᵀ`, the input gradient `Q(dY)·W` and the
//! weight gradient `Q(dYᵀ)·Q(X)`. Tiling and split-K as [`super::gemm_f32`]. Bindings:
//! 0 `GemmParams`, 1 a codes, 2 a scales, 3 levels (A's, then B's), 4 b (f32 or codes), 5 bias,
//! 6 c, 7 amax, 8 b scales. On a CPU adapter with 8-lane subgroups (lavapipe) the untiled entry
//! points ([`GemmLevels::encode`], `encode_coded`, `encode_coded_tables`) run
//! [`super::gemm_levels_lanes`] instead (gemm_f32_lanes' subgroup tiles on the decoded values);
//! the `_with` entry points always run the tile they are given. Reference:
//! [`crate::reference::gemm_levels`].

use super::gemm::{
    encode_split, pick_fastest, tiles, workgroups, Dummies, Epilogue, GemmParams, Tile, TileCache, TilePipelines,
};
use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_levels_lanes::{GemmLevelsLanes, SLOTS};
use super::tinyscript::TinyScriptTensor;
use super::{check_len, dispatch, layouts, pipeline, uniform};
use crate::tensor::GpuBuffer;
use crate::timing::gpu_seconds;
use crate::tinyscript::LevelTable;
use crate::{Error, Gpu, Result};

/// The B operand: f32 values, or TinyScript codes (with both tables in one buffer, if given).
#[derive(Copy, Clone)]
enum Operand<'a> {
    F32(&'a GpuBuffer<f32>),
    Codes(&'a TinyScriptTensor, Option<&'a GpuBuffer<u32>>),
}

/// N of a coded product `A·op(B)ᵀ`, checking that op(B)'s K is A's.
fn coded_n(a: &TinyScriptTensor, b: &TinyScriptTensor, trans_b: bool) -> Result<usize> {
    let (n, k) = if trans_b { (b.cols, b.rows) } else { (b.rows, b.cols) };
    if k != a.cols {
        return Err(Error::Shape {
            op: "gemm_levels",
            detail: format!(
                "A is [{}, {}] but op(B) is [{n}, {k}] (B stored [{}, {}], trans_b {trans_b})",
                a.rows, a.cols, b.rows, b.cols
            ),
        });
    }
    Ok(n)
}

/// The TinyScript × f32 and TinyScript × TinyScript GEMMs.
pub struct GemmLevels {
    bgl: wgpu::BindGroupLayout,
    f32_b: TilePipelines,
    coded_b: TilePipelines,
    /// `gemm_levels_lanes`, on a CPU adapter with 8-lane subgroups.
    lanes: Option<GemmLevelsLanes>,
    dummies: Dummies,
    cache: TileCache,
}

impl GemmLevels {
    /// Builds the pipelines of every tile candidate, for both kinds of B.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "gemm_levels", SLOTS);
        let build = |coded: bool| {
            TilePipelines::new(&Tile::ALL, |t| {
                let b = if coded { 1.0 } else { 0.0 };
                pipeline(gpu, "gemm_levels", t.entry(), &pl, &[("TPT", t.tpt().min(4) as f64), ("B_CODES", b)])
            })
        };
        Ok(GemmLevels {
            f32_b: build(false)?,
            coded_b: build(true)?,
            lanes: match GemmF32Lanes::chosen(gpu) {
                true => Some(GemmLevelsLanes::new(gpu)?),
                false => None,
            },
            bgl,
            dummies: Dummies::new(gpu)?,
            cache: TileCache::new(gpu),
        })
    }

    /// Whether this adapter runs `gemm_levels_lanes` for the untiled entry points.
    pub fn uses_lanes(&self) -> bool {
        self.lanes.is_some()
    }

    /// The tile tuned for the class of an `m × n × k` product, if [`GemmLevels::tune`] ran on one.
    pub fn tuned(&self, m: usize, n: usize, k: usize) -> Option<Tile> {
        self.cache.get(m, n, k)
    }

    /// Times every tile candidate on an `m × n × k` product with scratch operands (A in codes of
    /// a uniform 4-bit table, B in f32 stored `[n, k]`; submits and waits) and caches the fastest
    /// for the shape's class, which the untiled entry points then run where the adapter has no
    /// lanes kernel (both kinds of B).
    pub fn tune(&self, gpu: &Gpu, m: usize, n: usize, k: usize) -> Result<(Tile, Vec<(Tile, f64)>)> {
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::Empty("gemm_levels"));
        }
        let table = LevelTable::uniform(4)?;
        let words = m * k.div_ceil(table.per_word() as usize);
        let codes: Vec<u32> = (0..words as u32).map(|i| crate::rng::draw(0x5eed, i)).collect();
        let a = TinyScriptTensor {
            codes: GpuBuffer::from_slice(gpu, "tune codes", &codes)?,
            scales: GpuBuffer::from_slice(gpu, "tune scales", &vec![1.0f32; m])?,
            levels: GpuBuffer::from_slice(gpu, "tune levels", &table.levels)?,
            table,
            rows: m,
            cols: k,
        };
        let bv: Vec<f32> = (0..(n * k) as u32).map(|i| crate::rng::uniform(0x5eee, i) - 0.5).collect();
        let b = GpuBuffer::from_slice(gpu, "tune b", &bv)?;
        let c = GpuBuffer::<f32>::zeros(gpu, "tune c", m * n)?;
        let iters = ((2e8 / (2.0 * (m * n * k) as f64)) as u32).clamp(1, 10);
        let r = pick_fastest(&Tile::ALL, |t| {
            gpu_seconds(gpu, iters, 2, |e| self.encode_with(gpu, e, t, &a, &b, n, false, &Epilogue::default(), &c))
        })?;
        self.cache.insert(m, n, k, r.0);
        Ok(r)
    }

    /// Records `c ← epilogue(A·op(b)ᵀ)`, `A` `[m, k]` = `a`, `op(b)` `[n, k]` in f32.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &TinyScriptTensor,
        b: &GpuBuffer<f32>,
        n: usize,
        trans_b: bool,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, None, a, Operand::F32(b), n, trans_b, epi, c)
    }

    /// Records with an explicit tile.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &TinyScriptTensor,
        b: &GpuBuffer<f32>,
        n: usize,
        trans_b: bool,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, Some(tile), a, Operand::F32(b), n, trans_b, epi, c)
    }

    /// Records `c ← epilogue(A·op(B)ᵀ)` with both operands TinyScript-coded: `b` stored
    /// `[n, k]`, or `[k, n]` with `trans_b` (then its scales run along K).
    pub fn encode_coded(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &TinyScriptTensor,
        b: &TinyScriptTensor,
        trans_b: bool,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = coded_n(a, b, trans_b)?;
        self.record(gpu, enc, None, a, Operand::Codes(b, None), n, trans_b, epi, c)
    }

    /// As [`GemmLevels::encode_coded`] with an explicit tile.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_coded_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &TinyScriptTensor,
        b: &TinyScriptTensor,
        trans_b: bool,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let n = coded_n(a, b, trans_b)?;
        self.record(gpu, enc, Some(tile), a, Operand::Codes(b, None), n, trans_b, epi, c)
    }

    /// As [`GemmLevels::encode_coded`] with both tables already on the GPU: `tables` holds A's
    /// levels followed by B's (a buffer the caller owns and may rewrite between submissions).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_coded_tables(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &TinyScriptTensor,
        b: &TinyScriptTensor,
        trans_b: bool,
        tables: &GpuBuffer<u32>,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        check_len("gemm_levels", "tables", tables.len(), a.table.levels.len() + b.table.levels.len())?;
        let n = coded_n(a, b, trans_b)?;
        self.record(gpu, enc, None, a, Operand::Codes(b, Some(tables)), n, trans_b, epi, c)
    }

    /// Records the product with `tile`, or with `None` the lanes kernel where the adapter has it,
    /// else the tuned (or heuristic) tile.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Option<Tile>,
        a: &TinyScriptTensor,
        b: Operand,
        n: usize,
        trans_b: bool,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let (m, k) = (a.rows, a.cols);
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::Empty("gemm_levels"));
        }
        check_len("gemm_levels", "c", c.len(), m * n)?;
        epi.check("gemm_levels", n)?;
        let words = k.div_ceil(a.table.per_word() as usize);
        check_len("gemm_levels", "A codes", a.codes.len(), m * words)?;
        check_len("gemm_levels", "A scales", a.scales.len(), m)?;
        let (b_buf, b_scales, b_words, b_table, levels, pipes) = match b {
            Operand::F32(buf) => {
                check_len("gemm_levels", "b", buf.len(), n * k)?;
                (buf.buffer(), self.dummies.f32.buffer(), 0, None, a.levels.clone(), &self.f32_b)
            }
            Operand::Codes(t, tables) => {
                let bw = t.cols.div_ceil(t.table.per_word() as usize);
                check_len("gemm_levels", "B codes", t.codes.len(), t.rows * bw)?;
                check_len("gemm_levels", "B scales", t.scales.len(), t.rows)?;
                let levels = match tables {
                    Some(both) => both.clone(),
                    None => {
                        let both: Vec<u32> = a.table.levels.iter().chain(&t.table.levels).copied().collect();
                        GpuBuffer::from_slice(gpu, "gemm_levels tables", &both)?
                    }
                };
                (t.codes.buffer(), t.scales.buffer(), bw as u32, Some(&t.table), levels, &self.coded_b)
            }
        };
        // aux0: bits of A and B, and which of them is unsigned; aux1: their level counts.
        let (b_bits, b_unsigned, b_levels) =
            b_table.map_or((0, 0, 0), |t| (t.bits, !t.signed as u32, t.levels.len() as u32));
        let aux0 = a.table.bits | (b_bits << 8) | ((!a.table.signed as u32) << 16) | (b_unsigned << 17);
        let aux1 = a.table.levels.len() as u32 | (b_levels << 16);
        let mut p = GemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            flags: epi.flags(),
            trans_b: trans_b as u32,
            a_words: words as u32,
            b_words,
            samples: 1,
            aux: [aux0, aux1],
            ..Default::default()
        };
        let bias = epi.bias.unwrap_or(&self.dummies.f32);
        let amax = epi.amax.unwrap_or(&self.dummies.u32);
        let tile = match (tile, &self.lanes) {
            (Some(t), _) => t,
            (None, Some(lanes)) => {
                let buffers = [
                    a.codes.buffer(),
                    a.scales.buffer(),
                    levels.buffer(),
                    b_buf,
                    bias.buffer(),
                    amax.buffer(),
                    b_scales,
                ];
                let b_bits = b_table.map(|t| t.bits);
                return lanes.record(gpu, enc, p, a.table.bits, b_bits, &self.dummies.sum, buffers, c);
            }
            (None, None) => self.cache.choose(m, n, k, &Tile::ALL),
        };
        (p.tiles_n, p.total_tiles) = tiles(m as u32, n as u32, tile.edge())?;
        let pipe = pipes.get("gemm_levels", tile)?;
        encode_split(gpu, enc, &self.dummies.sum, p, c, |enc, target, p| {
            let params = uniform(gpu, "gemm_levels", &p);
            let buffers = [
                &params,
                a.codes.buffer(),
                a.scales.buffer(),
                levels.buffer(),
                b_buf,
                bias.buffer(),
                target,
                amax.buffer(),
                b_scales,
            ];
            dispatch(gpu, enc, "gemm_levels", pipe, &self.bgl, &buffers, workgroups(&p))
        })
    }
}
