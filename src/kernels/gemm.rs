//! What every GEMM launcher shares: the uniform block (mirrored by `GemmParams` in
//! `shaders/common/gemm.wgsl`), the epilogue options, and shape checks.

use super::col_sum::ColSum;
use super::{grid, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// Output tile candidates of the tiled GEMMs (16×16 threads; `TPT × TPT` outputs per thread).
/// Large tiles reuse operands best; small tiles keep more workgroups busy on thin shapes such
/// as a classifier's 10 outputs. A cache per launcher remembers which one won per shape class.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tile {
    /// 128×128 outputs per workgroup, 8×8 per thread as vec4 registers, double-buffered K steps
    /// (the shaders' `main_wide` entry point: gemm_int's own, the others' shared in
    /// `shaders/common/gemm_tiled.wgsl`).
    T128,
    /// 64×64 outputs per workgroup.
    T64,
    /// 32×32 outputs per workgroup.
    T32,
}

impl Tile {
    /// Every candidate.
    pub const ALL: [Tile; 3] = [Tile::T128, Tile::T64, Tile::T32];
    /// The candidates without the 128 tile (gemm_int with scale blocks shorter than its K step).
    pub const BASIC: [Tile; 2] = [Tile::T64, Tile::T32];

    /// Outputs per thread along each edge (the shaders' `TPT` override).
    pub fn tpt(self) -> u32 {
        match self {
            Tile::T128 => 8,
            Tile::T64 => 4,
            Tile::T32 => 2,
        }
    }

    /// Tile edge.
    pub fn edge(self) -> u32 {
        16 * self.tpt()
    }

    /// `(rows, columns)`: the edge twice.
    pub fn rect(self) -> (u32, u32) {
        (self.edge(), self.edge())
    }

    /// The shader entry point that runs this tile.
    pub fn entry(self) -> &'static str {
        match self {
            Tile::T128 => "main_wide",
            _ => "main",
        }
    }

    /// The untuned choice among `cands`: the largest tile that still gives at least
    /// [`SPLIT_BELOW_TILES`] workgroups (128×128 tiles: twice that, one per multiprocessor of a
    /// large GPU), else the smallest.
    pub fn heuristic(m: usize, n: usize, cands: &[Tile]) -> Tile {
        let enough = |t: Tile| {
            let e = t.edge() as usize;
            let want = if t == Tile::T128 { 2 * SPLIT_BELOW_TILES } else { SPLIT_BELOW_TILES };
            m.div_ceil(e) * n.div_ceil(e) >= want as usize
        };
        cands.iter().copied().find(|&t| enough(t)).unwrap_or(cands[cands.len() - 1])
    }
}

impl Tile {
    /// The untuned choice on a CPU adapter: the largest of `cands` (ordered largest first) whose
    /// padding computes at most twice the outputs `m × n` has, else the one that pads least
    /// (attention's 64×16 per-head products on a 128 tile computed 16× their outputs).
    pub fn cpu_heuristic(m: usize, n: usize, cands: &[Tile]) -> Tile {
        let waste = |t: Tile| {
            let e = t.edge() as usize;
            (m.div_ceil(e) * e * n.div_ceil(e) * e) as f64 / (m * n).max(1) as f64
        };
        cands.iter().copied().find(|&t| waste(t) <= 2.0).unwrap_or_else(|| {
            cands.iter().copied().min_by(|&a, &b| waste(a).total_cmp(&waste(b))).unwrap_or(Tile::T32)
        })
    }
}

/// One pipeline per tile candidate of a kernel.
pub(crate) struct TilePipelines(Vec<(Tile, wgpu::ComputePipeline)>);

impl TilePipelines {
    /// Builds `build(tile)` for each of `cands`.
    pub fn new(cands: &[Tile], build: impl Fn(Tile) -> Result<wgpu::ComputePipeline>) -> Result<Self> {
        Ok(TilePipelines(cands.iter().map(|&t| Ok((t, build(t)?))).collect::<Result<_>>()?))
    }

    /// The pipeline for `tile`, or an error naming the kernel if it has none.
    pub fn get(&self, op: &'static str, tile: Tile) -> Result<&wgpu::ComputePipeline> {
        self.0
            .iter()
            .find(|t| t.0 == tile)
            .map(|t| &t.1)
            .ok_or_else(|| Error::InvalidArgument(format!("{op} has no {tile:?} tile")))
    }
}

