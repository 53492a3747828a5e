//! `gemm_levels_lanes`: [`super::gemm_levels`]'s products on a CPU adapter whose subgroups are one
//! 8-wide SIMD vector (lavapipe). gemm_levels runs gemm_f32's workgroup-memory tiles, which
//! llvmpipe loads lane by lane, and divides by a run-time code width for every element it
//! decodes; this kernel takes the code widths as pipeline constants (one pipeline per pair of
//! widths, built on first use), decodes every element as gemm_levels does (the same f32
//! operands) and runs gemm_f32_lanes' 16×32 subgroup tiles on them: the same products added in
//! the same order as gemm_levels' unsplit tiles, so, where no multiply-add is fused (llvmpipe),
//! the same bits; narrow products as `Cᵀ = B·Aᵀ`, as gemm_f32_lanes runs them (the same bits
//! again; with an f32 B only where that halves the tiles' outputs, since Cᵀ decodes A on the
//! side of the tile that loads twice as many values). Split along K as the tiled GEMMs split (a
//! product of few tiles over a long K: a convolution's weight gradient). Over a K of at most
//! [`PANEL_K`], a workgroup takes up to [`PANEL_MAX_TILES`] tiles of one [`Panel`] and each lane
//! decodes its side of the panel once for them all: with a coded B, the columns of a strip of row
//! tiles (a tile's columns took 16 of a lane's 24 decodes a K step: an MLP's weight gradients,
//! dYᵀ·Q(X)); with an f32 B, A's rows of a band of column tiles (a lane's 8 decodes a K step:
//! its forward and input-gradient products). [`super::gemm_levels::GemmLevels`]'s untiled entry
//! points run it wherever the adapter has it. Bindings: as gemm_levels'. Reference:
//! [`crate::reference::gemm_levels_lanes`].

use super::col_sum::ColSum;
use super::gemm::{encode_split, flags, lanes_padded, lanes_swaps, split_plan, tiles_rect, workgroups, GemmParams};
use super::gemm_f32::GemmShape;
use super::gemm_f32_lanes::{GemmF32Lanes, TILE_M, TILE_N};
use super::{dispatch, layouts, uniform, LazyPipelines, Slot};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// Bind slots: as gemm_levels'.
pub(crate) const SLOTS: &[Slot] =
    &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Read, Slot::Write, Slot::Write, Slot::Read];

/// What selects one of the kernel's pipelines.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
struct Key {
    /// B's code width, or `None` for an f32 B.
    b_bits: Option<u32>,
    a_bits: u32,
    swap: bool,
    /// Vec4 loads of an f32 B: entry `main` rather than `main_scalar` (`main_band_v4` rather than
    /// `main_band` in a band).
    vec4: bool,
    /// Entry `main_strip` or `main_band`, and its tiles a workgroup.
    panel: Option<Panel>,
}

/// The most elements of K over which entries `main_strip` and `main_band` keep a lane's decoded
/// values (the shader's `4 · PANEL_STEPS`: 16 KiB of private values a lane in `main_strip`).
pub const PANEL_K: usize = 1024;

/// The most tiles one `main_strip` or `main_band` workgroup takes (its decoded side once for all).
pub const PANEL_MAX_TILES: u32 = 16;

/// The fewest workgroups a panel leaves a launch (a CPU adapter's threads take whole workgroups).
pub const PANEL_MIN_WORKGROUPS: u32 = 16;

/// How a workgroup covers a launch where it keeps one side's decoded values for all of K.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Panel {
    /// Entry `main_strip` (a coded B): one 32-column strip, its columns decoded once, and this
    /// many row tiles.
    Strip(u32),
    /// Entry `main_band` or `main_band_v4` (an f32 B): one 16-row band, A's rows decoded once,
    /// and this many column tiles.
    Band(u32),
}

impl Panel {
    /// Its tiles a workgroup.
    pub fn tiles(self) -> u32 {
        match self {
            Panel::Strip(t) | Panel::Band(t) => t,
        }
    }

    /// Workgroups its entry takes over a launch of `tiles_m × tiles_n` tiles: one per strip (or
    /// band) and group of [`Panel::tiles`] along it.
    pub fn workgroups(self, tiles_m: u32, tiles_n: u32) -> u32 {
        match self {
            Panel::Strip(t) => tiles_m.div_ceil(t) * tiles_n,
            Panel::Band(t) => tiles_n.div_ceil(t) * tiles_m,
        }
    }
}

