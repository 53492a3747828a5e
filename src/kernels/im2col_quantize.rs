//! `im2col_quantize`: a convolution's unfold ([`super::im2col`]) and the one-pass per-row quantizer
//! of the unfolded rows ([`super::quantize_fused`]) in one launch, a thread per row of cols: the
//! row is unfolded, its maximum taken as each value is stored, and packed from what was just
//! written (still in the cache) — where the two launches write cols and then read it twice from
//! memory. It writes cols as well where asked (the weight gradient's operand quantized from it),
//! and the codes and scales `quantize_fused` gives for cols, bit for bit; without cols (entries
//! `main_codes`, `main_codes_v4`) it unfolds each row twice from x instead, once for its maximum
//! and once packing, or, where the rows are short and channels not in fours (a first convolution's:
//! [`Im2colQuantize::short_rows`]), loads each row once into registers (entry `main_codes_short`,
//! its loops bounded by pipeline constants). Per-row scales of formats without a tensor-wide scale
//! (not NVFP4); the quantized convolution takes it on every adapter
//! ([`crate::quant::Quantizer::unfolds_in_one_pass`]). Those entries run a thread per row, as both
//! kernels it fuses run on CPU layouts; on a GPU's layouts [`Im2colQuantize::encode`] runs
//! entry `main_rows` instead (`main_rows_v4` through vec4s where channels come in fours): a team
//! of threads per row ([`super::balanced_team`], several rows a workgroup), each thread some of
//! the row's words, their maxima met in workgroup memory, each word packed again from x, so
//! neighbouring threads load neighbouring values and a few hundred rows still fill a GPU (the
//! same bits: a maximum in any order). Entry `main_both_v4`
//! ([`Im2colQuantize::encode_both`]) also quantizes L = colsᵀ from x in the same launch, as
//! [`Im2colQuantizeTranspose`] does (its rows' code shared, `common/unfold_t.wgsl`): a
//! convolution's X for the forward and Xᵀ for the weight gradient together, where its taps share
//! pixels ([`Im2colQuantize::takes_maxima`]) after entry `main_maxima_v4` has taken x's maxima per
//! pixel and per tap column's run of each image row, from which `main_both_v4` forms every row's
//! maximum (of cols, and of L per row) instead of unfolding the row once more for it: on
//! `resnet20`'s int8 step on llvmpipe the two launches took 0.57–0.69 of the time of the one that
//! unfolded for its maxima (README, "Since c5013f0"). For formats of 4 or 8 codes a word, channels
//! in such groups and per-row scales of L, `encode_both` runs entries `main_scales_t_v4` and
//! `main_tiles_v4` after the maxima instead of `main_both_v4` ([`Im2colQuantize::takes_tiles`]):
//! L's scales in a launch of their own, then a thread per tile of `per_word` output pixels that
//! loads each value of x once and packs whole words of both sides from it (the same bits).
//! Bindings: 0 `QuantParams`, 1 cols (read-write f32), 2 codes, 3 scales, 4 step state, 5 mask
//! (unused), 6 conv params, 7 x (read f32), 8 L's codes, 9 L's scales (read-write; stand-ins but
//! for the entries that quantize both), 10 L's `QuantParams`, 11 and 12 the maxima (read-write u32;
//! stand-ins but for `main_maxima_v4` and the entries that read them; 12 also holds L's inverse
//! scales for `main_tiles_v4`).
//! Reference: [`crate::reference::im2col_quantize`].

use super::im2col::{ConvGeom, ConvParams};
use super::im2col_quantize_transpose::Im2colQuantizeTranspose;
use super::quantize_both::Side;
use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot, WG};

/// Threads per workgroup of entries `main_both_v4`, `main_scales_t_v4` and `main_tiles_v4` (the
/// shader's `BOTH_WG`).
const BOTH_WG: u32 = 8;

