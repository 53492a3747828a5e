//! `quantize`: f32 → packed codes, given every group's inverse scale (the last pass of the
//! two-pass quantizer `absmax → scale → quantize`, which serves every granularity).
//!
//! Math: `code = Format::quantize(x, inv[group], rounding, rng::draw24(key, row·cols + col))`;
//! see `format` for the rule. Layout: one thread per packed word, 256 words of one row per
//! workgroup; on a CPU adapter ([`ReducePath::PerThread`]) a thread per run of `seg` words of a row
//! instead (one group of a block-scaled layout; entries `main_thread`, and `main_thread_v4`
//! reading x as vec4s where the codes per word and the row length are multiples of 4), the same
//! bits. Bindings: 0 `QuantParams`, 1 x (read f32), 2 inv (read f32), 3 codes (read-write
//! u32, `rows · words_per_row`). Reference: [`crate::reference::quantize`].

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
        let (bgl, pl) = layouts(gpu, "quantize", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform]);
        let c = format_constant(format);
        let per_thread = path == ReducePath::PerThread;
        let v4 = match per_thread && format.per_word().is_multiple_of(4) {
            true => Some(pipeline(gpu, "quantize", "main_thread_v4", &pl, &c)?),
            false => None,
        };
        let entry = if per_thread { "main_thread" } else { "main" };
        Ok(Quantize { format, pipeline: pipeline(gpu, "quantize", entry, &pl, &c)?, per_thread, v4, bgl })
    }

    /// Records `codes ← quantize(x, inv)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        inv: &GpuBuffer<f32>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
    ) -> Result<()> {
        super::check_built_for("quantize", self.format, l)?;
        check_len("quantize", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("quantize", "inv", inv.len(), l.n_groups as usize)?;
        check_len("quantize", "codes", codes.len(), l.words())?;
        let p = QuantParams::row_tiles(l, rounding);
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
            &[&params, x.buffer(), inv.buffer(), codes.buffer(), &step],
            groups,
        )
    }
}
