//! `quantize`: f32 → packed codes and scales from every group's maximum (the second launch of the
//! two-pass quantizer `absmax → quantize`, which serves every granularity).
//!
//! Math: each group's `(s, inv)` by the format's rule ([`crate::format::group_scale`], as
//! [`crate::reference::scale`] gives them; NVFP4's from the tensor's maximum in the slot after the
//! groups'), computed by the threads that use it, so no launch sits between the passes;
//! `code = Format::quantize(x, inv[group], rounding, rng::draw24(key, row·cols + col))`; with
//! `samples > 1`, SMP's stacked stochastic samples (streams `stream, stream + 1, …`), each with
//! its copy of the scales. Layout: one thread per packed word, 256 words of one row per
//! workgroup; on a CPU adapter ([`ReducePath::PerThread`]) a thread per run of `seg` words of a row
//! instead (within one group; entries `main_thread`, and `main_thread_v4` reading x as vec4s where
//! the codes per word and the row length are multiples of 4), the same bits. Bindings: 0
//! `QuantParams`, 1 x (read f32), 2 amax (read u32 bits), 3 codes (read-write u32, `samples · rows
//! · words_per_row`), 4 step, 5 scales (read-write f32, `samples · n_groups`).
//! Reference: [`crate::reference::quantize::from_maxima`].

use super::quantize_fused::ReducePath;
use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The quantize kernel for one format.
pub struct Quantize {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    /// `main` (a thread per word), or on the per-thread path `main_thread` (a run per thread).
    pipeline: wgpu::ComputePipeline,
    per_thread: bool,
    /// On the per-thread path, for formats packing a multiple of 4 codes per word:
    /// `main_thread_v4`.
    v4: Option<wgpu::ComputePipeline>,
}

impl Quantize {
    /// Builds the pipelines for `format`, laid out as suits the adapter ([`ReducePath::for_adapter`]).
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        Self::with_reduce_path(gpu, format, ReducePath::for_adapter(gpu))
    }

    /// Builds the pipelines for `format` with `path`'s layout: a thread per word (`Tree`: the GPU
    /// layout, though this kernel reduces nothing) or per run of words (`PerThread`).
    pub fn with_reduce_path(gpu: &Gpu, format: Format, path: ReducePath) -> Result<Self> {
        let slots = [Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform, Slot::Write];
        let (bgl, pl) = layouts(gpu, "quantize", &slots);
        let c = format_constant(format);
        let per_thread = path == ReducePath::PerThread;
        let v4 = match per_thread && format.per_word().is_multiple_of(4) {
            true => Some(pipeline(gpu, "quantize", "main_thread_v4", &pl, &c)?),
            false => None,
        };
        let entry = if per_thread { "main_thread" } else { "main" };
        Ok(Quantize { format, pipeline: pipeline(gpu, "quantize", entry, &pl, &c)?, per_thread, v4, bgl })
    }

    /// Records `(codes, scales) ← quantize(x)` from the group maxima `amax` (absmax's output for
    /// `l`), `samples` stacked samples (1 for one; more only with stochastic rounding).
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
        super::check_built_for("quantize", self.format, l)?;
        super::check_samples("quantize", rounding, samples)?;
        let n = samples as usize;
        check_len("quantize", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("quantize", "amax", amax.len(), l.amax_len())?;
        check_len("quantize", "codes", codes.len(), n * l.words())?;
        check_len("quantize", "scales", scales.len(), n * l.n_groups as usize)?;
        let mut p = QuantParams::row_tiles(l, rounding);
        p.samples = samples;
        let step = enc.step_state(gpu).clone();
        let params = uniform(gpu, "quantize params", &p);
        let (k, groups) = if self.per_thread {
            let runs = l.rows as usize * l.words_per_row.div_ceil(p.seg) as usize;
            let v4 = self.v4.as_ref().filter(|_| l.cols.is_multiple_of(4));
            (v4.unwrap_or(&self.pipeline), runs.div_ceil(super::WG as usize) as u32)
        } else {
            (&self.pipeline, p.total_tiles)
        };
        dispatch(
            gpu,
            enc,
            "quantize",
            k,
            &self.bgl,
            &[&params, x.buffer(), amax.buffer(), codes.buffer(), &step, scales.buffer()],
            groups,
        )
    }
}