/// The longest row of cols entry `main_codes_short` holds in registers (the shader's
/// `SHORT_MAX`; [`Im2colQuantize::short_rows`]).
pub const SHORT_ROW_VALUES: u32 = 32;
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The fused unfold and quantizer for one format.
pub struct Im2colQuantize {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4`, for formats with codes per word in fours (taken where channels are a
    /// multiple of 4).
    v4: Option<wgpu::ComputePipeline>,
    /// Entries `main_codes` and `main_codes_v4` (channels a multiple of 4): cols not written.
    codes: (wgpu::ComputePipeline, wgpu::ComputePipeline),
    /// Entry `main_both_v4` (bindings 8–10: L = colsᵀ's outputs and params, which the other
    /// entries reach too, through the stores they share, and bind unused stand-ins for), each row
    /// unfolded for its maximum (`.0`) or its maximum formed from `main_maxima_v4`'s (`.1`).
    both: (wgpu::ComputePipeline, wgpu::ComputePipeline),
    /// Entry `main_maxima_v4`: x's maxima that `main_both_v4` reads (bindings 11, 12).
    maxima: wgpu::ComputePipeline,
    /// Entries `main_scales_t_v4` and `main_tiles_v4`, for formats of 4 or 8 codes a word
    /// ([`Im2colQuantize::takes_tiles`]); the latter for each of its four roundings
    /// (`TILE_STOCHASTIC`), built when first taken.
    tiles: Option<(wgpu::ComputePipeline, [std::sync::OnceLock<wgpu::ComputePipeline>; 4])>,
    /// Entry `main_codes_short` per kernel height, width and channels (its pipeline constants),
    /// built when first taken ([`Im2colQuantize::short_rows`]).
    short: std::sync::Mutex<std::collections::HashMap<(u32, u32, u32), wgpu::ComputePipeline>>,
    /// The layout the lazily built pipelines take.
    pl: wgpu::PipelineLayout,
    /// Bound as those maxima by the other entries.
    no_maxima: (GpuBuffer<u32>, GpuBuffer<u32>),
    /// Bound as L's codes and scales by the entries that write cols' alone.
    no_t: (GpuBuffer<u32>, GpuBuffer<f32>),
    /// Bound as the (unused) mask.
    no_mask: GpuBuffer<f32>,
    /// Bound as cols where none is written.
    no_cols: GpuBuffer<f32>,
    /// Entry `main_rows` (a team of threads per row), writing cols (`.0`) or not (`.1`): built
    /// where the adapter takes the GPU layouts, and then what [`Im2colQuantize::encode`] runs.
    teams: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    /// Entry `main_rows_v4` (`main_rows` through vec4s), as `teams`, for formats with codes per
    /// word in fours: taken where channels are a multiple of 4.
    teams_v4: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    /// The teams are enlarged below these threads ([`super::balanced_team`]).
    team_fill: u32,
}

impl Im2colQuantize {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        use Slot::{Read, Uniform, Write};
        let slots = [Uniform, Write, Write, Write, Uniform, Read, Uniform, Read, Write, Write, Uniform, Write, Write];
        let (bgl, pl) = layouts(gpu, "im2col_quantize", &slots);
        let fc = format_constant(format);
        Ok(Im2colQuantize {
            format,
            pipeline: pipeline(gpu, "im2col_quantize", "main", &pl, &fc)?,
            v4: if format.per_word().is_multiple_of(4) {
                Some(pipeline(gpu, "im2col_quantize", "main_v4", &pl, &fc)?)
            } else {
                None
            },
            codes: (
                pipeline(gpu, "im2col_quantize", "main_codes", &pl, &fc)?,
                pipeline(gpu, "im2col_quantize", "main_codes_v4", &pl, &fc)?,
            ),
            both: (
                pipeline(gpu, "im2col_quantize", "main_both_v4", &pl, &[fc[0], ("FROM_MAXIMA", 0.0)])?,
                pipeline(gpu, "im2col_quantize", "main_both_v4", &pl, &[fc[0], ("FROM_MAXIMA", 1.0)])?,
            ),
            maxima: pipeline(gpu, "im2col_quantize", "main_maxima_v4", &pl, &fc)?,
            tiles: match Self::tiles_take(format) {
                true => Some((pipeline(gpu, "im2col_quantize", "main_scales_t_v4", &pl, &fc)?, Default::default())),
                false => None,
            },
            no_maxima: (
                GpuBuffer::zeros(gpu, "im2col_quantize no pixel maxima", 4)?,
                GpuBuffer::zeros(gpu, "im2col_quantize no run maxima", 4)?,
            ),
            no_t: (
                GpuBuffer::zeros(gpu, "im2col_quantize no codes_t", 4)?,
                GpuBuffer::zeros(gpu, "im2col_quantize no scales_t", 4)?,
            ),
            no_mask: GpuBuffer::zeros(gpu, "im2col_quantize no mask", 4)?,
            no_cols: GpuBuffer::zeros(gpu, "im2col_quantize no cols", 4)?,
            teams: match gpu.cpu_layouts() {
                true => None,
                false => Some((
                    pipeline(gpu, "im2col_quantize", "main_rows", &pl, &[fc[0], ("TEAM_COLS", 1.0)])?,
                    pipeline(gpu, "im2col_quantize", "main_rows", &pl, &[fc[0], ("TEAM_COLS", 0.0)])?,
                )),
            },
            teams_v4: match gpu.cpu_layouts() || !format.per_word().is_multiple_of(4) {
                true => None,
                false => Some((
                    pipeline(gpu, "im2col_quantize", "main_rows_v4", &pl, &[fc[0], ("TEAM_COLS", 1.0)])?,
                    pipeline(gpu, "im2col_quantize", "main_rows_v4", &pl, &[fc[0], ("TEAM_COLS", 0.0)])?,
                )),
            },
            team_fill: gpu.fill(),
            short: Default::default(),
            bgl,
            pl,
        })
    }

    /// The same kernel with the teams of entries `main_rows` and `main_rows_v4` (GPU layouts)
    /// enlarged only where the rows would take fewer than `threads` threads
    /// ([`super::balanced_team`]; [`Gpu::fill`] unless set): a GPU smaller than an H200
    /// fills with fewer, and 0 keeps the teams that leave the fewest threads idle for any rows.
    /// The bits are the same.
    pub fn with_team_fill(mut self, threads: u32) -> Self {
        self.team_fill = threads;
        self
    }

    /// The fill its teams are enlarged below: its `Gpu`'s [`Gpu::fill`] unless
    /// `with_team_fill` set another.
    pub fn team_fill(&self) -> u32 {
        self.team_fill
    }

    /// Whether [`Im2colQuantize::encode`] runs a team of threads per row (entry `main_rows`, built
    /// on GPU layouts) rather than a thread per row (CPU layouts).
    pub fn uses_teams(&self) -> bool {
        self.teams.is_some()
    }

    /// Whether [`Im2colQuantize::encode`] without cols runs entry `main_codes_short` for the
    /// convolution `g` on `gpu`: a thread per row on a CPU adapter, channels not a multiple of 4
    /// (else `main_codes_v4`) and rows of cols of at most [`SHORT_ROW_VALUES`] values (a first
    /// convolution's: MNIST's one channel, CIFAR's three), each loaded once into registers by
    /// loops the pipeline's constants bound, where `main_codes` unfolds the row twice. The same
    /// bits.
    pub fn short_rows(gpu: &Gpu, g: &ConvGeom) -> bool {
        gpu.cpu_layouts() && !g.c.is_multiple_of(4) && g.kdim() <= SHORT_ROW_VALUES as usize
    }

    /// Whether [`Im2colQuantize::encode`] handles `l`: per-row scales, not NVFP4.
    pub fn supports(l: &QuantLayout) -> bool {
        l.granularity == Granularity::PerRow && !l.format.needs_tensor_amax()
    }

    /// Records `cols ← im2col(x)` (where `cols` is given) and `(codes, scales) ←
    /// quantize(im2col(x))` under `l` (the `[rows, kh·kw·c]` layout of cols).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        cols: Option<&GpuBuffer<f32>>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        g.check()?;
        super::check_built_for("im2col_quantize", self.format, l)?;
        if !Self::supports(l) {
            return Err(Error::InvalidArgument(format!(
                "im2col_quantize: {} scales of {} need im2col and the quantizer apart",
                l.granularity, l.format
            )));
        }
        if (l.rows as usize, l.cols as usize) != (g.rows(), g.kdim()) {
            return Err(Error::Shape {
                op: "im2col_quantize",
                detail: format!("layout [{}, {}] for cols of [{}, {}] ({g:?})", l.rows, l.cols, g.rows(), g.kdim()),
            });
        }
        check_len("im2col_quantize", "x", x.len(), g.input_len())?;
        if let Some(cols) = cols {
            check_len("im2col_quantize", "cols", cols.len(), g.rows() * g.kdim())?;
        }
        check_len("im2col_quantize", "codes", codes.len(), l.words())?;
        check_len("im2col_quantize", "scales", scales.len(), l.n_groups as usize)?;
        let v4 = g.c.is_multiple_of(4);
        // Teams through vec4s where channels come in fours, else of main_rows.
        let teams = self.teams_v4.as_ref().filter(|_| v4).or(self.teams.as_ref());
        let mut qp = QuantParams::row_tiles(l, rounding);
        // A team's threads per row (entries main_rows and main_rows_v4; the others do not read
        // seg).
        qp.seg = super::balanced_team(l.words_per_row, l.rows, self.team_fill);
        let params = uniform(gpu, "im2col_quantize params", &qp);
        let conv = uniform(gpu, "im2col_quantize conv", &ConvParams::new(g, g.rows() * g.kdim()));
        let step = enc.step_state(gpu).clone();
        let short;
        let (pipe, cols) = match (teams, cols) {
            (Some(t), Some(cols)) => (&t.0, cols),
            (Some(t), None) => (&t.1, &self.no_cols),
            (None, Some(cols)) => (self.v4.as_ref().filter(|_| v4).unwrap_or(&self.pipeline), cols),
            (None, None) if Self::short_rows(gpu, g) => {
                short = self.short_pipeline(gpu, g)?;
                (&short, &self.no_cols)
            }
            (None, None) => (if v4 { &self.codes.1 } else { &self.codes.0 }, &self.no_cols),
        };
        // A thread per row, or a team of qp.seg threads per row (WG / seg rows a workgroup).
        let workgroups = match self.teams {
            Some(_) => l.rows.div_ceil(WG / qp.seg),
            None => l.rows.div_ceil(WG),
        };
        let buffers = [
            &params,
            cols.buffer(),
            codes.buffer(),
            scales.buffer(),
            &step,
            self.no_mask.buffer(),
            &conv,
            x.buffer(),
            self.no_t.0.buffer(),
            self.no_t.1.buffer(),
            &params,
            self.no_maxima.0.buffer(),
            self.no_maxima.1.buffer(),
        ];
        dispatch(gpu, enc, "im2col_quantize", pipe, &self.bgl, &buffers, workgroups)
    }

    /// Entry `main_codes_short` for `g`'s kernel and channels, built the first time they are
    /// asked for.
    fn short_pipeline(&self, gpu: &Gpu, g: &ConvGeom) -> Result<wgpu::ComputePipeline> {
        let key = (g.kh as u32, g.kw as u32, g.c as u32);
        let mut built = self.short.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = built.get(&key) {
            return Ok(k.clone());
        }
        let consts = [
            format_constant(self.format)[0],
            ("SHORT_KH", key.0 as f64),
            ("SHORT_KW", key.1 as f64),
            ("SHORT_C", key.2 as f64),
        ];
        let k = pipeline(gpu, "im2col_quantize", "main_codes_short", &self.pl, &consts)?;
        built.insert(key, k.clone());
        Ok(k)
    }

    /// Whether [`Im2colQuantize::encode_both`] takes cols' layout `l` and L = colsᵀ's `lt` for
    /// the convolution `g`: channels a multiple of 4, `l` what [`Im2colQuantize::supports`] takes
    /// and `lt` what [`Im2colQuantizeTranspose::supports`] takes, in one format.
    pub fn fits_both(g: &ConvGeom, l: &QuantLayout, lt: &QuantLayout) -> bool {
        g.c.is_multiple_of(4) && Self::supports(l) && Im2colQuantizeTranspose::supports(lt) && l.format == lt.format
    }

    /// Whether [`Im2colQuantize::encode_both`] takes the input's maxima in a launch of their own
    /// for the convolution `g` (then two launches, else one): where its taps share pixels, more
    /// taps than the stride's square (a 3×3 convolution's pixel is read by up to nine rows of
    /// cols at stride 1, four at stride 2; a 1×1 convolution's by one, and the maxima launch
    /// would read more of the input than the rows' own maxima passes do).
    pub fn takes_maxima(g: &ConvGeom) -> bool {
        g.kh * g.kw > g.stride * g.stride
    }

    /// Whether [`Im2colQuantize::encode_both`] takes the tiles (three launches: x's maxima, L's
    /// scales, then a thread per tile of `per_word` output pixels that loads each value of x once
    /// for both sides) for the convolution `g`, cols' layout `l` and L's `lt`: where it takes the
    /// maxima ([`Im2colQuantize::takes_maxima`]), for the formats [`Im2colQuantize::tiles_take`],
    /// channels a multiple of their codes per word and per-row scales of L (else entry
    /// `main_both_v4`, as in the one launch after the maxima). The same bits either way.
    pub fn takes_tiles(g: &ConvGeom, l: &QuantLayout, lt: &QuantLayout) -> bool {
        Self::takes_maxima(g)
            && Self::tiles_take(l.format)
            && g.c.is_multiple_of(l.format.per_word() as usize)
            && lt.granularity == Granularity::PerRow
    }

    /// The formats the tiles take: 4 or 8 codes a word (int8, FP8, int4, int3), not log4, whose
    /// tiles ran slower than `main_both_v4` on llvmpipe: `kernel_report`'s `im2col_quantize_both`
    /// lines (`resnet20`'s convolutions at batch 16, three alternating rounds) took 1.11–1.77×
    /// the time of the maxima and `main_both_v4` for log4 (median 1.18), where at c66fb25 int8,
    /// int4 and FP8 E4M3 took 0.50–1.63× (medians 0.76, 0.83, 0.81; README, "Since c66fb25").
    pub fn tiles_take(format: Format) -> bool {
        matches!(format.per_word(), 4 | 8) && format != Format::Log4
    }

    /// The codes and scales of cols (`side`, the `[rows, kh·kw·c]` layout, as
    /// [`Im2colQuantize::encode`] writes them without cols) and of L = colsᵀ (`side_t`, as
    /// [`Im2colQuantizeTranspose::encode`] writes them), each with its own rounding, from x (cols
    /// neither read nor written): where [`Im2colQuantize::takes_maxima`], in two launches (entry
    /// `main_maxima_v4`, x's maxima into two scratch buffers of `batch·h·w` and `batch·h·kw·c`
    /// values, then `main_both_v4`) or, where [`Im2colQuantize::takes_tiles`], three (the maxima,
    /// then `main_scales_t_v4`, which leaves L's inverse scales after the run maxima, then
    /// `main_tiles_v4`), else in one (`main_both_v4` unfolding each row for its maximum). For a
    /// convolution whose forward takes X and whose weight gradient takes Xᵀ; for the layouts of
    /// [`Im2colQuantize::fits_both`]; an error, recording nothing, elsewhere.
    pub fn encode_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        (side, side_t): (Side, Side),
    ) -> Result<()> {
        const OP: &str = "im2col_quantize";
        g.check()?;
        let (l, lt) = (side.layout, side_t.layout);
        super::check_built_for(OP, self.format, l)?;
        super::check_built_for(OP, self.format, lt)?;
        if !Self::fits_both(g, l, lt) {
            return Err(Error::InvalidArgument(format!(
                "{OP}: one launch quantizes cols and colsᵀ for channels in fours, per-row scales of cols and per-row or \
                 per-block ones of colsᵀ, in one format without a tensor-wide scale; not {} channels, {} scales of {} \
                 and {} scales of {}",
                g.c, l.granularity, l.format, lt.granularity, lt.format
            )));
        }
        let (rows, kdim) = (g.rows(), g.kdim());
        for (name, lay, want) in [("cols", l, (rows, kdim)), ("colsᵀ", lt, (kdim, rows))] {
            if (lay.rows as usize, lay.cols as usize) != want {
                return Err(Error::Shape {
                    op: OP,
                    detail: format!("layout [{}, {}] for {name} of {want:?} ({g:?})", lay.rows, lay.cols),
                });
            }
        }
        check_len(OP, "x", x.len(), g.input_len())?;
        for (name, s) in [("", &side), ("_t", &side_t)] {
            check_len(OP, &format!("codes{name}"), s.codes.len(), s.layout.words())?;
            check_len(OP, &format!("scales{name}"), s.scales.len(), s.layout.n_groups as usize)?;
        }
        let params = uniform(gpu, "im2col_quantize params", &QuantParams::row_tiles(l, side.rounding));
        let params_t = uniform(gpu, "im2col_quantize params of colsᵀ", &QuantParams::row_tiles(lt, side_t.rounding));
        let conv = uniform(gpu, "im2col_quantize conv", &ConvParams::new(g, rows * kdim));
        let image_rows = g.batch * g.h;
        let maxima = Self::takes_maxima(g);
        let tiles = self.tiles.as_ref().filter(|_| Self::takes_tiles(g, l, lt));
        // (The tiles' run maxima are followed by L's inverse scales, one a row of L.)
        let run_len = image_rows * g.kw * g.c + if tiles.is_some() { kdim } else { 0 };
        let scratch = match maxima {
            true => Some((
                enc.scratch::<u32>(gpu, "im2col_quantize pixel maxima", image_rows * g.w)?,
                enc.scratch::<u32>(gpu, "im2col_quantize run maxima", run_len)?,
            )),
            false => None,
        };
        let (pixel_maxima, run_maxima) = scratch.as_ref().unwrap_or(&self.no_maxima);
        let step = enc.step_state(gpu).clone();
        let buffers = [
            &params,
            self.no_cols.buffer(),
            side.codes.buffer(),
            side.scales.buffer(),
            &step,
            self.no_mask.buffer(),
            &conv,
            x.buffer(),
            side_t.codes.buffer(),
            side_t.scales.buffer(),
            &params_t,
            pixel_maxima.buffer(),
            run_maxima.buffer(),
        ];
        // x's maxima, a thread per image row (where taken); then L's workgroups (four rows a
        // thread) and cols' (a row a thread), spread in the shader.
        let groups = lt.rows.div_ceil(4).div_ceil(BOTH_WG) as usize + l.rows.div_ceil(BOTH_WG) as usize;
        let workgroups = super::thread_workgroups(OP, groups, 1)?;
        if !maxima {
            return dispatch(gpu, enc, OP, &self.both.0, &self.bgl, &buffers, workgroups);
        }
        let maxima_groups = super::thread_workgroups(OP, image_rows, BOTH_WG)?;
        if let Some((scales_t, tiles)) = tiles {
            // TILE_STOCHASTIC: bit 0 cols' stochastic rounding, bit 1 L's (the params' flags).
            let which = side.rounding.seed_stream().2 as usize | (side_t.rounding.seed_stream().2 as usize) << 1;
            let tiles = super::built(&tiles[which], || {
                let consts = [format_constant(self.format)[0], ("TILE_STOCHASTIC", which as f64)];
                pipeline(gpu, OP, "main_tiles_v4", &self.pl, &consts)
            })?;
            // L's scales a thread per four of its rows; then a thread per tile of per_word pixels.
            let scale_groups = super::thread_workgroups(OP, kdim.div_ceil(4), BOTH_WG)?;
            let tile_groups = super::thread_workgroups(OP, rows.div_ceil(l.format.per_word() as usize), BOTH_WG)?;
            dispatch(gpu, enc, OP, &self.maxima, &self.bgl, &buffers, maxima_groups)?;
            dispatch(gpu, enc, OP, scales_t, &self.bgl, &buffers, scale_groups)?;
            return dispatch(gpu, enc, OP, tiles, &self.bgl, &buffers, tile_groups);
        }
        dispatch(gpu, enc, OP, &self.maxima, &self.bgl, &buffers, maxima_groups)?;
        dispatch(gpu, enc, OP, &self.both.1, &self.bgl, &buffers, workgroups)
    }
}
