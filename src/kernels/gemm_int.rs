//! `gemm_int`: integer GEMM on packed int8 / int4 / int3 / int2 / LUQ log4 operands with `dot4I8Packed` and a
//! fused dequantization epilogue.
//!
//! Math: `C[m][n] = epilogue( (1/S) Σ_s Σ_chunks f32(Σ_{k∈chunk} a_s(m,k)·b(n,k)) · sa_s(m,chunk) · sb(n,chunk) )`
//! where `a`, `b` are the integer code values (log4 levels as `±2^(c-1)`), chunks are scale blocks
//! along K (the whole K for per-row or per-tensor scales), and `S` stacked stochastic samples of
//! A are averaged (SMP). The integer sums are exact; with `raw` the kernel writes the exact i32
//! total instead of the scaled result. Operands are packed along K: use the transposing
//! quantizer for the backward products. Layout: 128×128, 64×64 or 32×32 output tiles
//! ([`Tile`], tuned per shape class; 128 needs scale blocks of at least 32, see [`int_tiles`]),
//! 16×16 threads × 8×8 (vec4 registers, double-buffered K steps, a variant without f32
//! accumulators when one scale chunk spans K), 4×4 or 2×2 outputs, K in steps of 32 through
//! workgroup memory, every operand widened to int8 lanes on load. On a CPU adapter with 8-lane
//! subgroups (lavapipe), the untiled entry points ([`GemmInt::encode`], `encode_batched`,
//! `encode_raw`) run one sample through `gemm_int_lanes` instead (gemm_f32_lanes' subgroup tiles
//! on the widened codes, exact in f32 chunks; the bits of the `main` tiles);
//! elsewhere, on an adapter with f16 cooperative matrices, they run `gemm_int_coop` where it
//! takes the operands (the bits of the 64×64 tiles; [`GemmInt::encode_coop`] and
//! [`GemmInt::encode_coop_raw`] ask for it by name); the `_with` entry points always run the tile
//! they are given. Bindings: 0 `GemmParams`, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 bias,
//! 6 c, 7 amax. Reference: [`crate::reference::gemm_int`].

use super::gemm::{
    dispatch_packed, encode_split, exact_split_plan, flags, pick_fastest, scratch_operand, shape_class, split_plan,
    tiles, Dummies, Epilogue, ExactCombine, GemmParams, Tile, TileCache, TilePipelines, PACKED_SLOTS,
};
use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_int_coop::{build_coop, coop_or_error, CoopPipeline, GemmIntCoop};
use super::gemm_int_lanes::GemmIntLanes;
use super::{check_len, layouts, pipeline};
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::scheme::QuantLayout;
use crate::tensor::GpuBuffer;
use crate::timing::gpu_seconds;
use crate::{Error, Gpu, Result};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Formats the integer GEMM takes (the E2M1 ones as twice their values, see the shader).
pub const INT_FORMATS: [Format; 8] = [
    Format::Int8,
    Format::Int4,
    Format::Int3,
    Format::Int2,
    Format::Log4,
    Format::Fp4E2M1,
    Format::Mxfp4,
    Format::Nvfp4,
];

/// `Ok` if both operand formats are among [`INT_FORMATS`], else the error naming kernel `op` (the
/// lanes integer GEMM and `gemm_int_col2im`).
pub(crate) fn check_int_formats(op: &str, formats: [Format; 2]) -> Result<()> {
    match formats.into_iter().find(|f| !INT_FORMATS.contains(f)) {
        Some(f) => {
            Err(Error::InvalidArgument(format!("{op} takes int8, int4, int3, int2, log4 or E2M1 operands, not {f}")))
        }
        None => Ok(()),
    }
}

/// Whether the 128×128 tile can run these operands: it folds scale chunks between K steps of
/// 32 elements, so block scales must cover whole steps.
fn wide_fits(la: &QuantLayout, lb: &QuantLayout) -> bool {
    let chunk = la.shared_chunk(lb);
    chunk.is_multiple_of(32) || chunk == la.cols.div_ceil(4) * 4
}

/// The tile candidates for this pair of operands.
pub fn int_tiles(a: &QuantizedTensor, b: &QuantizedTensor) -> &'static [Tile] {
    if wide_fits(&a.layout, &b.layout) {
        &Tile::ALL
    } else {
        &Tile::BASIC
    }
}