/// The panel a launch of `m × n` outputs over `k` with epilogue `flags` and a coded B or not
/// (`coded_b`) runs in, or `None` where it runs `main` or `main_scalar`. Taken where the launch is
/// not swapped (`swap`: a swapped one has a row tile, C's ≤ 16 columns), K fits [`PANEL_K`] and
/// [`split_plan`] does not split: the decoded side is a coded B's columns, else A's rows; the
/// workgroup takes the most tiles along the other side, a power of two up to [`PANEL_MAX_TILES`]
/// and the tiles there are, that leave at least [`PANEL_MIN_WORKGROUPS`] workgroups, if that is
/// two or more (with one, it would decode its side exactly as often as `main_scalar` does).
pub fn panel(m: u32, n: u32, k: usize, flags: u32, coded_b: bool, swap: bool) -> Option<Panel> {
    let (tiles_m, tiles_n) = (m.div_ceil(TILE_M), n.div_ceil(TILE_N));
    if swap || k > PANEL_K || split_plan(tiles_m * tiles_n, k, flags).0 > 1 {
        return None;
    }
    let of = |tiles| if coded_b { Panel::Strip(tiles) } else { Panel::Band(tiles) };
    let along = if coded_b { tiles_m } else { tiles_n };
    let mut tiles = 1;
    while tiles < PANEL_MAX_TILES
        && 2 * tiles <= along
        && of(2 * tiles).workgroups(tiles_m, tiles_n) >= PANEL_MIN_WORKGROUPS
    {
        tiles *= 2;
    }
    (tiles >= 2).then(|| of(tiles))
}

/// The lanes TinyScript GEMM.
pub struct GemmLevelsLanes {
    bgl: wgpu::BindGroupLayout,
    pipelines: LazyPipelines<Key>,
}

impl GemmLevelsLanes {
    /// Whether `gpu` can run this kernel ([`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// The kernel; its pipelines are built as launches need them. An error on an adapter without
    /// 8-lane subgroups.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        GemmF32Lanes::require(gpu, "gemm_levels_lanes")?;
        let (bgl, layout) = layouts(gpu, "gemm_levels_lanes", SLOTS);
        Ok(GemmLevelsLanes { bgl, pipelines: LazyPipelines::new("gemm_levels_lanes", layout) })
    }

    fn pipeline(&self, gpu: &Gpu, key: Key) -> Result<wgpu::ComputePipeline> {
        let constants = [
            ("B_CODES", key.b_bits.is_some() as u32 as f64),
            ("A_BITS", key.a_bits as f64),
            ("B_BITS", key.b_bits.unwrap_or(key.a_bits) as f64),
            ("SWAP", key.swap as u32 as f64),
            ("TILES", key.panel.map_or(1, Panel::tiles) as f64),
        ];
        let entry = match key.panel {
            Some(Panel::Strip(_)) => "main_strip",
            Some(Panel::Band(_)) if key.vec4 => "main_band_v4",
            Some(Panel::Band(_)) => "main_band",
            None if key.vec4 => "main",
            None => "main_scalar",
        };
        self.pipelines.get(gpu, key, entry, &constants)
    }

    /// Records `c ← ` the product of `p` (gemm_levels' params, already checked: C's m, n, k,
    /// epilogue flags, trans_b, words and `aux`) with `buffers` bound as gemm_levels binds them
    /// (all but c), split along K as [`encode_split`] plans it (`sum` adding the splits). `a_bits`
    /// and `b_bits` (`None`: B in f32) are the operands' code widths.
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        mut p: GemmParams,
        a_bits: u32,
        b_bits: Option<u32>,
        sum: &ColSum,
        buffers: [&wgpu::Buffer; 7],
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        // A tile's rows cost a lane two decoded vec4s of a K step, its columns four: with an f32
        // B, Cᵀ would decode A on the dearer side, so it is taken only where it halves the tiles'
        // outputs (N ≤ 16: a classifier's 10 classes), not for a few columns of padding. So too
        // with a coded B stored [K, N] (a weight gradient's): its columns take a stored row's
        // four codes and one scale a load, its rows (in Cᵀ) a word and a scale per element.
        let (m, n) = (p.m as usize, p.n as usize);
        let swap = match b_bits {
            Some(_) if p.trans_b == 0 => lanes_swaps(m, n),
            _ => 2 * lanes_padded(n, m) <= lanes_padded(m, n),
        };
        // Entry `main`'s vec4s each stay within a row of an f32 B: gemm_f32_lanes' vec4 shapes.
        let shape = GemmShape { m, n, k: p.k as usize, trans_a: false, trans_b: p.trans_b == 1 };
        let vec4 = b_bits.is_none() && !swap && GemmF32Lanes::vectorized(shape);
        if swap {
            (p.m, p.n) = (p.n, p.m);
        }
        let (tiles_n, total_tiles) = tiles_rect(p.m, p.n, TILE_M, TILE_N)?;
        (p.tiles_n, p.total_tiles, p.batches) = (tiles_n, total_tiles, 1);
        let panel = panel(p.m, p.n, p.k as usize, p.flags, b_bits.is_some(), swap);
        let pipe = self.pipeline(gpu, Key { b_bits, a_bits, swap, vec4, panel })?;
        let [a_codes, a_scales, levels, b, bias, amax, b_scales] = buffers;
        // Split as C's product would be (the swap is no epilogue).
        encode_split(gpu, enc, sum, p, c, |enc, target, mut p| {
            p.flags |= if swap { flags::SWAP } else { 0 };
            let params = uniform(gpu, "gemm_levels_lanes", &p);
            let bound = [&params, a_codes, a_scales, levels, b, bias, target, amax, b_scales];
            let count = panel.map_or(workgroups(&p), |pl| pl.workgroups(total_tiles / tiles_n, tiles_n));
            dispatch(gpu, enc, "gemm_levels_lanes", &pipe, &self.bgl, &bound, count)
        })
    }
}