/// The shape class a tuning result applies to: `ceil(log2)` of M, N and K.
pub(crate) fn shape_class(m: usize, n: usize, k: usize) -> (u32, u32, u32) {
    let l = |v: usize| usize::BITS - v.max(1).saturating_sub(1).leading_zeros();
    (l(m), l(n), l(k))
}

/// Tuning results per shape class (burn-style autotune cache), shared by a launcher's calls.
pub(crate) struct TileCache {
    tuned: std::sync::Mutex<std::collections::HashMap<(u32, u32, u32), Tile>>,
    /// The adapter runs on the CPU (lavapipe, WARP): untuned shapes take the largest tile.
    cpu: bool,
}

impl TileCache {
    /// An empty cache for `gpu`'s launchers. On a CPU adapter the untuned choice is
    /// [`Tile::cpu_heuristic`]: a few threads gain nothing from more workgroups and the most
    /// from large per-thread blocks (llvmpipe, 2 cores: the GPT's projections ran 1.5–3.5×
    /// faster on the 128 tile than on the 32 tile the GPU heuristic gives their shapes).
    pub fn new(gpu: &Gpu) -> Self {
        TileCache { tuned: Default::default(), cpu: gpu.cpu_layouts() }
    }

    /// The tuned tile for this shape's class, if `tune` ran for it.
    pub fn get(&self, m: usize, n: usize, k: usize) -> Option<Tile> {
        self.tuned.lock().unwrap_or_else(|e| e.into_inner()).get(&shape_class(m, n, k)).copied()
    }

    /// The tuned tile, or the untuned choice among `cands` (the heuristic for the adapter).
    pub fn choose(&self, m: usize, n: usize, k: usize, cands: &[Tile]) -> Tile {
        self.get(m, n, k).filter(|t| cands.contains(t)).unwrap_or_else(|| self.untuned(m, n, cands))
    }

    /// The choice among `cands` without a tuning result: the heuristic for the adapter.
    pub fn untuned(&self, m: usize, n: usize, cands: &[Tile]) -> Tile {
        if self.cpu {
            Tile::cpu_heuristic(m, n, cands)
        } else {
            Tile::heuristic(m, n, cands)
        }
    }

    /// Records a tuning result.
    pub fn insert(&self, m: usize, n: usize, k: usize, t: Tile) {
        self.tuned.lock().unwrap_or_else(|e| e.into_inner()).insert(shape_class(m, n, k), t);
    }
}

/// Times each of `cands` with `time(tile)` (seconds) and returns the fastest.
pub(crate) fn pick_fastest(
    cands: &[Tile],
    mut time: impl FnMut(Tile) -> Result<f64>,
) -> Result<(Tile, Vec<(Tile, f64)>)> {
    let mut results = Vec::new();
    for &t in cands {
        results.push((t, time(t)?));
    }
    let best = results.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|r| r.0).unwrap_or(cands[0]);
    Ok((best, results))
}

/// Uniform block of the GEMMs (see `shaders/common/gemm.wgsl` for the fields).
#[allow(missing_docs)]
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, Pod, Zeroable)]
pub(crate) struct GemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub trans_a: u32,
    pub trans_b: u32,
    pub tiles_n: u32,
    pub total_tiles: u32,
    pub a_words: u32,
    pub b_words: u32,
    pub a_row_mul: u32,
    pub a_block_div: u32,
    pub b_row_mul: u32,
    pub b_block_div: u32,
    pub chunk: u32,
    pub samples: u32,
    pub splits: u32,
    pub k_split: u32,
    /// Kernel-specific (gemm_levels: A's and B's bits per code and level counts; gemm_int: in
    /// `.0`, 1 for the 128 tile, whose folds of scale chunks `main_combine` fuses as it does).
    pub aux: [u32; 2],
    /// Products of one shape on consecutive operands (gemm_f32 only; 0 or 1: one).
    pub batches: u32,
    /// Splits per scale chunk, restarting at every chunk ([`exact_split_plan`]); 0: splits over
    /// all of K.
    pub chunk_splits: u32,
    pub pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<GemmParams>() == 96);

