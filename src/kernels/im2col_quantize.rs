//! `im2col_quantize`: a convolution's unfold ([`super::im2col`]) and the one-pass per-row
//! quantizer of the unfolded rows ([`super::quantize_fused`]) in one launch, a thread per row of
//! cols: the row is unfolded, its maximum taken as each value is stored, and packed from what was
//! just written (still in the cache) — where the two launches write cols and then read it twice
//! from memory. It writes cols as well where asked (the weight gradient's operand quantized from
//! it), and the codes and scales `quantize_fused` gives for cols, bit for bit; without cols
//! (entries `main_codes`, `main_codes_v4`) it unfolds each row twice from x instead, once for its
//! maximum and once packing. Per-row scales of formats
//! without a tensor-wide scale (not NVFP4); the quantized convolution takes it on CPU adapters,
//! where a thread per row is how both kernels it fuses already run
//! ([`crate::quant::Quantizer::unfolds_in_one_pass`]). Bindings: 0 `QuantParams`, 1 cols
//! (read-write f32), 2 codes, 3 scales, 4 step state, 5 mask (unused), 6 conv params, 7 x (read
//! f32). Reference: [`crate::reference::im2col_quantize`].

use super::im2col::{ConvGeom, ConvParams};
use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot, WG};
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The fused unfold and quantizer for one format.
pub struct Im2colQuantize {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4`, for formats with codes per word in fours (taken where channels are a
    /// multiple of 4).
    v4: Option<wgpu::ComputePipeline>,
    /// Entries `main_codes` and `main_codes_v4` (channels a multiple of 4): cols not written.
    codes: (wgpu::ComputePipeline, wgpu::ComputePipeline),
    /// Bound as the (unused) mask.
    no_mask: GpuBuffer<f32>,
    /// Bound as cols where none is written.
    no_cols: GpuBuffer<f32>,
}

impl Im2colQuantize {
    /// Builds the pipeline for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let (bgl, pl) = layouts(
            gpu,
            "im2col_quantize",
            &[
                Slot::Uniform,
                Slot::Write,
                Slot::Write,
                Slot::Write,
                Slot::Uniform,
                Slot::Read,
                Slot::Uniform,
                Slot::Read,
            ],
        );
        Ok(Im2colQuantize {
            format,
            pipeline: pipeline(gpu, "im2col_quantize", "main", &pl, &format_constant(format))?,
            v4: if format.per_word().is_multiple_of(4) {
                Some(pipeline(gpu, "im2col_quantize", "main_v4", &pl, &format_constant(format))?)
            } else {
                None
            },
            codes: (
                pipeline(gpu, "im2col_quantize", "main_codes", &pl, &format_constant(format))?,
                pipeline(gpu, "im2col_quantize", "main_codes_v4", &pl, &format_constant(format))?,
            ),
            no_mask: GpuBuffer::zeros(gpu, "im2col_quantize no mask", 4)?,
            no_cols: GpuBuffer::zeros(gpu, "im2col_quantize no cols", 4)?,
            bgl,
        })
    }

    /// Whether [`Im2colQuantize::encode`] handles `l`: per-row scales, not NVFP4.
    pub fn supports(l: &QuantLayout) -> bool {
        l.granularity == Granularity::PerRow && !l.format.needs_tensor_amax()
    }

    /// Records `cols ← im2col(x)` (where `cols` is given) and `(codes, scales) ←
    /// quantize(im2col(x))` under `l` (the `[rows, kh·kw·c]` layout of cols).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        cols: Option<&GpuBuffer<f32>>,
        l: &QuantLayout,
        rounding: Rounding,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
    ) -> Result<()> {
        g.check()?;
        super::check_built_for("im2col_quantize", self.format, l)?;
        if !Self::supports(l) {
            return Err(Error::InvalidArgument(format!(
                "im2col_quantize: {} scales of {} need im2col and the quantizer apart",
                l.granularity, l.format
            )));
        }
        if (l.rows as usize, l.cols as usize) != (g.rows(), g.kdim()) {
            return Err(Error::Shape {
                op: "im2col_quantize",
                detail: format!("layout [{}, {}] for cols of [{}, {}] ({g:?})", l.rows, l.cols, g.rows(), g.kdim()),
            });
        }
        check_len("im2col_quantize", "x", x.len(), g.input_len())?;
        if let Some(cols) = cols {
            check_len("im2col_quantize", "cols", cols.len(), g.rows() * g.kdim())?;
        }
        check_len("im2col_quantize", "codes", codes.len(), l.words())?;
        check_len("im2col_quantize", "scales", scales.len(), l.n_groups as usize)?;
        let params = uniform(gpu, "im2col_quantize params", &QuantParams::row_tiles(l, rounding));
        let conv = uniform(gpu, "im2col_quantize conv", &ConvParams::new(g, g.rows() * g.kdim()));
        let step = enc.step_state(gpu).clone();
        let v4 = g.c.is_multiple_of(4);
        let (pipe, cols) = match cols {
            Some(cols) => (self.v4.as_ref().filter(|_| v4).unwrap_or(&self.pipeline), cols),
            None => (if v4 { &self.codes.1 } else { &self.codes.0 }, &self.no_cols),
        };
        let buffers =
            [&params, cols.buffer(), codes.buffer(), scales.buffer(), &step, self.no_mask.buffer(), &conv, x.buffer()];
        dispatch(gpu, enc, "im2col_quantize", pipe, &self.bgl, &buffers, l.rows.div_ceil(WG))
    }
}
