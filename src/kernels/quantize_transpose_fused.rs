//! `quantize_transpose_fused`: the one-pass transposing quantizer for per-row and per-block
//! scales of `L = xᵀ` (the backward GEMMs' dYᵀ, Xᵀ and Wᵀ).
//!
//! Math: identical to `absmax` (transposed) → `scale` → `quantize_transpose` (reference:
//! [`crate::reference::quantize_transpose_fused`]), in one launch instead of three; optionally
//! also each row's sum of L in `col_sum`'s order, bit for bit (a layer's bias gradient, which
//! `col_sum` takes two more launches for). Layout: 32 rows of L (columns of x, so reads
//! coalesce) per workgroup, 8 lanes per row reducing and then packing every eighth element or
//! word; per block (entry `main_block`), one block of every row at a time. On a CPU adapter
//! ([`ReducePath::PerThread`]) entries `main_thread` and `main_block_thread` instead: one thread
//! per row of L (8 rows per workgroup; quads of four rows per thread with vec4 loads,
//! `main_thread_v4` and `main_block_thread_v4`, where L has many: up to eight quads a thread,
//! `quads_per_thread`), no workgroup memory or barriers, the same bits.
//! [`QuantizeTransposeFused::encode_with_sums_masked`] reads x as 0 wherever a mask is not above 0
//! (ReLU's backward inside the quantizer); [`QuantizeTransposeFused::encode_samples`] writes SMP's
//! stacked samples in the one launch. Bindings: 0 `QuantParams`, 1 x (read f32), 2 codes
//! (read-write u32), 3 scales (read-write f32), 4 step state, 5 sums (read-write f32), 6 tensor
//! maximum (read u32, NVFP4), 7 mask (read f32).

use super::quantize_fused::ReducePath;
use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// Rows of L per workgroup of the tree entries (the per-thread ones take 8, or 32 four to a
/// thread).
const ROWS_PER_WORKGROUP: u32 = 32;
/// Rows of L from which the per-thread path takes four rows per thread (`main_thread_v4`): fewer
/// would leave a CPU adapter's cores without workgroups.
pub(crate) const V4_MIN_ROWS: u32 = 128;

/// The most quads (four adjacent rows of L) one thread takes: of `main_thread_v4` and
/// `main_block_thread_v4`, of `quantize_both`'s transposed side and of `quantize_transpose`'s
/// `main_rows4` (pack_t.wgsl's `MAX_QUADS`; [`quads_per_thread`]).
pub(crate) const MAX_QUADS: u32 = 8;

/// Workgroups below which [`quads_per_thread`] gives a thread fewer quads: 8 a core of a 2-core
/// CPU adapter.
const QUADS_MIN_WORKGROUPS: u32 = 16;

/// Quads of L's `rows` per thread on the per-thread vec4 paths, `threads` a workgroup, each group
/// of quads in `pieces` threads (`quantize_transpose`'s pieces of a row; 1 where a thread takes
/// whole rows): the most, up to [`MAX_QUADS`] and a power of two, that leave at least
/// [`QUADS_MIN_WORKGROUPS`] workgroups, and no more than L's quads rounded up. A thread of several
/// reads a run of columns of each of its quads in turn, so the rows of x the run reaches (a column
/// of L lies a row of x away from the next) are read again, further along, by its next quads while
/// they are fresh: lavapipe (2 cores), int8 per row, L of 4096×4096 30–36 ms with eight quads a
/// thread against 57–66 ms with one.
pub(crate) fn quads_per_thread(rows: u32, pieces: u32, threads: u32) -> u32 {
    let mut quads = MAX_QUADS.min(rows.div_ceil(4).next_power_of_two());
    while quads > 1 && rows.div_ceil(4 * quads).saturating_mul(pieces).div_ceil(threads) < QUADS_MIN_WORKGROUPS {
        quads /= 2;
    }
    quads
}