impl GemmParams {
    /// The params of `Cᵀ = B·Aᵀ` for a lanes kernel (one product, no split): m and n, and every
    /// field of A with B's, exchanged, [`flags::SWAP`] set; the tiling is the launcher's to redo.
    pub(crate) fn swapped(&self) -> Self {
        GemmParams {
            m: self.n,
            n: self.m,
            flags: self.flags | flags::SWAP,
            trans_a: self.trans_b,
            trans_b: self.trans_a,
            a_words: self.b_words,
            b_words: self.a_words,
            a_row_mul: self.b_row_mul,
            a_block_div: self.b_block_div,
            b_row_mul: self.a_row_mul,
            b_block_div: self.a_block_div,
            ..*self
        }
    }
}

/// Split-K: outputs of fewer tiles than this over a long K are split along K.
pub const SPLIT_BELOW_TILES: u32 = 64;
/// No split is shorter than this many K elements (a multiple of every kernel's K step).
pub const SPLIT_MIN_K: usize = 1024;

/// How a GEMM of `total_tiles` output tiles over `k` with epilogue `flags` is split along K:
/// `(splits, k_split)`. Only plain products (no epilogue) split, into at most 256 pieces of at
/// least [`SPLIT_MIN_K`], aiming at about 2·[`SPLIT_BELOW_TILES`] workgroups. The plan depends on
/// the shape and the tile alone (the lanes kernels' 16×32, a tiled kernel's chosen tile), so a
/// kernel with a given tile gives the same results on every adapter.
pub fn split_plan(total_tiles: u32, k: usize, flags: u32) -> (u32, u32) {
    if flags != 0 || total_tiles >= SPLIT_BELOW_TILES || k < 2 * SPLIT_MIN_K {
        return (1, 0);
    }
    let want = (2 * SPLIT_BELOW_TILES / total_tiles.max(1)) as usize;
    let splits = want.min(k / SPLIT_MIN_K).clamp(1, 256);
    let k_split = k.div_ceil(splits).next_multiple_of(64);
    (k.div_ceil(k_split) as u32, k_split as u32)
}

/// How a product whose splits sum exactly (the integer GEMMs' tiles and cooperative unit, one
/// sample, per-row or per-tensor scales: the same bits whatever the split) is split along K on a
/// device of `fill` threads ([`crate::Gpu::fill`]): where [`split_plan`] splits it (few tiles over
/// a long K), into as many splits as bring its workgroups (of 256 threads, the tiles') to `fill`
/// threads if that is more than `split_plan`'s (which aims at 2·[`SPLIT_BELOW_TILES`] workgroups),
/// at most 256 splits of at least [`SPLIT_MIN_K`] elements; a `fill` of 0 keeps `split_plan`'s.
/// A weight gradient of 16 × 144 over 131,072 pixels (`resnet20`'s first stage at batch 128 on
/// 32×32 images) on five 32×32 tiles: 25 splits by `split_plan`, 125 workgroups (fewer than an
/// H200's 132 multiprocessors); 103 splits of 1,280 for the default fill (and one more for
/// int8 × int8, whose exact i32 run ends 32 pixels short: [`exact_split_plan`]).
pub fn fill_split_plan(total_tiles: u32, k: usize, fill: u32) -> (u32, u32) {
    let (splits, k_split) = split_plan(total_tiles, k, 0);
    let want = ((fill / 256) as usize).div_ceil(total_tiles.max(1) as usize).min(k / SPLIT_MIN_K).min(256);
    if splits <= 1 || want <= splits as usize {
        return (splits, k_split);
    }
    let k_split = k.div_ceil(want).next_multiple_of(64);
    (k.div_ceil(k_split) as u32, k_split as u32)
}

/// How an integer product whose splits sum exactly is split along K, over a K of scale chunks
/// of `chunk` elements (`chunk ≥ k`: one), on a device of `fill` threads: `(splits, k_split,
/// chunk_splits)`. For one chunk, [`fill_split_plan`]'s splits and 0. For several (a K past
/// [`crate::scheme::exact_chunk`]: int8 × int8 past 131,040), splits of [`fill_split_plan`]'s
/// `k_split` that restart at every chunk, `chunk_splits` to a chunk and the last chunk's fewer
/// where it is shorter, so that no split straddles a chunk and each chunk's sum is exact. Where
/// it cannot (chunks shorter than [`SPLIT_MIN_K`] or not whole K steps of 32 elements: scale
/// blocks along K; or more than 512 splits), `(1, 0, 0)`: no exact split.
/// `resnet20`'s first-stage weight gradient at batch 128 on 32×32 images (16 × 144 outputs
/// over 131,072 pixels, five 32×32 tiles) has a chunk of 131,040 and one of 32: 103 splits of
/// 1,280 for the default fill, and one more for the last chunk's 32.
pub fn exact_split_plan(total_tiles: u32, k: usize, chunk: usize, fill: u32) -> (u32, u32, u32) {
    let (splits, k_split) = fill_split_plan(total_tiles, k, fill);
    if chunk >= k || splits <= 1 {
        return (splits, k_split, 0);
    }
    if chunk < SPLIT_MIN_K || !chunk.is_multiple_of(32) {
        return (1, 0, 0);
    }
    let per = chunk.div_ceil(k_split as usize);
    let chunks = k.div_ceil(chunk);
    let last = k - (chunks - 1) * chunk;
    let total = (chunks - 1) * per + last.div_ceil(k_split as usize);
    match total <= 2 * 256 {
        true => (total as u32, k_split, per as u32),
        false => (1, 0, 0),
    }
}