/// Checks two packed operands against each other and builds the params of `batches` products:
/// A's rows are `batches` stacked `[M, K]` operands, B's `batches` stacked `[N, K]` ones.
pub(crate) fn packed_params(
    op: &'static str,
    a: &QuantizedTensor,
    b: &QuantizedTensor,
    flags: u32,
    tile: Tile,
    batches: usize,
) -> Result<GemmParams> {
    let (la, lb) = (a.layout, b.layout);
    let nb = u32::try_from(batches)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| Error::InvalidArgument(format!("{op}: {batches} batches (at least one, fewer than 2^32)")))?;
    if !la.rows.is_multiple_of(nb) || !lb.rows.is_multiple_of(nb) {
        return Err(Error::Shape {
            op,
            detail: format!("A's {} and B's {} rows are not {batches} stacked operands each", la.rows, lb.rows),
        });
    }
    if nb > 1 && (a.samples != 1 || flags & flags::RAW != 0) {
        return Err(Error::InvalidArgument(format!("{op}: batched products take one sample and no raw output")));
    }
    if la.cols != lb.cols {
        return Err(Error::Shape {
            op,
            detail: format!(
                "A is [{}, {}] and B is [{}, {}]: both must be packed along the same K",
                la.rows, la.cols, lb.rows, lb.cols
            ),
        });
    }
    if b.samples != 1 {
        return Err(Error::InvalidArgument(format!("{op}: only A may hold several SMP samples")));
    }
    check_len(op, "A codes", a.codes.len(), la.words() * a.samples as usize)?;
    check_len(op, "A scales", a.scales.len(), la.n_groups as usize * a.samples as usize)?;
    check_len(op, "B codes", b.codes.len(), lb.words())?;
    check_len(op, "B scales", b.scales.len(), lb.n_groups as usize)?;
    let (m, n) = (la.rows / nb, lb.rows / nb);
    let (tiles_n, total_tiles) = tiles(m, n, tile.edge())?;
    total_tiles.checked_mul(nb).map(super::grid).transpose()?.ok_or_else(|| {
        Error::InvalidArgument(format!("{op}: {batches} batches of {m}x{n} outputs are too many tiles"))
    })?;
    let chunk = la.shared_chunk(&lb);
    if tile == Tile::T128 && !wide_fits(&la, &lb) {
        return Err(Error::InvalidArgument(format!(
            "{op}: the 128×128 tile needs scale blocks of at least 32 elements, not {chunk}"
        )));
    }
    Ok(GemmParams {
        m,
        n,
        k: la.cols,
        flags,
        trans_a: 0,
        trans_b: 0,
        tiles_n,
        total_tiles,
        a_words: la.words_per_row,
        b_words: lb.words_per_row,
        a_row_mul: la.row_mul,
        a_block_div: la.block_div,
        b_row_mul: lb.row_mul,
        b_block_div: lb.block_div,
        chunk,
        samples: a.samples,
        batches: nb,
        // For main_combine: the 128 tile (main_wide) folds scale chunks with fused multiply-adds.
        aux: [u32::from(tile == Tile::T128), 0],
        ..Default::default()
    })
}

/// [`packed_params`] for `flags` with `epi` (its bias length) and `c` (`c_len` values: every
/// batch's outputs) checked too.
#[allow(clippy::too_many_arguments)]
pub(crate) fn checked_packed_params(
    op: &'static str,
    a: &QuantizedTensor,
    b: &QuantizedTensor,
    flags: u32,
    epi: &Epilogue,
    tile: Tile,
    batches: usize,
    c_len: usize,
) -> Result<GemmParams> {
    let p = packed_params(op, a, b, flags, tile, batches)?;
    check_len(op, "c", c_len, p.m as usize * p.n as usize * batches)?;
    epi.check(op, p.n as usize)?;
    Ok(p)
}

/// The integer GEMM for one pair of operand formats.
pub struct GemmInt {
    fmt_a: Format,
    fmt_b: Format,
    bgl: wgpu::BindGroupLayout,
    pipelines: TilePipelines,
    /// The 128×128 tile specialized for one scale chunk over K and one sample.
    whole_k: wgpu::ComputePipeline,
    /// Entry `main_combine`: the output of a product split along K with exact sums
    /// ([`GemmInt::exact_splits`]).
    combine: ExactCombine,
    /// `gemm_int_lanes`, on a CPU adapter with 8-lane subgroups.
    lanes: Option<GemmIntLanes>,
    /// `gemm_int_coop`, on an adapter with f16 cooperative matrices whose products agreed with
    /// the 64×64 tiles' bits when this kernel was built ([`GemmInt::coop_refusal`] otherwise).
    coop: Option<GemmIntCoop>,
    /// Why `coop` is not used though the adapter has the unit: `LOWBIT_COOP=0`, its build's
    /// error or its self-check's disagreement.
    coop_refusal: Option<String>,
    dummies: Dummies,
    cache: TileCache,
    /// Shape classes the untiled entry points chose a path for without a tuning result, each with
    /// the first shape of it they met ([`GemmInt::tune_untuned`]).
    untuned: Mutex<HashMap<(u32, u32, u32), Untuned>>,
    /// Per shape class that [`GemmInt::tune_untuned`] timed on the cooperative-matrix unit too:
    /// whether the unit ran it at least as fast as the fastest tile.
    coop_tuned: Mutex<HashMap<(u32, u32, u32), bool>>,
    /// What [`GemmInt::tune_untuned`] timed, in order ([`GemmInt::tunings`]).
    tunings: Mutex<Vec<Tuning>>,
}

