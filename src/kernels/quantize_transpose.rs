//! `quantize_transpose`: quantizes `L = xᵀ` from its groups' maxima, packing along the other
//! dimension, in one pass over x (what the backward GEMMs need: dW = dYᵀ·X wants dY and X packed
//! along the batch). With `absmax` before it, the two-pass transposed quantizer, for any
//! granularity (per tensor, and long rows on a GPU, where the one-pass kernel would leave most of
//! the GPU idle).
//!
//! Math: each group's `(scale, inverse scale)` by the format's rule ([`crate::reference::scale`]'s)
//! (so no launch between the passes); codes equal `quantize` of the explicitly transposed
//! tensor with those scales, bit for bit (same groups, scales and RNG indices, all of L); with
//! `samples > 1`, SMP's stacked stochastic samples (streams `stream, stream + 1, …`), each with
//! its copy of the scales. Layout: 256 consecutive rows of L (= columns of x) per workgroup at one
//! word, so reads of x are coalesced. Bindings: 0 `QuantParams`, 1 x (read f32, stored `[cols,
//! rows]` of L), 2 amax (read u32 bits, `n_groups`, then the tensor's maximum where the format's
//! scales need it), 3 codes (read-write u32), 4 step, 5 scales (read-write f32).
//! Reference: [`crate::reference::quantize_transpose::from_maxima`].

use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot, WG};
use crate::format::Format;
use crate::scheme::{QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The transposing quantizer for one format.
pub struct QuantizeTranspose {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl QuantizeTranspose {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let slots = [Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform, Slot::Write];
        let (bgl, pl) = layouts(gpu, "quantize_transpose", &slots);
        Ok(QuantizeTranspose {
            format,
            pipeline: pipeline(gpu, "quantize_transpose", "main", &pl, &format_constant(format))?,
            bgl,
        })
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
        p.tiles_per_row = l.rows.div_ceil(WG);
        p.total_tiles = p.tiles_per_row * l.words_per_row;
        p.samples = samples;
        let step = enc.step_state(gpu).clone();
        let params = uniform(gpu, "quantize_transpose params", &p);
        dispatch(
            gpu,
            enc,
            "quantize_transpose",
            &self.pipeline,
            &self.bgl,
            &[&params, x.buffer(), amax.buffer(), codes.buffer(), &step, scales.buffer()],
            p.total_tiles,
        )
    }
}