/// Records a GEMM through `record(target, params)`, split along K where [`split_plan`] says so:
/// the splits write `[splits, m·n]` partial sums that `sum` adds, in split order, into `c`.
/// Batched products (`p.batches > 1`) are one launch, never split.
pub(crate) fn encode_split<R: crate::Record>(
    gpu: &Gpu,
    enc: &mut R,
    sum: &ColSum,
    mut p: GemmParams,
    c: &GpuBuffer<f32>,
    record: impl FnOnce(&mut R, &wgpu::Buffer, GemmParams) -> Result<()>,
) -> Result<()> {
    let (splits, k_split) = split_plan(p.total_tiles, p.k as usize, p.flags);
    // (Batched products, each its own product of p.m × p.n, are never split.)
    if splits <= 1 || p.batches > 1 {
        return record(enc, c.buffer(), p);
    }
    p.splits = splits;
    p.k_split = k_split;
    let mn = p.m as usize * p.n as usize;
    let partial = enc.scratch::<f32>(gpu, "split-K partial sums", splits as usize * mn)?;
    record(enc, partial.buffer(), p)?;
    sum.encode(gpu, enc, &partial, splits as usize, mn, c)
}

/// Whether a lanes GEMM (16×32 output tiles) computes C (`m × n`) as `Cᵀ = B·Aᵀ`: where Cᵀ's tiles
/// cover fewer outputs, padding included, than C's — C narrower than a tile and taller than it
/// is wide (N ≤ 16 leaves half of every tile's columns idle: a first convolution's 16 output
/// channels, a classifier's 10 classes). The bits are the same either way.
pub(crate) fn lanes_swaps(m: usize, n: usize) -> bool {
    lanes_padded(n, m) < lanes_padded(m, n)
}

/// Outputs, padding included, of a lanes GEMM's 16×32 tiles over an `m × n` output.
pub(crate) fn lanes_padded(m: usize, n: usize) -> usize {
    use super::gemm_f32_lanes::{TILE_M, TILE_N};
    m.next_multiple_of(TILE_M as usize) * n.next_multiple_of(TILE_N as usize)
}

/// Workgroups a GEMM dispatch needs: every tile of every split of every batch.
pub(crate) fn workgroups(p: &GemmParams) -> u32 {
    p.total_tiles * p.splits.max(1) * p.batches.max(1)
}

/// Epilogue flag bits (mirrors the WGSL constants).
pub mod flags {
    /// Add `bias[n]`.
    pub const BIAS: u32 = 1;
    /// Apply ReLU.
    pub const RELU: u32 = 2;
    /// Accumulate into C (C += result).
    pub const ACCUMULATE: u32 = 4;
    /// Integer GEMM: write the bits of the exact i32 sum, no scales or epilogue.
    pub const RAW: u32 = 8;
    /// Record the output's max finite |value| (f32 bits) in `amax[0]` (atomic max).
    pub const AMAX: u32 = 16;
    /// The lanes kernels only, set by their launchers: the launch computes `Cᵀ = B·Aᵀ` (its A and
    /// B are the product's B and A) and stores it as C (see `lanes_swaps`).
    pub const SWAP: u32 = 32;
}

/// What happens to each output after the products are summed, in this order:
/// `C = relu?( (accumulate ? C_old : 0) + A·Bᵀ + bias[n] )`, then `amax[0] = max(amax[0], |C|)`.
#[derive(Default, Clone, Copy)]
pub struct Epilogue<'a> {
    /// Per-column bias (`n` elements).
    pub bias: Option<&'a GpuBuffer<f32>>,
    /// Apply ReLU.
    pub relu: bool,
    /// Add to C's current contents instead of overwriting.
    pub accumulate: bool,
    /// Record max |C| into element 0 (the caller zeroes it first), ready for the next quantizer.
    pub amax: Option<&'a GpuBuffer<u32>>,
}