/// One shape class [`GemmInt::tune_untuned`] timed: the product it timed, each path's seconds
/// (the best of two runs of as many products as make about 0.2 GFLOP), and the path it kept.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// A's format.
    pub fmt_a: Format,
    /// B's format.
    pub fmt_b: Format,
    /// The product timed: the first of its class the untiled entry points met.
    pub m: usize,
    /// N of that product.
    pub n: usize,
    /// K of that product.
    pub k: usize,
    /// Each tile timed (those that give the product the bits of its untuned path), with its
    /// seconds.
    pub tiles: Vec<(Tile, f64)>,
    /// The cooperative-matrix unit's seconds, where it takes the product.
    pub unit: Option<f64>,
}

impl Tuning {
    /// The fastest tile.
    pub fn tile(&self) -> Tile {
        self.tiles.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or(Tile::T64, |t| t.0)
    }

    /// Whether the unit runs the class: it takes the product and is at least as fast as the
    /// fastest tile.
    pub fn on_unit(&self) -> bool {
        self.unit.is_some_and(|u| self.tiles.iter().all(|t| u <= t.1))
    }
}

impl std::fmt::Display for Tuning {
    /// `int8×int4 40×24×300: T128 0.110 ms, T64 0.090 ms, T32 0.120 ms, unit 0.300 ms → T64`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{} {}×{}×{}:", self.fmt_a, self.fmt_b, self.m, self.n, self.k)?;
        let ms = |s: f64| format!("{:.3} ms", 1e3 * s);
        let paths = self
            .tiles
            .iter()
            .map(|(t, s)| format!("{t:?} {}", ms(*s)))
            .chain(self.unit.map(|u| format!("unit {}", ms(u))));
        write!(f, " {}", paths.collect::<Vec<_>>().join(", "))?;
        match self.on_unit() {
            true => write!(f, " → unit"),
            false => write!(f, " → {:?}", self.tile()),
        }
    }
}

/// A product the untiled entry points met in a shape class without a tuning result: its shape,
/// the tiles it could take with the bits of its untuned path, and whether it could take the
/// cooperative-matrix unit (its untuned path, where the unit takes its operands).
#[derive(Clone, Debug)]
struct Untuned {
    m: usize,
    n: usize,
    k: usize,
    cands: Vec<Tile>,
    coop: bool,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Repetitions a tuning run times a candidate over: about 0.2 GFLOP, 1 to 10.
fn tune_iters(m: usize, n: usize, k: usize) -> u32 {
    ((2e8 / (2.0 * (m * n * k) as f64)) as u32).clamp(1, 10)
}

impl GemmInt {
    /// Builds the pipeline for A in `fmt_a` and B in `fmt_b` (each int8, int4 or log4).
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        for f in [fmt_a, fmt_b] {
            if !INT_FORMATS.contains(&f) {
                return Err(Error::InvalidArgument(format!(
                    "gemm_int takes int8, int4, int3, int2, log4 or E2M1 operands, not {f} (use gemm_fp8)"
                )));
            }
        }
        let (bgl, pl) = layouts(gpu, "gemm_int", PACKED_SLOTS);
        let c = [("FMT_A", fmt_a.id() as f64), ("FMT_B", fmt_b.id() as f64)];
        GemmInt {
            fmt_a,
            fmt_b,
            pipelines: TilePipelines::new(&Tile::ALL, |t| {
                pipeline(gpu, "gemm_int", t.entry(), &pl, &[c[0], c[1], ("TPT", t.tpt().min(4) as f64)])
            })?,
            whole_k: pipeline(gpu, "gemm_int", "main_wide", &pl, &[c[0], c[1], ("WHOLE_K", 1.0)])?,
            combine: ExactCombine::new(gpu, "gemm_int", fmt_a, fmt_b),
            lanes: match GemmF32Lanes::chosen(gpu) {
                true => Some(GemmIntLanes::new(gpu, fmt_a, fmt_b)?),
                false => None,
            },
            coop: None,
            coop_refusal: None,
            bgl,
            dummies: Dummies::new(gpu)?,
            cache: TileCache::new(gpu),
            untuned: Mutex::new(HashMap::new()),
            coop_tuned: Mutex::new(HashMap::new()),
            tunings: Mutex::new(Vec::new()),
        }
        .with_coop_checked(gpu)
    }

