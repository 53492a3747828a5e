//! `dequantize`: packed codes and group scales back to f32, `out = ftz(decode(code) · s)`.
//!
//! Layout: one thread per packed word. Bindings: 0 `QuantParams`, 1 codes (read u32), 2 scales
//! (read f32), 3 out (read-write f32). Reference: [`crate::reference::dequantize`].

use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The dequantize kernel for one format.
pub struct Dequantize {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Dequantize {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "dequantize", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        Ok(Dequantize { format, pipeline: pipeline(gpu, "dequantize", "main", &pl, &format_constant(format))?, bgl })
    }

    /// Records `out ← dequantize(codes, scales)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
        l: &QuantLayout,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        super::check_built_for("dequantize", self.format, l)?;
        check_len("dequantize", "codes", codes.len(), l.words())?;
        check_len("dequantize", "scales", scales.len(), l.n_groups as usize)?;
        check_len("dequantize", "out", out.len(), (l.rows * l.cols) as usize)?;
        let p = QuantParams::row_tiles(l, Rounding::Nearest);
        let params = uniform(gpu, "dequantize params", &p);
        dispatch(
            gpu,
            enc,
            "dequantize",
            &self.pipeline,
            &self.bgl,
            &[&params, codes.buffer(), scales.buffer(), out.buffer()],
            p.total_tiles,
        )
    }
}
