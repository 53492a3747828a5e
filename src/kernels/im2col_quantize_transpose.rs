//! `im2col_quantize_transpose`: the transposing one-pass quantizer of a convolution's unfolded
//! input, read from the input itself. The weight gradient of a quantized convolution multiplies by
//! `L = colsᵀ` (`[kh·kw·c, batch·oh·ow]`, cols what [`super::im2col`] writes) packed along the
//! batch's pixels; [`super::quantize_transpose_fused`] packs it from cols, reading that
//! `kh·kw`-fold copy of the input twice, column by column. This kernel forms each value of L from
//! the input where it lies (or the padding's 0), so cols is neither read nor, where nothing else
//! needs it, written: the codes and scales are `quantize_transpose_fused`'s of cols, bit for bit.
//! Per-row or per-block scales of formats without a tensor-wide scale (not NVFP4), SMP's stacked
//! samples. Layout on a CPU adapter: one thread per row of L, or per four rows of one tap's
//! channels with vec4 loads, 8 threads per workgroup; where L has few long rows per row (a first
//! convolution's taps of one channel: [`Im2colQuantizeTranspose::splits_rows`]) a thread per piece
//! of a row, in two launches (entries `main_piece_maxima`, then `main_pieces`). On a GPU's layouts,
//! where a row per thread would leave most of a GPU idle, neighbouring threads take neighbouring
//! rows of L (one tap's neighbouring channels of x), each thread a piece of a row
//! ([`Im2colQuantizeTranspose::uses_tiles`]): per block, entry `main_blocks` (a thread per block,
//! one launch); per row, `main_rows` where the row has at most [`ROWS_MAX_COLS`] columns (lanes of
//! one workgroup, their maxima met in workgroup memory, one launch), else two launches as the chain
//! over cols takes: `main_maxima` (pieces of [`PIECE_COLS`] columns, a row's in one workgroup met
//! in workgroup memory, the workgroups' by `atomicMax` in a cleared scratch buffer), then
//! `main_tiles` packing [`PIECE_WORDS`] words a thread. Either way
//! cols is neither written nor read: a quantized convolution takes it on every adapter
//! ([`crate::quant::Quantizer::unfolds_transposed`]). Bindings: 0 `QuantParams` (of L), 1 x (read
//! f32, NHWC), 2 codes, 3 scales, 4 step state, 5 conv params, 6 the group maxima (read-write u32;
//! a stand-in for the CPU entries). Reference: [`crate::reference::im2col_quantize_transpose`].