impl Epilogue<'_> {
    /// The flag bits.
    pub fn flags(&self) -> u32 {
        let bit = |on: bool, f: u32| if on { f } else { 0 };
        bit(self.bias.is_some(), flags::BIAS)
            | bit(self.relu, flags::RELU)
            | bit(self.accumulate, flags::ACCUMULATE)
            | bit(self.amax.is_some(), flags::AMAX)
    }

    /// Checks the epilogue's buffers against `n` columns.
    pub fn check(&self, op: &'static str, n: usize) -> Result<()> {
        if let Some(b) = self.bias {
            if b.len() != n {
                return Err(Error::Shape { op, detail: format!("bias has {} elements, expected n = {n}", b.len()) });
            }
        }
        if let Some(a) = self.amax {
            if a.is_empty() {
                return Err(Error::Shape { op, detail: "amax needs at least one element".into() });
            }
        }
        Ok(())
    }
}

/// Small placeholder buffers bound where an epilogue input is absent.
pub(crate) struct Dummies {
    /// Stands in for `bias`.
    pub f32: GpuBuffer<f32>,
    /// Stands in for `amax`.
    pub u32: GpuBuffer<u32>,
    /// Adds split-K partial sums.
    pub sum: ColSum,
}

impl Dummies {
    /// Allocates them.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Dummies {
            f32: GpuBuffer::zeros(gpu, "gemm dummy f32", 4)?,
            u32: GpuBuffer::zeros(gpu, "gemm dummy u32", 4)?,
            sum: ColSum::new(gpu)?,
        })
    }
}

/// `(tiles_n, total_tiles)` for an `m × n` output in `tile × tile` tiles, checked against one
/// dispatch's reach.
pub(crate) fn tiles(m: u32, n: u32, tile: u32) -> Result<(u32, u32)> {
    tiles_rect(m, n, tile, tile)
}

/// [`tiles`] for tiles of `tile_m` rows and `tile_n` columns.
pub(crate) fn tiles_rect(m: u32, n: u32, tile_m: u32, tile_n: u32) -> Result<(u32, u32)> {
    let tn = n.div_ceil(tile_n);
    let total = m
        .div_ceil(tile_m)
        .checked_mul(tn)
        .ok_or_else(|| Error::InvalidArgument(format!("{m}x{n} output has too many tiles")))?;
    grid(total)?;
    Ok((tn, total))
}

/// Bind slots of the f32 GEMMs: params, a, b, bias, c, amax.
pub(crate) const F32_SLOTS: &[Slot] = &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Write];
/// Bind slots of the packed GEMMs: params, a codes, a scales, b codes, b scales, bias, c, amax.
pub(crate) const PACKED_SLOTS: &[Slot] =
    &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Write];

/// Records one dispatch of a GEMM on packed operands (gemm_int, gemm_fp8) into `c`, with its
/// buffers bound in [`PACKED_SLOTS`] order (absent epilogue inputs bound to `dummies`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn dispatch_packed(
    gpu: &Gpu,
    enc: &mut impl crate::Record,
    name: &'static str,
    bgl: &wgpu::BindGroupLayout,
    pipeline: &wgpu::ComputePipeline,
    dummies: &Dummies,
    p: &GemmParams,
    a: &crate::quant::QuantizedTensor,
    b: &crate::quant::QuantizedTensor,
    epi: &Epilogue,
    c: &wgpu::Buffer,
) -> Result<()> {
    dispatch_packed_with(gpu, enc, (name, bgl, pipeline), dummies, p, (a, b), epi, c, None, workgroups(p))
}