    /// Where the adapter has f16 cooperative matrices, builds `gemm_int_coop`, runs it beside the
    /// 64×64 tiles on one product of codes drawn at random (two tiles' rows, a partial tile of
    /// columns, K past the unit's exact f32 sums) and keeps it only if the two agree bit for bit,
    /// as they must (see the shader): the dispatcher picks the unit on adapters no test may have
    /// run it on, and a driver that cannot build it, or a unit that adds otherwise than its
    /// specification says, leaves the SIMD tiles to run its products instead of failing or
    /// training wrongly ([`GemmInt::coop_refusal`] says why).
    fn with_coop_checked(mut self, gpu: &Gpu) -> Result<Self> {
        (self.coop, self.coop_refusal) =
            build_coop(gpu, "gemm_int_coop", || GemmIntCoop::new(gpu, self.fmt_a, self.fmt_b))?;
        if self.coop.is_none() {
            return Ok(self);
        }
        let (m, n, k) = (70, 40, 1100);
        let (a, b) = (scratch_operand(gpu, m, k, self.fmt_a)?, scratch_operand(gpu, n, k, self.fmt_b)?);
        let bias = GpuBuffer::<f32>::zeros(gpu, "coop check bias", n)?;
        let epi = Epilogue { bias: Some(&bias), ..Default::default() };
        let unit = GpuBuffer::<f32>::zeros(gpu, "coop check", m * n)?;
        let tiles = GpuBuffer::<f32>::zeros(gpu, "coop check tiles", m * n)?;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.encode_coop(gpu, &mut enc, &a, &b, &epi, &unit)?;
        self.encode_with(gpu, &mut enc, Tile::T64, &a, &b, &epi, &tiles)?;
        gpu.queue.submit([enc.finish()]);
        let (u, t) = (unit.read(gpu)?, tiles.read(gpu)?);
        if let Some(i) = (0..u.len()).find(|&i| u[i].to_bits() != t[i].to_bits()) {
            self.coop = None;
            self.coop_refusal = Some(format!(
                "gemm_int_coop ({} × {}) disagreed with gemm_int's 64×64 tiles on {} ({} of {m}×{n}×{k} outputs, \
                 first [{i}]: {} against {}), so the SIMD kernels run its products",
                self.fmt_a,
                self.fmt_b,
                gpu.report().name,
                (0..u.len()).filter(|&i| u[i].to_bits() != t[i].to_bits()).count(),
                u[i],
                t[i]
            ));
        }
        Ok(self)
    }

    /// The cooperative matrices' size (8 or 16) where this kernel runs products on the unit.
    pub fn coop_size(&self) -> Option<u32> {
        self.coop.as_ref().map(GemmIntCoop::matrix_size)
    }

    /// Why this kernel does not use the adapter's cooperative-matrix unit though it has one
    /// (`LOWBIT_COOP=0` turned it off, the driver could not build it, or its products disagreed
    /// with the tiles' when it was built); `None` where it uses it or the adapter has none.
    pub fn coop_refusal(&self) -> Option<&str> {
        self.coop_refusal.as_deref()
    }

