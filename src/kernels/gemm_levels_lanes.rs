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
//! product of few tiles over a long K: a convolution's weight gradient). With a coded B over a K
//! of at most [`STRIP_K`], a workgroup takes up to [`STRIP_MAX_ROW_TILES`] row tiles of one column
//! strip ([`strip_row_tiles`]) and each lane decodes its columns once for them all, where a tile's
//! columns took 16 of a lane's 24 decodes a K step (both operands coded): an MLP's weight
//! gradients, dYᵀ·Q(X). [`super::gemm_levels::GemmLevels`]'s untiled entry points run it
//! wherever the adapter has it. Bindings: as gemm_levels'. Reference:
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
    /// Entry `main` (vec4 loads of an f32 B) rather than `main_scalar`.
    vec4: bool,
    /// Entry `main_strip`'s row tiles a workgroup (0: not that entry).
    rows: u32,
}

/// The most elements of K entry `main_strip` keeps a lane's decoded columns for (the shader's
/// `4 · STRIP_STEPS`: 16 KiB of private values a lane).
pub const STRIP_K: usize = 1024;

/// The most row tiles one `main_strip` workgroup takes (its strip decoded once for them all).
pub const STRIP_MAX_ROW_TILES: u32 = 16;

/// The fewest workgroups `main_strip` leaves a launch, so a CPU adapter's threads all have tiles.
pub const STRIP_MIN_WORKGROUPS: u32 = 16;

/// Row tiles (16 rows each) a workgroup takes in `main_strip`, for a launch of `m × n` outputs
/// (after the swap, if any) over `k` with epilogue `flags`; 0 where it runs another entry. Taken
/// where B is coded (`coded_b`), K fits [`STRIP_K`] and [`split_plan`] does not split: the most
/// tiles, a power of two up to [`STRIP_MAX_ROW_TILES`] and the launch's row tiles, that leave at
/// least [`STRIP_MIN_WORKGROUPS`] workgroups, if that is two or more; otherwise 0, as a workgroup
/// of one row tile would decode its columns exactly as often as `main_scalar` does.
pub fn strip_row_tiles(m: u32, n: u32, k: usize, flags: u32, coded_b: bool) -> u32 {
    let (tiles_m, tiles_n) = (m.div_ceil(TILE_M), n.div_ceil(TILE_N));
    if !coded_b || k > STRIP_K || split_plan(tiles_m * tiles_n, k, flags).0 > 1 {
        return 0;
    }
    let mut rows = 1;
    while rows < STRIP_MAX_ROW_TILES
        && 2 * rows <= tiles_m
        && tiles_m.div_ceil(2 * rows) * tiles_n >= STRIP_MIN_WORKGROUPS
    {
        rows *= 2;
    }
    if rows < 2 {
        0
    } else {
        rows
    }
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
            ("ROW_TILES", key.rows.max(1) as f64),
        ];
        let entry = if key.rows > 0 {
            "main_strip"
        } else if key.vec4 {
            "main"
        } else {
            "main_scalar"
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
        let rows = strip_row_tiles(p.m, p.n, p.k as usize, p.flags, b_bits.is_some());
        let pipe = self.pipeline(gpu, Key { b_bits, a_bits, swap, vec4, rows })?;
        let [a_codes, a_scales, levels, b, bias, amax, b_scales] = buffers;
        // Split as C's product would be (the swap is no epilogue).
        encode_split(gpu, enc, sum, p, c, |enc, target, mut p| {
            p.flags |= if swap { flags::SWAP } else { 0 };
            let params = uniform(gpu, "gemm_levels_lanes", &p);
            let bound = [&params, a_codes, a_scales, levels, b, bias, target, amax, b_scales];
            let count = if rows > 0 { (total_tiles / tiles_n).div_ceil(rows) * tiles_n } else { workgroups(&p) };
            dispatch(gpu, enc, "gemm_levels_lanes", &pipe, &self.bgl, &bound, count)
        })
    }
}