/// [`dispatch_packed`] with one more buffer bound after them (`extra`, at 8) and `workgroups`.
#[allow(clippy::too_many_arguments)]
fn dispatch_packed_with(
    gpu: &Gpu,
    enc: &mut impl crate::Record,
    (name, bgl, pipeline): (&'static str, &wgpu::BindGroupLayout, &wgpu::ComputePipeline),
    dummies: &Dummies,
    p: &GemmParams,
    (a, b): (&crate::quant::QuantizedTensor, &crate::quant::QuantizedTensor),
    epi: &Epilogue,
    c: &wgpu::Buffer,
    extra: Option<&wgpu::Buffer>,
    workgroups: u32,
) -> Result<()> {
    let params = super::uniform(gpu, name, p);
    let bias = epi.bias.unwrap_or(&dummies.f32);
    let amax = epi.amax.unwrap_or(&dummies.u32);
    let packed = [&params, a.codes.buffer(), a.scales.buffer(), b.codes.buffer(), b.scales.buffer(), bias.buffer()];
    let buffers: Vec<&wgpu::Buffer> = packed.into_iter().chain([c, amax.buffer()]).chain(extra).collect();
    super::dispatch(gpu, enc, name, pipeline, bgl, &buffers, workgroups)
}

/// The pipeline of a lanes kernel of packed operands (`gemm_int_lanes`, `gemm_fp8_lanes`) for
/// one pair of formats, and its launch.
pub(crate) struct PackedLanes {
    name: &'static str,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// For launches that compute `Cᵀ` (`lanes_swaps`): the pipeline for B's format × A's,
    /// built on first use (the same one where both formats are equal).
    swapped: std::sync::OnceLock<wgpu::ComputePipeline>,
    /// For A holding SMP's stacked samples: entry `main_samples` (gemm_int_lanes only), built on
    /// first use.
    samples: std::sync::OnceLock<wgpu::ComputePipeline>,
    layout: wgpu::PipelineLayout,
    formats: (crate::format::Format, crate::format::Format),
}

impl PackedLanes {
    /// Builds kernel `name`'s `main` for `fmt_a` × `fmt_b` (checked by the caller); an error on
    /// an adapter without 8-lane subgroups.
    pub(crate) fn new(
        gpu: &Gpu,
        name: &'static str,
        fmt_a: crate::format::Format,
        fmt_b: crate::format::Format,
    ) -> Result<Self> {
        super::gemm_f32_lanes::GemmF32Lanes::require(gpu, name)?;
        let (bgl, pl) = super::layouts(gpu, name, PACKED_SLOTS);
        let c = [("FMT_A", fmt_a.id() as f64), ("FMT_B", fmt_b.id() as f64)];
        Ok(PackedLanes {
            name,
            pipeline: super::pipeline(gpu, name, "main", &pl, &c)?,
            swapped: std::sync::OnceLock::new(),
            samples: std::sync::OnceLock::new(),
            layout: pl,
            formats: (fmt_a, fmt_b),
            bgl,
        })
    }

    /// The pipeline of launches that compute `Cᵀ`.
    fn swapped(&self, gpu: &Gpu) -> Result<&wgpu::ComputePipeline> {
        let (fa, fb) = self.formats;
        if fa == fb {
            return Ok(&self.pipeline);
        }
        built_once(&self.swapped, gpu, (self.name, "main", &self.layout), (fb, fa))
    }

    /// The pipeline of launches whose A holds several samples (entry `main_samples`).
    fn samples(&self, gpu: &Gpu) -> Result<&wgpu::ComputePipeline> {
        built_once(&self.samples, gpu, (self.name, "main_samples", &self.layout), self.formats)
    }

    /// [`dispatch_packed`] of `p` (built for any tile, checked) re-tiled to the lanes kernels'
    /// 16×32 outputs per workgroup; SMP's samples of A (`p.samples > 1`), and scale chunks longer
    /// than `gemm_int_lanes::MAX_BLOCK` that do not span K, through entry `main_samples` (unless
    /// split), never as `Cᵀ`. Split along K as [`split_plan`] cuts few tiles over a long K (exact
    /// splits at every chunk's end: [`exact_split_plan`]), as `split` says ([`LanesSplit`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        mut p: GemmParams,
        dummies: &Dummies,
        a: &crate::quant::QuantizedTensor,
        b: &crate::quant::QuantizedTensor,
        epi: &Epilogue,
        c: &wgpu::Buffer,
        split: LanesSplit,
    ) -> Result<()> {
        use super::gemm_f32_lanes::{TILE_M, TILE_N};
        let name = self.name;
        // Scale chunks longer than `main` folds from f32 sums (gemm_int_lanes: the exact i32 run
        // over a longer K, int8 × int8 past 131,040) take entry `main_samples`, which sums each
        // chunk in i32 before folding it: `main`'s order with one sample, so gemm_int's bits.
        let long_chunks = super::gemm_int_lanes::long_chunks(p.chunk, p.k) && p.flags & flags::RAW == 0;
        // Cᵀ where its tiles cover less padding (one product only: a batch's outputs are not
        // transposed as a whole).
        let swap = p.batches <= 1 && p.samples <= 1 && !long_chunks && lanes_swaps(p.m as usize, p.n as usize);
        if swap {
            p = p.swapped();
        }
        let (tiles_n, total_tiles) = tiles_rect(p.m, p.n, TILE_M, TILE_N)?;
        // Exact splits (one sample, one product, not raw) as `exact_split_plan` cuts them for
        // these tiles at `split_plan`'s count: over one scale chunk, or restarting at every long
        // chunk (entry `main`, whose splits' sums `main_combine` folds as `main_samples` does).
        let exact = match split {
            LanesSplit::Exact(combine) if ExactCombine::takes(&p) => {
                Some((combine, exact_split_plan(total_tiles, p.k as usize, p.chunk as usize, 0)))
                    .filter(|(_, plan)| plan.0 > 1)
            }
            _ => None,
        };
        let (pipeline, a, b) = match (swap, (p.samples > 1 || long_chunks) && exact.is_none()) {
            (true, _) => (self.swapped(gpu)?, b, a),
            (false, true) => (self.samples(gpu)?, a, b),
            (false, false) => (&self.pipeline, a, b),
        };
        total_tiles.checked_mul(p.batches.max(1)).map(super::grid).transpose()?.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{name}: {} batches of {}x{} outputs are too many tiles",
                p.batches, p.m, p.n
            ))
        })?;
        (p.tiles_n, p.total_tiles, p.splits) = (tiles_n, total_tiles, 1);
        let combine = match split {
            LanesSplit::Exact(_) => exact,
            LanesSplit::Partial(out) => {
                // Plain products only (the swap is no epilogue), one product of one sample.
                if p.flags & !flags::SWAP == 0 && p.batches <= 1 && p.samples <= 1 {
                    (p.splits, p.k_split) = split_plan(total_tiles, p.k as usize, 0);
                }
                if p.splits <= 1 {
                    return dispatch_packed(gpu, enc, name, &self.bgl, pipeline, dummies, &p, a, b, epi, c);
                }
                let mn = p.m as usize * p.n as usize;
                let parts = enc.scratch::<f32>(gpu, "split-K partial sums", p.splits as usize * mn)?;
                dispatch_packed(gpu, enc, name, &self.bgl, pipeline, dummies, &p, a, b, epi, parts.buffer())?;
                return dummies.sum.encode(gpu, enc, &parts, p.splits as usize, mn, out);
            }
        };
        let Some((combine, (splits, k_split, chunk_splits))) = combine else {
            return dispatch_packed(gpu, enc, name, &self.bgl, pipeline, dummies, &p, a, b, epi, c);
        };
        (p.splits, p.k_split, p.chunk_splits) = (splits, k_split, chunk_splits);
        // The splits' exact sums into scratch, then their total formed into C.
        let mn = p.m as usize * p.n as usize;
        let parts = enc.scratch::<u32>(gpu, "lanes split-K sums", p.splits as usize * mn)?;
        dispatch_packed(gpu, enc, name, &self.bgl, pipeline, dummies, &p, a, b, epi, parts.buffer())?;
        // A workgroup per tile.
        combine.record(gpu, enc, swap, dummies, &p, (a, b), epi, c, &parts, p.total_tiles)
    }
}