    fn check_formats(&self, a: &QuantizedTensor, b: &QuantizedTensor) -> Result<()> {
        if a.layout.format != self.fmt_a || b.layout.format != self.fmt_b {
            return Err(Error::InvalidArgument(format!(
                "gemm_int built for {} × {}, got {} × {}",
                self.fmt_a, self.fmt_b, a.layout.format, b.layout.format
            )));
        }
        Ok(())
    }

    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        p: GemmParams,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &wgpu::Buffer,
    ) -> Result<()> {
        let pipe = if tile == Tile::T128 && p.samples == 1 && p.chunk >= p.k {
            &self.whole_k
        } else {
            self.pipelines.get("gemm_int", tile)?
        };
        dispatch_packed(gpu, enc, "gemm_int", &self.bgl, pipe, &self.dummies, &p, a, b, epi, c)
    }

    /// Records `c ← epilogue(A·Bᵀ)` with A `[M, K]`, B `[N, K]`, C `[M, N]`, with the tuned (or
    /// heuristic) tile for this shape.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_batched(gpu, enc, a, b, 1, epi, c)
    }

    /// Records with an explicit tile.
    pub fn encode_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_batched_with(gpu, enc, tile, a, b, 1, epi, c)
    }

    /// Records `batches` products at once: A holds `batches` stacked `[M, K]` operands (rows
    /// `i·M ..`), B `batches` stacked `[N, K]`, and product `i` goes to `c[i·M·N ..]` (attention's
    /// products per batch and head), with the tuned (or heuristic) tile for one product's shape.
    pub fn encode_batched(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let (m, n) = (a.layout.rows as usize / batches.max(1), b.layout.rows as usize / batches.max(1));
        if self.records_lanes(gpu, enc, a, b, batches, epi.flags(), epi, c.buffer(), c.len())? {
            return Ok(());
        }
        match self.path(gpu, a, b, batches, epi.flags(), (m, n, a.layout.cols as usize))? {
            None => self.encode_coop_batched(gpu, enc, a, b, batches, epi, c),
            Some(tile) => self.encode_batched_with(gpu, enc, tile, a, b, batches, epi, c),
        }
    }

    /// The untiled entry points' path for a product (`batches` of `m × n × k`, epilogue `flags`):
    /// untuned, the cooperative-matrix unit (`None`) where it takes the operands
    /// ([`GemmInt::runs_coop`]), else the heuristic's tile; tuned, the path tuning kept for the
    /// shape's class, where its bits are the untuned path's, else the untuned path. A class met
    /// without a tuning result is noted for [`GemmInt::tune_untuned`], with the tiles whose bits
    /// are the untuned path's ([`GemmInt::split_bits`]).
    fn path(
        &self,
        gpu: &Gpu,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        flags: u32,
        (m, n, k): (usize, usize, usize),
    ) -> Result<Option<Tile>> {
        self.check_formats(a, b)?;
        let class = shape_class(m, n, k);
        let coop = self.runs_coop(a, b);
        // The unit splits K as the 64×64 tiles do, and gives their bits.
        let untuned = if coop { Tile::T64 } else { self.cache.untuned(m, n, int_tiles(a, b)) };
        // The tiles that give the product its untuned bits: worked out only where a class is
        // first noted or a tuned tile is to be checked.
        let same = || -> Result<Vec<Tile>> {
            let bits = |t: Tile| -> Result<u32> {
                Ok(self.split_bits(gpu, &packed_params("gemm_int", a, b, flags, t, batches)?))
            };
            let want = bits(untuned)?;
            let mut same = Vec::new();
            for &t in int_tiles(a, b) {
                if bits(t)? == want {
                    same.push(t);
                }
            }
            Ok(same)
        };
        let unit = if coop { locked(&self.coop_tuned).get(&class).copied() } else { None };
        let tile = self.cache.get(m, n, k);
        if (coop && unit.is_none()) || (!coop && tile.is_none()) {
            if let Entry::Vacant(e) = locked(&self.untuned).entry(class) {
                e.insert(Untuned { m, n, k, cands: same()?, coop });
            }
        }
        if coop && unit != Some(false) {
            return Ok(None);
        }
        match tile {
            Some(t) if same()?.contains(&t) => Ok(Some(t)),
            _ => Ok(Some(untuned)),
        }
    }

    /// Which bits a tile gives a product: 1 for the unsplit product's (whole, or split along K
    /// into sums that add exactly, [`GemmInt::exact_splits`]), else the count of splits whose f32
    /// partial values `col_sum` adds (SMP's samples, scale blocks along K), which follows the tile
    /// count ([`super::gemm::split_plan`]). Tiles with the same count give the same bits.
    fn split_bits(&self, gpu: &Gpu, p: &GemmParams) -> u32 {
        if Self::exact_split_plan(gpu, p).0 > 1 || p.batches > 1 {
            return 1;
        }
        split_plan(p.total_tiles, p.k as usize, p.flags).0
    }

    /// What [`GemmInt::tune_untuned`] timed, class by class, in order.
    pub fn tunings(&self) -> Vec<Tuning> {
        locked(&self.tunings).clone()
    }

    /// Shape classes the untiled entry points have met without a tuning result since the last
    /// [`GemmInt::tune_untuned`].
    pub fn untuned_classes(&self) -> usize {
        locked(&self.untuned).len()
    }

    /// Whether the untiled entry points run a product of this shape's class on the
    /// cooperative-matrix unit by [`GemmInt::tune_untuned`]'s timing (`Some(false)`: a tile was
    /// faster); `None` where it has not timed the unit for the class.
    pub fn coop_tuned(&self, m: usize, n: usize, k: usize) -> Option<bool> {
        locked(&self.coop_tuned).get(&shape_class(m, n, k)).copied()
    }

    /// Tunes every shape class the untiled entry points ([`GemmInt::encode`], `encode_batched`,
    /// `encode_raw`) have met without a tuning result: on one product of the first shape met in
    /// the class (scratch operands; submits and waits), times the tiles that product could take
    /// with the bits of its untuned path and, where the cooperative-matrix unit takes its
    /// operands, the unit, and keeps the fastest (the unit where it is at least as fast as the
    /// fastest tile). The integer sums are exact on every tile, split or not, and the unit gives
    /// the 64×64 tiles' bits; only where SMP's samples or scale blocks along K split a long K into
    /// f32 partial values do the bits follow the split count, and so the tile count (the untiled
    /// entry points then take a tuned tile only where it splits the product as its untuned path
    /// does). So tuning changes how long a product takes, never its result. Returns how many
    /// classes it tuned. A step plan records its paths when it is built: the trainer builds a
    /// plan, tunes what it met and builds it again where [`Gpu::tunes`] says so.
    pub fn tune_untuned(&self, gpu: &Gpu) -> Result<usize> {
        let pending: Vec<((u32, u32, u32), Untuned)> = locked(&self.untuned).drain().collect();
        for (class, u) in &pending {
            let (a, b, c) = self.scratch_product(gpu, u.m, u.n, u.k)?;
            let (iters, epi) = (tune_iters(u.m, u.n, u.k), Epilogue::default());
            let (tile, times) = self.time_tiles(gpu, (&a, &b, &c), &u.cands)?;
            self.cache.insert(u.m, u.n, u.k, tile);
            let mut tuning =
                Tuning { fmt_a: self.fmt_a, fmt_b: self.fmt_b, m: u.m, n: u.n, k: u.k, tiles: times, unit: None };
            if u.coop {
                // (The scratch operands' native scale groups fit the unit wherever the product's
                // did; were they not to, the unit keeps the class, as it does untuned.)
                let on_unit = match self.runs_coop(&a, &b) {
                    true => {
                        let t = gpu_seconds(gpu, iters, 2, |e| self.encode_coop(gpu, e, &a, &b, &epi, &c))?;
                        tuning.unit = Some(t);
                        tuning.on_unit()
                    }
                    false => true,
                };
                locked(&self.coop_tuned).insert(*class, on_unit);
            }
            locked(&self.tunings).push(tuning);
        }
        Ok(pending.len())
    }

    /// Whether this adapter runs `gemm_int_lanes` for these operands ([`GemmIntLanes::fits`]:
    /// scale chunks it folds; for raw sums one sample only).
    pub fn runs_lanes(&self, a: &QuantizedTensor, b: &QuantizedTensor) -> bool {
        self.lanes.is_some() && GemmIntLanes::fits(a, b)
    }

    /// Whether the untiled entry points take `gemm_int_coop` for these operands: on an adapter
    /// with f16 cooperative matrices ([`GemmIntCoop::available`]) where the lanes kernel does not
    /// run them, for what [`GemmIntCoop::fits`]. They run it then, but for a shape class where
    /// [`GemmInt::tune_untuned`] found a tile faster ([`GemmInt::coop_tuned`] is `Some(false)`).
    pub fn runs_coop(&self, a: &QuantizedTensor, b: &QuantizedTensor) -> bool {
        !self.runs_lanes(a, b) && self.coop.as_ref().is_some_and(|k| GemmIntCoop::fits(k.matrix_size(), a, b))
    }

    /// Records `c ← epilogue(A·Bᵀ)` on the cooperative-matrix unit (`gemm_int_coop`, 64×64
    /// tiles, split along K as gemm_int's 64×64 tiles split): the bits of
    /// [`GemmInt::encode_with`] with [`Tile::T64`]. An error, recording nothing, on an adapter
    /// without f16 cooperative matrices or for operands it does not take ([`GemmIntCoop::fits`]).
    pub fn encode_coop(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_coop_batched(gpu, enc, a, b, 1, epi, c)
    }

    /// [`GemmInt::encode_coop`] of `batches` products at once, as [`GemmInt::encode_batched`]
    /// takes them.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_coop_batched(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let coop = self.coop_kernel(gpu)?;
        self.check_formats(a, b)?;
        coop.check(a, b)?;
        let p = checked_packed_params("gemm_int_coop", a, b, epi.flags(), epi, Tile::T64, batches, c.len())?;
        self.encode_split_int(gpu, enc, p, (a, b), epi, c, |enc, target, p| {
            coop.record(gpu, enc, p, &self.dummies, a, b, epi, target)
        })
    }

    /// The cooperative kernel, or the error that says why this adapter or this kernel has none.
    fn coop_kernel(&self, gpu: &Gpu) -> Result<&CoopPipeline> {
        let coop = self.coop.as_ref().map(GemmIntCoop::pipeline);
        coop_or_error(gpu, "gemm_int_coop", coop, self.coop_refusal.as_deref())
    }

    /// Records the product through `gemm_int_lanes` if [`GemmInt::runs_lanes`] (after the same
    /// checks as the tiled path); `Ok(false)` when it does not apply.
    #[allow(clippy::too_many_arguments)]
    fn records_lanes(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        flag_bits: u32,
        epi: &Epilogue,
        c: &wgpu::Buffer,
        c_len: usize,
    ) -> Result<bool> {
        let Some(lanes) = &self.lanes else { return Ok(false) };
        self.check_formats(a, b)?;
        if !self.runs_lanes(a, b) {
            return Ok(false);
        }
        let p = checked_packed_params("gemm_int", a, b, flag_bits, epi, Tile::T32, batches, c_len)?;
        lanes.record(gpu, enc, p, &self.dummies, a, b, epi, c)?;
        Ok(true)
    }

    /// [`GemmInt::encode_batched`] with an explicit tile.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_batched_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.check_formats(a, b)?;
        let p = checked_packed_params("gemm_int", a, b, epi.flags(), epi, tile, batches, c.len())?;
        self.encode_split_int(gpu, enc, p, (a, b), epi, c, |enc, target, p| {
            self.record(gpu, enc, tile, p, a, b, epi, target)
        })
    }

    /// The K splits of the tiled (or cooperative) product of `p` whose splits sum exactly
    /// ([`GemmInt::exact_splits`]) on `gpu`, or 1 where it is not split so.
    fn exact_split_plan(gpu: &Gpu, p: &GemmParams) -> (u32, u32, u32) {
        match ExactCombine::takes(p) {
            true => exact_split_plan(p.total_tiles, p.k as usize, p.chunk as usize, gpu.fill()),
            false => (1, 0, 0),
        }
    }

    /// The K splits [`GemmInt::encode_with`] (and the cooperative entry points) cut the product of
    /// these operands into with exact sums on `gpu`, for a `tile` of the output: more than 1
    /// where A has one sample, per-row or per-tensor scales (one scale chunk over K, or, past
    /// [`exact_chunk`], chunks of an exact i32 run) and the tile's outputs are few for a long K
    /// ([`split_plan`], with or without an epilogue), as many as bring the launch to
    /// [`Gpu::fill`] threads ([`fill_split_plan`]), restarting at every chunk
    /// ([`exact_split_plan`]). Each split writes its exact i32 sums and a second launch (entry
    /// `main_combine`) forms every output from each chunk's total: the unsplit bits, whatever the
    /// split. (SMP's samples and scale blocks along K split as the f32 tiles do, by
    /// [`split_plan`] and without an epilogue: partial values added by `col_sum`.)
    ///
    /// [`split_plan`]: super::gemm::split_plan
    /// [`fill_split_plan`]: super::gemm::fill_split_plan
    /// [`exact_chunk`]: crate::scheme::exact_chunk
    pub fn exact_splits(gpu: &Gpu, a: &QuantizedTensor, b: &QuantizedTensor, tile: Tile) -> Result<u32> {
        let p = packed_params("gemm_int", a, b, 0, tile, 1)?;
        Ok(Self::exact_split_plan(gpu, &p).0)
    }

    /// Records the product of `p` through `record(target, params)`, split along K: with exact
    /// sums where [`GemmInt::exact_splits`] says so (the splits' raw sums into scratch, then
    /// `main_combine` into `c`), else as [`encode_split`] splits (f32 partial values added by
    /// `col_sum`, where `split_plan` splits a product without epilogue), else whole.
    #[allow(clippy::too_many_arguments)]
    fn encode_split_int<R: crate::Record>(
        &self,
        gpu: &Gpu,
        enc: &mut R,
        p: GemmParams,
        (a, b): (&QuantizedTensor, &QuantizedTensor),
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
        record: impl FnOnce(&mut R, &wgpu::Buffer, GemmParams) -> Result<()>,
    ) -> Result<()> {
        let (splits, k_split, chunk_splits) = Self::exact_split_plan(gpu, &p);
        if splits <= 1 {
            return encode_split(gpu, enc, &self.dummies.sum, p, c, record);
        }
        let mn = p.m as usize * p.n as usize;
        let parts = enc.scratch::<u32>(gpu, "gemm_int split-K sums", splits as usize * mn)?;
        // The splits' raw sums, no epilogue (its bias and amax stay bound, unread).
        let combine = GemmParams { splits, k_split, chunk_splits, ..p };
        record(enc, parts.buffer(), GemmParams { flags: flags::RAW, ..combine })?;
        // A thread per output.
        let workgroups = super::thread_workgroups("gemm_int combine", mn, 256)?;
        self.combine.record(gpu, enc, false, &self.dummies, &combine, (a, b), epi, c.buffer(), &parts, workgroups)
    }

    /// The tile `tune` chose for this shape's class, if it ran.
    pub fn tuned(&self, m: usize, n: usize, k: usize) -> Option<Tile> {
        self.cache.get(m, n, k)
    }

    /// Times every tile candidate on an `m × n × k` product (scratch operands; submits and
    /// waits) and caches the fastest for the shape's class.
    pub fn tune(&self, gpu: &Gpu, m: usize, n: usize, k: usize) -> Result<(Tile, Vec<(Tile, f64)>)> {
        let (a, b, c) = self.scratch_product(gpu, m, n, k)?;
        let r = self.time_tiles(gpu, (&a, &b, &c), &Tile::ALL)?;
        self.cache.insert(m, n, k, r.0);
        Ok(r)
    }

    /// A product of `m × n × k` to time: scratch operands in this kernel's formats (their native
    /// scale groups) and C.
    fn scratch_product(
        &self,
        gpu: &Gpu,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<(QuantizedTensor, QuantizedTensor, GpuBuffer<f32>)> {
        let a = scratch_operand(gpu, m, k, self.fmt_a)?;
        let b = scratch_operand(gpu, n, k, self.fmt_b)?;
        Ok((a, b, GpuBuffer::<f32>::zeros(gpu, "tune c", m * n)?))
    }

    /// Times the product on each of `tiles` ([`tune_iters`] products, the best of two runs) and
    /// returns the fastest with every tile's seconds.
    fn time_tiles(
        &self,
        gpu: &Gpu,
        (a, b, c): (&QuantizedTensor, &QuantizedTensor, &GpuBuffer<f32>),
        tiles: &[Tile],
    ) -> Result<(Tile, Vec<(Tile, f64)>)> {
        let iters = tune_iters(a.layout.rows as usize, b.layout.rows as usize, a.layout.cols as usize);
        pick_fastest(tiles, |t| {
            gpu_seconds(gpu, iters, 2, |e| self.encode_with(gpu, e, t, a, b, &Epilogue::default(), c))
        })
    }

    /// Records the exact i32 sums of products (over all K and samples), without scales.
    pub fn encode_raw(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        c: &GpuBuffer<i32>,
    ) -> Result<()> {
        // (The lanes kernel's raw sums are one sample's.)
        if self.runs_lanes(a, b) && a.samples == 1 {
            self.check_raw(a)?;
            if self.records_lanes(gpu, enc, a, b, 1, flags::RAW, &Epilogue::default(), c.buffer(), c.len())? {
                return Ok(());
            }
        }
        let shape = (a.layout.rows as usize, b.layout.rows as usize, a.layout.cols as usize);
        match self.path(gpu, a, b, 1, flags::RAW, shape)? {
            None => self.encode_coop_raw(gpu, enc, a, b, c),
            Some(tile) => self.encode_raw_with(gpu, enc, tile, a, b, c),
        }
    }

    /// [`GemmInt::encode_raw`] on the cooperative-matrix unit (`gemm_int_coop`): the exact i32
    /// sums over all of K, without scales. An error, recording nothing, where
    /// [`GemmInt::encode_coop`] is one.
    pub fn encode_coop_raw(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        c: &GpuBuffer<i32>,
    ) -> Result<()> {
        let coop = self.coop_kernel(gpu)?;
        self.check_formats(a, b)?;
        coop.check(a, b)?;
        self.check_raw(a)?;
        let p = packed_params("gemm_int_coop", a, b, flags::RAW, Tile::T64, 1)?;
        check_len("gemm_int_coop", "c", c.len(), p.m as usize * p.n as usize)?;
        coop.record(gpu, enc, p, &self.dummies, a, b, &Epilogue::default(), c.buffer())
    }

    /// Raw mode keeps one i32 over all of K and every sample: refuse what it cannot hold.
    fn check_raw(&self, a: &QuantizedTensor) -> Result<()> {
        let most = a.layout.cols as u64
            * a.samples as u64
            * self.fmt_a.max_lane().unwrap_or(1) as u64
            * self.fmt_b.max_lane().unwrap_or(1) as u64;
        if most > i32::MAX as u64 {
            return Err(Error::InvalidArgument(format!(
                "gemm_int raw: K = {} ({} samples) of {} × {} codes can sum past an i32 ({most}); use the scaled product",
                a.layout.cols, a.samples, self.fmt_a, self.fmt_b
            )));
        }
        Ok(())
    }

    /// [`GemmInt::encode_raw`] with an explicit tile.
    pub fn encode_raw_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        c: &GpuBuffer<i32>,
    ) -> Result<()> {
        self.check_formats(a, b)?;
        self.check_raw(a)?;
        let p = packed_params("gemm_int", a, b, flags::RAW, tile, 1)?;
        check_len("gemm_int", "c", c.len(), p.m as usize * p.n as usize)?;
        self.record(gpu, enc, tile, p, a, b, &Epilogue::default(), c.buffer())
    }
}
