//! `quantize_transpose`: quantizes `L = xᵀ` from its groups' maxima, packing along the other
//! dimension, in one pass over x (what the backward GEMMs need: dW = dYᵀ·X wants dY and X packed
//! along the batch). With `absmax` before it, the two-pass transposed quantizer, for any
//! granularity (per tensor, and long rows on a GPU, where the one-pass kernel would leave most of
//! the GPU idle).
//!
//! Math: each group's `(scale, inverse scale)` by the format's rule ([`crate::reference::scale`]'s)
//! (so no launch between the passes); codes equal `quantize` of the explicitly transposed tensor
//! with those scales, bit for bit (same groups, scales and RNG indices, all of L); with `samples >
//! 1`, SMP's stacked stochastic samples (streams `stream, stream + 1, …`), each with its copy of
//! the scales. Layout: up to 256 consecutive rows of L (= columns of x) per workgroup (L's rows
//! rounded up to a power of two, [`super::row_team`]) at 256 / that many consecutive words, so
//! reads of x are coalesced and short tiles still fill a workgroup; on a CPU adapter, for per-row
//! and per-tensor scales and L's rows in fours ([`QuantizeTranspose::takes_rows4`]), a thread per
//! quad of L's rows (four adjacent rows) and 64 words of them, reading x as vec4s (entry
//! `main_rows4`; the same bits), up to eight quads a thread where L has rows enough
//! (`quads_per_thread`, as `quantize_transpose_fused`'s per-thread entries take them: runs of 64
//! columns of each quad in turn). Bindings: 0 `QuantParams`, 1 x (read f32, stored `[cols, rows]`
//! of L), 2 amax (read u32 bits, `n_groups`, then the tensor's maximum where the format's scales
//! need it), 3 codes (read-write u32), 4 step, 5 scales (read-write f32). Reference:
//! [`crate::reference::quantize_transpose::from_maxima`].

use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The transposing quantizer for one format.
pub struct QuantizeTranspose {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_rows4`, on a CPU adapter.
    rows4: Option<wgpu::ComputePipeline>,
}

/// Words of L's rows a thread of entry `main_rows4` packs (the shader's `PIECE_WORDS`).
const PIECE_WORDS: u32 = 64;
/// Threads per workgroup of entry `main_rows4` (as `quantize_transpose_fused`'s per-thread
/// entries, so that its quads of rows keep as many workgroups).
const ROWS4_WG: u32 = 8;

impl QuantizeTranspose {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let slots = [Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform, Slot::Write];
        let (bgl, pl) = layouts(gpu, "quantize_transpose", &slots);
        let rows4 = match gpu.cpu_layouts() {
            true => Some(pipeline(gpu, "quantize_transpose", "main_rows4", &pl, &format_constant(format))?),
            false => None,
        };
        Ok(QuantizeTranspose {
            format,
            pipeline: pipeline(gpu, "quantize_transpose", "main", &pl, &format_constant(format))?,
            rows4,
            bgl,
        })
    }

    /// Whether [`QuantizeTranspose::encode`] runs entry `main_rows4` for L's layout `l`: on a CPU
    /// adapter (where the kernel built it), for per-row and per-tensor scales (a piece of a row
    /// shares one scale) and L's rows a multiple of 4.
    pub fn takes_rows4(&self, l: &QuantLayout) -> bool {
        self.rows4.is_some()
            && matches!(l.granularity, Granularity::PerRow | Granularity::PerTensor)
            && l.rows.is_multiple_of(4)
    }

    /// Records `(codes, scales) ← quantize(xᵀ)` from the group maxima `amax` (absmax's output
    /// for `l`, the transposed tensor's layout), `samples` stacked samples (1 for one; more only
    /// with stochastic rounding).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        amax: &GpuBuffer<u32>,
        l: &QuantLayout,
        rounding: Rounding,
        samples: u32,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        super::check_built_for("quantize_transpose", self.format, l)?;
        super::check_samples("quantize_transpose", rounding, samples)?;
        let n = samples as usize;
        check_len("quantize_transpose", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("quantize_transpose", "amax", amax.len(), l.amax_len())?;
        check_len("quantize_transpose", "codes", codes.len(), n * l.words())?;
        check_len("quantize_transpose", "scales", scales.len(), n * l.n_groups as usize)?;
        let mut p = QuantParams::row_tiles(l, rounding);
        p.samples = samples;
        let (pipeline, workgroups) = match &self.rows4 {
            Some(rows4) if self.takes_rows4(l) => {
                // Threads: L's groups of quads of rows times the pieces of a row.
                let pieces = l.words_per_row.div_ceil(PIECE_WORDS);
                p.quads = super::quantize_transpose_fused::quads_per_thread(l.rows, pieces, ROWS4_WG);
                p.total_tiles = (l.rows / 4)
                    .div_ceil(p.quads)
                    .checked_mul(pieces)
                    .ok_or_else(|| Error::InvalidArgument(format!("quantize_transpose: {l:?} is too large")))?;
                (rows4, p.total_tiles.div_ceil(ROWS4_WG))
            }
            _ => {
                // Tiles of `seg` rows of L (its rows rounded up to a power of two, at most WG)
                // times WG / seg words (at one word a tile, a convolution's dYᵀ of 16 to 64 rows
                // left 75–94% of every workgroup idle).
                p = p
                    .with_row_tiles(super::row_team(l.rows), l.words_per_row)
                    .ok_or_else(|| Error::InvalidArgument(format!("quantize_transpose: {l:?} is too large")))?;
                (&self.pipeline, p.total_tiles)
            }
        };
        let step = enc.step_state(gpu).clone();
        let params = uniform(gpu, "quantize_transpose params", &p);
        dispatch(
            gpu,
            enc,
            "quantize_transpose",
            pipeline,
            &self.bgl,
            &[&params, x.buffer(), amax.buffer(), codes.buffer(), &step, scales.buffer()],
            workgroups,
        )
    }
}