/// How [`PackedLanes::record`] splits a product of few tiles over a long K ([`split_plan`], planned
/// from the lanes' 16×32 tiles).
pub(crate) enum LanesSplit<'a> {
    /// Exact i32 sums (`gemm_int_lanes`): for one product of one sample, not raw, over one scale
    /// chunk or chunks of an exact i32 run ([`exact_split_plan`]), each split's sums into scratch,
    /// then [`ExactCombine`] forms every output from their total (each chunk's), as the unsplit
    /// launch does.
    Exact(&'a ExactCombine),
    /// f32 sums (`gemm_fp8_lanes`): for one product of one sample without epilogue, each split's
    /// partial sums into scratch, which `col_sum` adds in split order into this buffer (the
    /// launch's C), as gemm_f32's splits are added.
    Partial(&'a GpuBuffer<f32>),
}

/// Kernel `name`'s `entry` for A in `.0` and B in `.1` of `formats` (its `FMT_A`, `FMT_B`), in
/// `layout`: built on first use into `cell`, then taken from it.
fn built_once<'a>(
    cell: &'a std::sync::OnceLock<wgpu::ComputePipeline>,
    gpu: &Gpu,
    (name, entry, layout): (&str, &str, &wgpu::PipelineLayout),
    (fa, fb): (crate::format::Format, crate::format::Format),
) -> Result<&'a wgpu::ComputePipeline> {
    super::built(cell, || {
        super::pipeline(gpu, name, entry, layout, &[("FMT_A", fa.id() as f64), ("FMT_B", fb.id() as f64)])
    })
}