/// Rows of L longer than this take the two-pass chain `absmax` → `quantize_transpose` ([`QuantizeTransposeFused::preferred`]).
pub const FUSED_T_MAX_COLS: usize = 2048;

/// The fused transposing quantizer for one format.
pub struct QuantizeTransposeFused {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    block: wgpu::ComputePipeline,
    /// On the per-thread path, `main_thread_v4` and `main_block_thread_v4`: four rows of L per
    /// thread, x read as vec4s.
    rows_v4: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    reduce_path: ReducePath,
    /// Bound where no sums are asked for.
    no_sums: GpuBuffer<f32>,
    /// Bound as the tensor maximum where the format needs none.
    no_tensor_amax: GpuBuffer<u32>,
    /// Bound as the mask where there is none.
    no_mask: GpuBuffer<f32>,
}

impl QuantizeTransposeFused {
    /// Builds the pipelines for `format`, reduced as suits the adapter
    /// ([`ReducePath::for_adapter`]).
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        Self::with_reduce_path(gpu, format, ReducePath::for_adapter(gpu))
    }

    /// Builds the pipelines for `format` with rows reduced by `path`: the workgroup trees of
    /// `main` / `main_block`, or a thread per row (`main_thread` / `main_block_thread`, and their
    /// `_8` twins with 8 rows per workgroup for L with fewer rows than 32 per core).
    pub fn with_reduce_path(gpu: &Gpu, format: Format, path: ReducePath) -> Result<Self> {
        let (row_entry, block_entry) = match path {
            ReducePath::Tree => ("main", "main_block"),
            ReducePath::PerThread => ("main_thread", "main_block_thread"),
        };
        let (bgl, pl) = layouts(
            gpu,
            "quantize_transpose_fused",
            &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write, Slot::Uniform, Slot::Write, Slot::Read, Slot::Read],
        );
        let c = format_constant(format);
        let rows_v4 = match path {
            ReducePath::Tree => None,
            ReducePath::PerThread => Some((
                pipeline(gpu, "quantize_transpose_fused", "main_thread_v4", &pl, &c)?,
                pipeline(gpu, "quantize_transpose_fused", "main_block_thread_v4", &pl, &c)?,
            )),
        };
        Ok(QuantizeTransposeFused {
            format,
            rows_v4,
            reduce_path: path,
            no_sums: GpuBuffer::zeros(gpu, "quantize_transpose_fused no sums", 1)?,
            no_tensor_amax: GpuBuffer::zeros(gpu, "quantize_transpose_fused no tensor amax", 1)?,
            no_mask: GpuBuffer::zeros(gpu, "quantize_transpose_fused no mask", 4)?,
            pipeline: pipeline(gpu, "quantize_transpose_fused", row_entry, &pl, &format_constant(format))?,
            block: pipeline(gpu, "quantize_transpose_fused", block_entry, &pl, &format_constant(format))?,
            bgl,
        })
    }

    /// Whether [`QuantizeTransposeFused::encode`] handles `l`: per-row scales, or blocks of whole
    /// words, of a format that needs no tensor-wide maximum (per-tensor scales take the two-pass
    /// chain; NVFP4 takes [`QuantizeTransposeFused::encode_with_tensor_amax`]).
    pub fn supports(l: &QuantLayout) -> bool {
        !l.format.needs_tensor_amax() && Self::supports_with_tensor_amax(l)
    }

    /// Whether [`QuantizeTransposeFused::encode_with_tensor_amax`] handles `l`: the groupings of
    /// [`QuantizeTransposeFused::supports`], NVFP4 included.
    pub fn supports_with_tensor_amax(l: &QuantLayout) -> bool {
        match l.granularity {
            Granularity::PerRow => true,
            Granularity::PerBlock(b) => b.is_multiple_of(l.per_word()),
            Granularity::PerTensor => false,
        }
    }

    /// Whether the one launch is the faster way for `l` on the reduce path `path` (the adapter's:
    /// [`ReducePath::for_adapter`]). On a GPU ([`ReducePath::Tree`]) it parallelizes over L's rows
    /// only (32 per workgroup, 8 lanes each walking a whole row twice), so rows longer than
    /// [`FUSED_T_MAX_COLS`] take the two-pass chain, whose reduction spreads a long row over
    /// many workgroups. (NVIDIA H200, MNIST CNN at batch 128: its eight transposed quantizations,
    /// the convolutions' dYᵀ and Xᵀ with rows of 128·28·28 or 128·14·14, took 20.5 ms a step in
    /// one launch each, where the whole fp32 step takes 2.1 ms; `resnet20`'s, rows of 6,272 and
    /// more, 7.8 ms of a 28 ms step with a bound of 8,192.) On a CPU adapter
    /// ([`ReducePath::PerThread`]) the one launch is taken at any length. When this rule was set
    /// it was the faster way by far (lavapipe, int8 per row with stochastic rounding: L of
    /// 9×100,352 8.3 ms in one launch, with the row sums, against 51.7 ms for the chain;
    /// 32×100,352 23.0 against 49.5; 288×25,088 31.2 against 47.1). Since the chain's second
    /// launch takes quads of rows (7ab82b7, 09c573d) the gap has closed. Re-measured at 09c573d
    /// without sums, three rounds: 9×100,352 3.5–5.3 ms against 7.3–9.0; 288×25,088 13.1–13.9
    /// against 13.7–14.4; but 16×100,352 3.5–3.6 against 3.0 and 32×100,352 7.6–7.9 against
    /// 6.0–6.3 for the chain. Those gaps are under 2 ms, and the chain takes one more launch and
    /// writes no row sums. NVFP4 (one more launch before it, for the tensor's maximum) is judged
    /// the same way.
    pub fn preferred(l: &QuantLayout, path: ReducePath) -> bool {
        Self::supports_with_tensor_amax(l) && (path == ReducePath::PerThread || l.cols as usize <= FUSED_T_MAX_COLS)
    }

    /// The reduce path the pipelines were built for.
    pub fn reduce_path(&self) -> ReducePath {
        self.reduce_path
    }

    /// Whether this kernel can also sum the rows of L for `l`: wherever it serves `l` without a
    /// tensor maximum (per row in the one read of each row; per block, the block-scaled formats'
    /// dYᵀ included, with one more read of each row first).
    pub fn supports_sums(l: &QuantLayout) -> bool {
        Self::supports(l)
    }

    /// Records `(codes, scales) ← quantize(xᵀ)`; `l` describes the transposed tensor.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_with_sums(gpu, enc, x, l, rounding, codes, scales, None)
    }

    /// [`QuantizeTransposeFused::encode`] for a format whose group scales depend on the tensor's
    /// maximum (NVFP4), read from `tensor_amax[0]` as f32 bits (what `absmax` writes for a
    /// per-tensor layout of x); other formats ignore it.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_with_tensor_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        tensor_amax: &GpuBuffer<u32>,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, rounding, codes, scales, None, Some(tensor_amax), None, 1, 0)
    }

    /// [`QuantizeTransposeFused::encode`], and with `sums` (one per row of L) also
    /// `sums[r] = Σ_c L[r][c]` in `col_sum`'s summation order, so equal bit for bit to
    /// `col_sum` of x `[cols, rows]`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_with_sums(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
        sums: Option<&GpuBuffer<f32>>,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, rounding, codes, scales, sums, None, None, 1, 0)
    }

    /// [`QuantizeTransposeFused::encode_with_sums`] of `x` with every value whose `mask` value is
    /// not above 0 taken as 0 (ReLU's backward: `x` = dY, `mask` = Y, both `[cols, rows]` as
    /// stored): the codes, scales and sums of what `relu_backward` writes, without its launch and
    /// its output. Not for NVFP4.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_with_sums_masked(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
        sums: Option<&GpuBuffer<f32>>,
    ) -> Result<()> {
        self.record(gpu, enc, x, l, rounding, codes, scales, sums, None, Some(mask), 1, 0)
    }

    /// SMP in one launch: `samples` independent stochastic quantizations of L = xᵀ, stacked in
    /// `codes` (`l.words()` per sample) and `scales` (`l.n_groups` per sample). Sample `j` draws
    /// with stream `stream + j` and is bit for bit [`QuantizeTransposeFused::encode`] with that
    /// stream alone; the maxima, and with `sums` the row sums (written once), are taken once.
    /// `mask` as for [`QuantizeTransposeFused::encode_with_sums_masked`], `tensor_amax` as for
    /// [`QuantizeTransposeFused::encode_with_tensor_amax`] (NVFP4). `rounding` must be stochastic.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_samples(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: Option<&GpuBuffer<f32>>,
        tensor_amax: Option<&GpuBuffer<u32>>,
        l: &QuantLayout,
        rounding: Rounding,
        samples: u32,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
        sums: Option<&GpuBuffer<f32>>,
    ) -> Result<()> {
        super::check_samples_rounding("quantize_transpose_fused", rounding)?;
        self.record(gpu, enc, x, l, rounding, codes, scales, sums, tensor_amax, mask, samples, 0)
    }

    /// Batched: `x` is a stack of `l.rows / batch_rows` matrices of `[l.cols, batch_rows]`, and L
    /// their transposes one under the other (`[l.rows, l.cols]`; attention's operands stored the
    /// other way, per batch and head): the codes and scales of transposing every matrix and
    /// quantizing the stack as one `[l.rows, l.cols]` tensor, in one launch. `tensor_amax` as for
    /// [`QuantizeTransposeFused::encode_with_tensor_amax`] (NVFP4: the maximum of all of x).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_batched(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        batch_rows: u32,
        rounding: Rounding,
        tensor_amax: Option<&GpuBuffer<u32>>,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        if batch_rows == 0 || !l.rows.is_multiple_of(batch_rows) {
            return Err(Error::Shape {
                op: "quantize_transpose_fused",
                detail: format!("{} rows of L are not whole matrices of {batch_rows} rows", l.rows),
            });
        }
        self.record(gpu, enc, x, l, rounding, codes, scales, None, tensor_amax, None, 1, batch_rows)
    }

    /// All of the above: checks what `l` asks for against what is given, then dispatches (the
    /// quantizer calls it with what it has; `samples > 1` only with stochastic rounding).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
        sums: Option<&GpuBuffer<f32>>,
        tensor_amax: Option<&GpuBuffer<u32>>,
        mask: Option<&GpuBuffer<f32>>,
        samples: u32,
        batch_rows: u32,
    ) -> Result<()> {
        if samples == 0 {
            return Err(Error::InvalidArgument("quantize_transpose_fused: samples must be at least 1".into()));
        }
        super::check_built_for("quantize_transpose_fused", self.format, l)?;
        let handled = if tensor_amax.is_some() { Self::supports_with_tensor_amax(l) } else { Self::supports(l) };
        if !handled {
            return Err(Error::InvalidArgument(format!(
                "quantize_transpose_fused: {} scales of {} need the two-pass chain{}",
                l.granularity,
                l.format,
                if tensor_amax.is_none() && l.format.needs_tensor_amax() {
                    " or the tensor's maximum (encode_with_tensor_amax)"
                } else {
                    ""
                }
            )));
        }
        if let Some(t) = tensor_amax {
            check_len("quantize_transpose_fused", "tensor_amax", t.len(), 1)?;
        }
        let tensor_amax = tensor_amax.unwrap_or(&self.no_tensor_amax);
        let per_block = matches!(l.granularity, Granularity::PerBlock(_));
        check_len("quantize_transpose_fused", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("quantize_transpose_fused", "codes", codes.len(), l.words() * samples as usize)?;
        check_len("quantize_transpose_fused", "scales", scales.len(), l.n_groups as usize * samples as usize)?;
        let mut p = QuantParams::row_tiles(l, rounding);
        p.samples = samples;
        p.batch_rows = batch_rows;
        if let Some(s) = sums {
            check_len("quantize_transpose_fused", "sums", s.len(), l.rows as usize)?;
            p.aux = [1, super::reduce_chunks(l.cols as usize).0 as u32];
        }
        if let Some(m) = mask {
            check_len("quantize_transpose_fused", "mask", m.len(), x.len())?;
            p.masked = 1;
        }
        // On the per-thread path 8 rows of L per workgroup, so that few rows (a convolution's
        // channels) spread over the CPU adapter's cores (lavapipe, 2 cores, int8 per row with
        // sums, same run: L of 32×100,352 15–19 ms against 21–37 with 32 rows per workgroup, of
        // 9×100,352 7–9 against 13); per row, with L's rows a multiple of 4 and at least
        // V4_MIN_ROWS, quads of four rows per thread reading x as vec4s (L of 4096×4096 119–137 ms
        // against 153–183 a row per thread; 784×128 0.58–0.64 against 0.62–0.67), per row or per
        // block, several quads a thread where L has rows enough (quads_per_thread).
        let (pipe, rows_per) = match (self.reduce_path, &self.rows_v4) {
            (ReducePath::PerThread, Some((row_v4, block_v4)))
                if l.rows.is_multiple_of(4) && l.rows >= V4_MIN_ROWS && batch_rows.is_multiple_of(4) =>
            {
                p.quads = quads_per_thread(l.rows, 1, 8);
                (if per_block { block_v4 } else { row_v4 }, 32 * p.quads)
            }
            (ReducePath::PerThread, _) => (if per_block { &self.block } else { &self.pipeline }, 8),
            (ReducePath::Tree, _) => (if per_block { &self.block } else { &self.pipeline }, ROWS_PER_WORKGROUP),
        };
        let params = uniform(gpu, "quantize_transpose_fused params", &p);
        let step = enc.step_state(gpu).clone();
        let sums = sums.unwrap_or(&self.no_sums);
        let mask = mask.unwrap_or(&self.no_mask);
        let buffers = [
            &params,
            x.buffer(),
            codes.buffer(),
            scales.buffer(),
            &step,
            sums.buffer(),
            tensor_amax.buffer(),
            mask.buffer(),
        ];
        dispatch(gpu, enc, "quantize_transpose_fused", pipe, &self.bgl, &buffers, l.rows.div_ceil(rows_per))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quads_per_thread_keeps_sixteen_workgroups() {
        // The shapes tests/quantize.rs runs the quads through, and training sizes that keep one.
        for (rows, quads) in [(128, 1), (784, 1), (1024, 2), (1028, 2), (2052, 4), (2056, 4), (4096, 8), (4100, 8)] {
            assert_eq!(quads_per_thread(rows, 1, 8), quads, "{rows} rows");
        }
        assert_eq!(quads_per_thread(1 << 20, 1, 8), MAX_QUADS);
        // quantize_transpose's main_rows4, whose quads take a thread per piece of 64 words: the
        // shapes tests/quantize.rs runs (L of 1028 × 300, 516 × 2100).
        for (rows, pieces, quads) in [(1028, 2, 4), (1028, 1, 2), (516, 9, 8), (516, 5, 4), (16, 392, 4)] {
            assert_eq!(quads_per_thread(rows, pieces, 8), quads, "{rows} rows in {pieces} pieces");
        }
        // The shader's arrays hold as many quads as the launchers give.
        let pack_t = crate::shaders::COMMON.iter().find(|(name, _)| *name == "pack_t").unwrap().1;
        assert!(pack_t.contains(&format!("const MAX_QUADS: u32 = {MAX_QUADS}u;")));
    }
}
