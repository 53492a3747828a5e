//! `quantize`: f32 → packed codes, given every group's inverse scale (the last pass of the
//! two-pass quantizer `absmax → scale → quantize`, which serves every granularity).
//!
//! Math: `code = Format::quantize(x, inv[group], rounding, rng::draw24(key, row·cols + col))`;
//! see `format` for the rule. Layout: one thread per packed word, 256 words of one row per
//! workgroup. Bindings: 0 `QuantParams`, 1 x (read f32), 2 inv (read f32), 3 codes (read-write
//! u32, `rows · words_per_row`). Reference: [`crate::reference::quantize`].

use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The quantize kernel for one format.
pub struct Quantize {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Quantize {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "quantize", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform]);
        Ok(Quantize { format, pipeline: pipeline(gpu, "quantize", "main", &pl, &format_constant(format))?, bgl })
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
        if l.format != self.format {
            return Err(Error::InvalidArgument(format!(
                "quantize: kernel built for {}, layout is {}",
                self.format, l.format
            )));
        }
        check_len("quantize", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("quantize", "inv", inv.len(), l.n_groups as usize)?;
        check_len("quantize", "codes", codes.len(), l.words())?;
        let p = QuantParams::row_tiles(l, rounding);
        let step = enc.step_state(gpu).clone();
        let params = uniform(gpu, "quantize params", &p);
        dispatch(
            gpu,
            enc,
            "quantize",
            &self.pipeline,
            &self.bgl,
            &[&params, x.buffer(), inv.buffer(), codes.buffer(), &step],
            p.total_tiles,
        )
    }
}
