//! `im2col_quantize_transpose`: the transposing one-pass quantizer of a convolution's unfolded
//! input, read from the input itself. The weight gradient of a quantized convolution multiplies by
//! `L = colsᵀ` (`[kh·kw·c, batch·oh·ow]`, cols what [`super::im2col`] writes) packed along the
//! batch's pixels; [`super::quantize_transpose_fused`] packs it from cols, reading that
//! `kh·kw`-fold copy of the input twice, column by column. This kernel forms each value of L from
//! the input where it lies (or the padding's 0), so cols is neither read nor, where nothing else
//! needs it, written: the codes and scales are `quantize_transpose_fused`'s of cols, bit for bit.
//! Per-row or per-block scales of formats without a tensor-wide scale (not NVFP4), SMP's stacked
//! samples. Layout: the per-thread one of a CPU adapter (one thread per row of L, or per four rows
//! of one tap's channels with vec4 loads, 8 threads per workgroup), which
//! [`crate::quant::Quantizer::unfolds_transposed`] takes it for. Bindings: 0 `QuantParams` (of L),
//! 1 x (read f32, NHWC), 2 codes, 3 scales, 4 step state, 5 conv params. Reference:
//! [`crate::reference::im2col_quantize_transpose`].

use super::im2col::{ConvGeom, ConvParams};
use super::quantize_transpose_fused::{QuantizeTransposeFused, V4_MIN_ROWS};
use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot};
use crate::format::Format;
use crate::scheme::{QuantLayout, Rounding};
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
}

impl Im2colQuantizeTranspose {
    /// Builds the pipelines for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let (bgl, pl) = layouts(
            gpu,
            "im2col_quantize_transpose",
            &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write, Slot::Uniform, Slot::Uniform],
        );
        let c = format_constant(format);
        Ok(Im2colQuantizeTranspose {
            format,
            pipeline: pipeline(gpu, "im2col_quantize_transpose", "main", &pl, &c)?,
            v4: pipeline(gpu, "im2col_quantize_transpose", "main_v4", &pl, &c)?,
            bgl,
        })
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
        let params = uniform(gpu, "im2col_quantize_transpose params", &p);
        let conv = uniform(gpu, "im2col_quantize_transpose conv", &ConvParams::new(g, g.rows() * g.kdim()));
        let step = enc.step_state(gpu).clone();
        let buffers = [&params, x.buffer(), codes.buffer(), scales.buffer(), &step, &conv];
        // Four rows per thread where they are one tap's channels and enough threads remain to
        // spread over the cores (as quantize_transpose_fused's per-thread entries).
        let (pipe, rows_per) =
            if g.c.is_multiple_of(4) && l.rows >= V4_MIN_ROWS { (&self.v4, 32) } else { (&self.pipeline, 8) };
        dispatch(gpu, enc, OP, pipe, &self.bgl, &buffers, l.rows.div_ceil(rows_per))
    }
}