/// Entry `main_combine` of an integer GEMM split along K into exact sums (`gemm_int_lanes` on a
/// CPU adapter, `gemm_int`'s tiles and `gemm_int_coop` elsewhere): adds the splits' exact i32
/// sums and forms each output from the total as the unsplit launch does, into C (the packed
/// GEMMs' bindings and, at 8, the splits' sums). Its pipelines are built on first use.
pub(crate) struct ExactCombine {
    name: &'static str,
    bgl: wgpu::BindGroupLayout,
    layout: wgpu::PipelineLayout,
    /// For launches of C (`.0`) and of `Cᵀ` (`.1`, B's format × A's), built on first use.
    pipelines: (std::sync::OnceLock<wgpu::ComputePipeline>, std::sync::OnceLock<wgpu::ComputePipeline>),
    formats: (crate::format::Format, crate::format::Format),
}

impl ExactCombine {
    /// The layout for kernel `name`'s combine entry, A in `fmt_a` and B in `fmt_b`.
    pub(crate) fn new(
        gpu: &Gpu,
        name: &'static str,
        fmt_a: crate::format::Format,
        fmt_b: crate::format::Format,
    ) -> Self {
        let mut slots = PACKED_SLOTS.to_vec();
        slots.push(Slot::Read);
        let (bgl, layout) = super::layouts(gpu, name, &slots);
        ExactCombine { name, bgl, layout, pipelines: Default::default(), formats: (fmt_a, fmt_b) }
    }

    /// Whether launches of `p` may split into exact sums: one product of one sample, not raw
    /// sums. (Where its scale chunks allow splits is [`exact_split_plan`]'s business.)
    pub(crate) fn takes(p: &GemmParams) -> bool {
        p.batches <= 1 && p.samples <= 1 && p.flags & flags::RAW == 0
    }

    /// Records the combine of `parts` (`p.splits` sums of the launch's outputs) into `c`, on
    /// `workgroups` workgroups (the kernel's: a workgroup per tile of the lanes, a thread per
    /// output of the tiles'); `swap` for a launch of `Cᵀ`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        swap: bool,
        dummies: &Dummies,
        p: &GemmParams,
        (a, b): (&crate::quant::QuantizedTensor, &crate::quant::QuantizedTensor),
        epi: &Epilogue,
        c: &wgpu::Buffer,
        parts: &GpuBuffer<u32>,
        workgroups: u32,
    ) -> Result<()> {
        let (formats, cell) = match swap {
            false => (self.formats, &self.pipelines.0),
            true => ((self.formats.1, self.formats.0), &self.pipelines.1),
        };
        let pipeline = built_once(cell, gpu, (self.name, "main_combine", &self.layout), formats)?;
        let parts = Some(parts.buffer());
        dispatch_packed_with(gpu, enc, (self.name, &self.bgl, pipeline), dummies, p, (a, b), epi, c, parts, workgroups)
    }
}

/// A `[rows, k]` operand of random codes and unit scales in the format's native granularity (per
/// row, or its blocks), for timing (`tune`) and `GemmInt`'s check of the cooperative unit.
pub(crate) fn scratch_operand(
    gpu: &Gpu,
    rows: usize,
    k: usize,
    format: crate::format::Format,
) -> Result<crate::quant::QuantizedTensor> {
    let layout = crate::scheme::QuantLayout::new(rows, k, format, crate::scheme::Granularity::native(format))?;
    let codes: Vec<u32> = (0..layout.words() as u32).map(|i| crate::rng::draw(0x5eed, i)).collect();
    Ok(crate::quant::QuantizedTensor {
        codes: GpuBuffer::from_slice(gpu, "tune codes", &codes)?,
        scales: GpuBuffer::from_slice(gpu, "tune scales", &vec![1.0f32; layout.n_groups as usize])?,
        layout,
        samples: 1,
    })
}
