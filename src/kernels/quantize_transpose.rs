//! `quantize_transpose`: quantizes `L = xᵀ`, packing along the other dimension, in one pass over
//! x (what the backward GEMMs need: dW = dYᵀ·X wants dY and X packed along the batch).
//!
//! Math: the result equals `quantize` of the explicitly transposed tensor, bit for bit (same
//! groups, scales and RNG indices, all of L). Layout: 256 consecutive rows of L (= columns of x)
//! per workgroup at one word, so reads of x are coalesced. Bindings: 0 `QuantParams`, 1 x (read
//! f32, stored `[cols, rows]` of L), 2 inv (read f32), 3 codes (read-write u32).
//! Reference: [`crate::reference::quantize_transpose`].

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
        let (bgl, pl) =
            layouts(gpu, "quantize_transpose", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write, Slot::Uniform]);
        Ok(QuantizeTranspose {
            format,
            pipeline: pipeline(gpu, "quantize_transpose", "main", &pl, &format_constant(format))?,
            bgl,
        })
    }

    /// Records `codes ← quantize(xᵀ, inv)`; `l` describes the transposed tensor.
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
        super::check_built_for("quantize_transpose", self.format, l)?;
        check_len("quantize_transpose", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("quantize_transpose", "inv", inv.len(), l.n_groups as usize)?;
        check_len("quantize_transpose", "codes", codes.len(), l.words())?;
        let mut p = QuantParams::row_tiles(l, rounding);
        p.tiles_per_row = l.rows.div_ceil(WG);
        p.total_tiles = p.tiles_per_row * l.words_per_row;
        let step = enc.step_state(gpu).clone();
        let params = uniform(gpu, "quantize_transpose params", &p);
        dispatch(
            gpu,
            enc,
            "quantize_transpose",
            &self.pipeline,
            &self.bgl,
            &[&params, x.buffer(), inv.buffer(), codes.buffer(), &step],
            p.total_tiles,
        )
    }
}