use super::im2col::{ConvGeom, ConvParams};
use super::quantize_transpose_fused::{QuantizeTransposeFused, V4_MIN_ROWS};
use super::{check_len, dispatch, format_constant, layouts, pipeline, row_team, uniform, QuantParams, Slot, WG};
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The transposing quantizer of an unfolded input, for one format.
pub struct Im2colQuantizeTranspose {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4`: four rows (one tap's four channels) per thread, taken where channels are a
    /// multiple of 4 and L has at least [`V4_MIN_ROWS`] rows.
    v4: wgpu::ComputePipeline,
    /// The GPU layouts' entries: built where the adapter takes those, and then what
    /// [`Im2colQuantizeTranspose::encode`] runs.
    tiles: Option<Tiled>,
    /// Entries `main_piece_maxima` and `main_pieces` (CPU layouts: a thread per piece of a row,
    /// where L's rows are few and long, [`Im2colQuantizeTranspose::splits_rows`]).
    pieces: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    /// Bound as the group maxima by the CPU entries.
    no_amax: GpuBuffer<u32>,
}

/// The GPU layouts' entries.
struct Tiled {
    /// `main_blocks`: per block.
    blocks: wgpu::ComputePipeline,
    /// `main_rows`: per row, rows of at most [`ROWS_MAX_COLS`] columns.
    rows: wgpu::ComputePipeline,
    /// `main_maxima` then `main_tiles`: per row, longer rows.
    chain: (wgpu::ComputePipeline, wgpu::ComputePipeline),
}

/// Columns of a row whose maximum one thread of `main_maxima` takes (as few as `absmax`'s
/// `main_t` takes a thread over cols, so as many threads load at once; a workgroup's lanes then
/// share one `atomicMax` a row).
pub const PIECE_COLS: u32 = 16;

/// Words of a row one thread of `main_tiles` packs, and of each piece a lane of `main_rows` takes.
pub const PIECE_WORDS: u32 = 4;

/// Columns of a row one thread of the CPU layouts' `main_piece_maxima` and `main_pieces` takes
/// ([`Im2colQuantizeTranspose::splits_rows`]; a multiple of every format's codes per word).
pub const CPU_PIECE_COLS: u32 = 2048;

/// Rows of L below which a CPU adapter's launch splits them into pieces
/// ([`Im2colQuantizeTranspose::splits_rows`]): a thread per row would fill fewer than 8
/// workgroups of 8.
pub const SPLIT_MAX_ROWS: u32 = 64;

/// The longest rows of L (per-row scales) that take one launch on a GPU's layouts (entry
/// `main_rows`: at least 8 lanes a row), as `quantize_transpose_fused`'s one launch takes rows
/// from cols up to the same length there
/// ([`super::quantize_transpose_fused::FUSED_T_MAX_COLS`]).
pub const ROWS_MAX_COLS: u32 = super::quantize_transpose_fused::FUSED_T_MAX_COLS as u32;

impl Im2colQuantizeTranspose {
    /// Builds the pipelines for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let (bgl, pl) = layouts(
            gpu,
            "im2col_quantize_transpose",
            &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write, Slot::Uniform, Slot::Uniform, Slot::Write],
        );
        let c = format_constant(format);
        let p = |entry| pipeline(gpu, "im2col_quantize_transpose", entry, &pl, &c);
        Ok(Im2colQuantizeTranspose {
            format,
            pipeline: p("main")?,
            v4: p("main_v4")?,
            pieces: match gpu.cpu_layouts() {
                true => Some((p("main_piece_maxima")?, p("main_pieces")?)),
                false => None,
            },
            tiles: match gpu.cpu_layouts() {
                true => None,
                false => Some(Tiled {
                    blocks: p("main_blocks")?,
                    rows: p("main_rows")?,
                    chain: (p("main_maxima")?, p("main_tiles")?),
                }),
            },
            no_amax: GpuBuffer::zeros(gpu, "im2col_quantize_transpose no maxima", 4)?,
            bgl,
        })
    }

    /// Whether [`Im2colQuantizeTranspose::encode`] runs the GPU layouts' entries (a piece of a row
    /// a thread) rather than a thread per row (or four).
    pub fn uses_tiles(&self) -> bool {
        self.tiles.is_some()
    }

    /// Whether [`Im2colQuantizeTranspose::encode`] on `gpu` splits the rows of L (layout `l`) into
    /// pieces of [`CPU_PIECE_COLS`] columns, a thread each, in two launches (the pieces' maxima,
    /// then the packing): on a CPU adapter, per-row scales, fewer than [`SPLIT_MAX_ROWS`] rows and
    /// at least two pieces a row (a first convolution's taps of one channel, as long as the
    /// batch's pixels), where a thread per row leaves cores idle or runs a workgroup of one row.
    /// The same codes and scales.
    pub fn splits_rows(gpu: &Gpu, l: &QuantLayout) -> bool {
        gpu.cpu_layouts()
            && l.granularity == Granularity::PerRow
            && l.rows < SPLIT_MAX_ROWS
            && l.cols >= 2 * CPU_PIECE_COLS
    }

    /// Whether [`Im2colQuantizeTranspose::encode`] handles `l`: what
    /// [`QuantizeTransposeFused::supports`] takes (per-row scales, or blocks of whole words, of a
    /// format without a tensor-wide scale), the kernel whose output it gives.
    pub fn supports(l: &QuantLayout) -> bool {
        QuantizeTransposeFused::supports(l)
    }

    /// Records `(codes, scales) ← quantize(im2col(x)ᵀ)` under `l` (the `[kh·kw·c, batch·oh·ow]`
    /// layout of L), `samples` stacked samples (more than one only with stochastic rounding), as
    /// [`super::quantize_transpose_fused::QuantizeTransposeFused::encode_samples`] writes them.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        samples: u32,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        const OP: &str = "im2col_quantize_transpose";
        g.check()?;
        super::check_built_for(OP, self.format, l)?;
        if !Self::supports(l) {
            return Err(Error::InvalidArgument(format!(
                "{OP}: {} scales of {} need im2col and the transposing quantizer apart",
                l.granularity, l.format
            )));
        }
        super::check_samples(OP, rounding, samples)?;
        if (l.rows as usize, l.cols as usize) != (g.kdim(), g.rows()) {
            return Err(Error::Shape {
                op: OP,
                detail: format!(
                    "layout [{}, {}] for the transposed cols [{}, {}] ({g:?})",
                    l.rows,
                    l.cols,
                    g.kdim(),
                    g.rows()
                ),
            });
        }
        check_len(OP, "x", x.len(), g.input_len())?;
        check_len(OP, "codes", codes.len(), l.words() * samples as usize)?;
        check_len(OP, "scales", scales.len(), l.n_groups as usize * samples as usize)?;
        let mut p = QuantParams::row_tiles(l, rounding);
        p.samples = samples;
        let conv = uniform(gpu, "im2col_quantize_transpose conv", &ConvParams::new(g, g.rows() * g.kdim()));
        let step = enc.step_state(gpu).clone();
        if let Some(t) = &self.tiles {
            let too_large = || Error::InvalidArgument(format!("{OP}: {l:?} is too large"));
            // Tiles of `seg` rows of L (its rows rounded up to a power of two, at most 32: enough
            // neighbouring channels for whole cache lines, few idle threads in the last tile)
            // times WG / seg pieces of `piece` columns (p.aux0, for every GPU entry).
            let seg = row_team(l.rows).min(WG / 8);
            let tiled = |piece: u32| -> Result<QuantParams> {
                let mut p = p.with_row_tiles(seg, l.cols.div_ceil(piece)).ok_or_else(too_large)?;
                p.aux = [piece, 0];
                Ok(p)
            };
            // The packing entries' pieces: PIECE_WORDS words' columns.
            let packed = PIECE_WORDS * l.per_word();
            let (launches, amax) = match l.granularity {
                Granularity::PerBlock(b) => (vec![(&t.blocks, tiled(b)?)], None),
                _ if l.cols <= ROWS_MAX_COLS => {
                    // A workgroup of `seg` rows, at least 8 lanes each.
                    let mut p = p;
                    p.seg = seg;
                    p.total_tiles = l.rows.div_ceil(p.seg);
                    p.aux = [packed, 0];
                    (vec![(&t.rows, p)], None)
                }
                _ => {
                    let (pm, pt) = (tiled(PIECE_COLS)?, tiled(packed)?);
                    let amax = enc.scratch::<u32>(gpu, "im2col_quantize_transpose maxima", l.amax_len())?;
                    enc.clear(amax.buffer());
                    (vec![(&t.chain.0, pm), (&t.chain.1, pt)], Some(amax))
                }
            };
            let amax = amax.as_ref().unwrap_or(&self.no_amax);
            for (pipe, p) in launches {
                let params = uniform(gpu, "im2col_quantize_transpose params", &p);
                let buffers = [&params, x.buffer(), codes.buffer(), scales.buffer(), &step, &conv, amax.buffer()];
                dispatch(gpu, enc, OP, pipe, &self.bgl, &buffers, p.total_tiles)?;
            }
            return Ok(());
        }
        if let Some((maxima, pack)) = self.pieces.as_ref().filter(|_| Self::splits_rows(gpu, l)) {
            let mut p = p;
            p.aux = [CPU_PIECE_COLS, 0];
            let threads = l.rows * l.cols.div_ceil(CPU_PIECE_COLS);
            let amax = enc.scratch::<u32>(gpu, "im2col_quantize_transpose piece maxima", threads as usize)?;
            let params = uniform(gpu, "im2col_quantize_transpose params", &p);
            let buffers = [&params, x.buffer(), codes.buffer(), scales.buffer(), &step, &conv, amax.buffer()];
            for pipe in [maxima, pack] {
                dispatch(gpu, enc, OP, pipe, &self.bgl, &buffers, threads.div_ceil(8))?;
            }
            return Ok(());
        }
        let params = uniform(gpu, "im2col_quantize_transpose params", &p);
        let buffers = [&params, x.buffer(), codes.buffer(), scales.buffer(), &step, &conv, self.no_amax.buffer()];
        // Four rows per thread where they are one tap's channels and enough threads remain to
        // spread over the cores (as quantize_transpose_fused's per-thread entries).
        let (pipe, rows_per) =
            if g.c.is_multiple_of(4) && l.rows >= V4_MIN_ROWS { (&self.v4, 32) } else { (&self.pipeline, 8) };
        dispatch(gpu, enc, OP, pipe, &self.bgl, &buffers, l.rows.div_ceil(rows_per))
    }
}
