//! The quantizer API: quantize, quantize-transposed and dequantize tensors under a
//! [`QuantScheme`], choosing the one-pass or two-pass kernels, recording into the caller's encoder.

use crate::format::Format;
use crate::kernels::hadamard_quantize_transpose::{HadamardQuantizeTranspose, RotatedExtras, Unrotated};
use crate::kernels::im2col::ConvGeom;
use crate::kernels::im2col_quantize::Im2colQuantize;
use crate::kernels::im2col_quantize_transpose::Im2colQuantizeTranspose;
use crate::kernels::quantize_both::{BothExtras, QuantizeBoth, Side};
use crate::kernels::{
    absmax::Absmax, built, dequantize::Dequantize, quantize::Quantize, quantize_fused::QuantizeFused,
    quantize_transpose::QuantizeTranspose, quantize_transpose_fused::QuantizeTransposeFused,
};
use crate::scheme::{Granularity, QuantLayout, QuantScheme, Rounding};
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::{Error, Gpu, Record, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A quantized tensor: packed codes `[rows, words_per_row]`, one scale per group, and the layout
/// that says where everything is.
pub struct QuantizedTensor {
    /// Packed codes.
    pub codes: GpuBuffer<u32>,
    /// Group scales (`layout.n_groups`).
    pub scales: GpuBuffer<f32>,
    /// The layout (format, granularity, logical `[rows, cols]`).
    pub layout: QuantLayout,
    /// Independent stochastic samples stacked in `codes` and `scales` (1 unless made by
    /// [`Quantizer::quantize_samples`] for SMP).
    pub samples: u32,
}

impl QuantizedTensor {
    /// Bytes held on the GPU (codes + scales).
    pub fn bytes(&self) -> u64 {
        self.codes.bytes() + self.scales.bytes()
    }
}

struct FormatKernels {
    quantize: Quantize,
    fused: QuantizeFused,
    transpose: QuantizeTranspose,
    transpose_fused: QuantizeTransposeFused,
    /// Built on first use: training dequantizes only in a distributed step's error feedback and
    /// the rounded fp32 operands.
    dequantize: OnceLock<Dequantize>,
    /// Built on first use: only a convolution's input on a CPU adapter takes it.
    unfold: OnceLock<Im2colQuantize>,
    /// Built on first use, as `unfold`: the convolution's transposed input.
    unfold_t: OnceLock<Im2colQuantizeTranspose>,
    /// Built on first use: the block-scaled presets' rotated weight-gradient operands.
    rotated_t: OnceLock<HadamardQuantizeTranspose>,
    /// Built on first use: both orientations of a small tensor in one launch.
    both: OnceLock<QuantizeBoth>,
}

/// `q` as one side of a [`QuantizeBoth`] launch, rounded by `rounding`.
fn side(q: &QuantizedTensor, rounding: Rounding) -> Side<'_> {
    Side { layout: &q.layout, rounding, codes: &q.codes, scales: &q.scales }
}

/// All quantizer kernels; per-format pipelines are built on first use and cached.
pub struct Quantizer {
    absmax: Absmax,
    per_format: Mutex<HashMap<Format, Arc<FormatKernels>>>,
}

/// Rows from which a per-row tensor uses the one-workgroup-per-row fused kernel; fewer rows would
/// leave most of the GPU idle, so the two-pass kernels spread them instead.
pub const FUSED_MIN_ROWS: u32 = 64;
/// Elements up to which a per-row tensor takes the fused kernel whatever its rows: so little work
/// is one launch's either way, and the two-pass chain costs three (a classifier's `[10, k]`
/// weight).
pub const FUSED_ANY_ROWS_BELOW: usize = 1 << 16;

impl Quantizer {
    /// Builds the format-independent kernels.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Quantizer { absmax: Absmax::new(gpu)?, per_format: Mutex::new(HashMap::new()) })
    }

    fn kernels(&self, gpu: &Gpu, f: Format) -> Result<Arc<FormatKernels>> {
        let mut map = self.per_format.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = map.get(&f) {
            return Ok(k.clone());
        }
        let k = Arc::new(FormatKernels {
            quantize: Quantize::new(gpu, f)?,
            fused: QuantizeFused::new(gpu, f)?,
            transpose: QuantizeTranspose::new(gpu, f)?,
            transpose_fused: QuantizeTransposeFused::new(gpu, f)?,
            dequantize: OnceLock::new(),
            unfold: OnceLock::new(),
            unfold_t: OnceLock::new(),
            rotated_t: OnceLock::new(),
            both: OnceLock::new(),
        });
        map.insert(f, k.clone());
        Ok(k)
    }

    fn alloc(gpu: &Gpu, enc: &mut impl Record, l: QuantLayout) -> Result<QuantizedTensor> {
        Self::alloc_samples(gpu, enc, l, 1)
    }

    /// Codes and scales for `k` stacked samples of `l`.
    fn alloc_samples(gpu: &Gpu, enc: &mut impl Record, l: QuantLayout, k: u32) -> Result<QuantizedTensor> {
        gpu.check_binding("quantized codes", l.words() as u64 * 4 * k as u64)?;
        Ok(QuantizedTensor {
            codes: enc.scratch(gpu, "lowbit codes", l.words() * k as usize)?,
            scales: enc.scratch(gpu, "lowbit scales", l.n_groups as usize * k as usize)?,
            layout: l,
            samples: k,
        })
    }

    /// Records the quantization of `x` (viewed as `[rows, cols]`, packed along `cols`). Uses the
    /// one-pass kernel for per-block scales and for per-row scales of at least
    /// [`FUSED_MIN_ROWS`] rows or at most [`FUSED_ANY_ROWS_BELOW`] elements; the two-pass
    /// kernels otherwise.
    pub fn quantize(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        if Self::takes_one_pass(&l) {
            self.quantize_one_pass(gpu, enc, x, scheme)
        } else {
            self.quantize_two_pass(gpu, enc, x, scheme)
        }
    }

    /// Whether [`Quantizer::quantize`] takes the one-pass kernel for `l`.
    pub fn takes_one_pass(l: &QuantLayout) -> bool {
        QuantizeFused::supports_with_tensor_amax(l)
            && (matches!(l.granularity, Granularity::PerBlock(_))
                || l.rows >= FUSED_MIN_ROWS
                || (l.rows as usize) * (l.cols as usize) <= FUSED_ANY_ROWS_BELOW)
    }

    /// Whether [`Quantizer::quantize_masked`] handles `l`: where [`Quantizer::quantize`] takes
    /// the one-pass kernel (NVFP4's tensor maximum reduced from the masked values first).
    pub fn masks_in_one_pass(l: &QuantLayout) -> bool {
        Self::takes_one_pass(l)
    }

    /// Records the quantization of `x` with every value whose `mask` value is not above 0 taken
    /// as 0 — ReLU's backward (`x` = dY, `mask` = Y, the same length): the bits
    /// [`Quantizer::quantize`] gives for what `relu_backward` writes, in one launch, without that
    /// kernel's launch and output. Where [`Quantizer::masks_in_one_pass`] holds for `x`'s layout;
    /// an error elsewhere.
    pub fn quantize_masked(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        mask: &GpuBuffer<f32>,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        self.masked("quantize_masked", gpu, enc, x, mask, scheme, 1, None)
    }

    /// [`Quantizer::quantize_samples`] of `x` masked as [`Quantizer::quantize_masked`] masks it:
    /// `k` stacked samples in one launch, each the bits of quantizing `relu_backward`'s output with
    /// its stream. Where [`Quantizer::masks_in_one_pass`] holds; an error elsewhere.
    pub fn quantize_samples_masked(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        mask: &GpuBuffer<f32>,
        scheme: QuantScheme,
        k: u32,
    ) -> Result<QuantizedTensor> {
        Self::check_samples("quantize_samples_masked", scheme, k)?;
        self.masked("quantize_samples_masked", gpu, enc, x, mask, scheme, k, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn masked(
        &self,
        op: &str,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        mask: &GpuBuffer<f32>,
        scheme: QuantScheme,
        k: u32,
        given: Option<&GpuBuffer<u32>>,
    ) -> Result<QuantizedTensor> {
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        if !Self::masks_in_one_pass(&l) {
            return Err(Error::InvalidArgument(format!(
                "{op}: {} scales of {} over {}x{} take the two-pass quantizer; apply the mask first",
                l.granularity, l.format, l.rows, l.cols
            )));
        }
        self.one_pass(gpu, enc, x, scheme, given, Some(mask), k)
    }

    /// [`Quantizer::quantize_masked`] for a format with a tensor-wide scale (NVFP4), given the
    /// maximum of the masked values (as [`crate::kernels::hadamard::RotateExtras::input_amax`]
    /// writes it while rotating the same masked tensor): one launch. An error for a format without
    /// that scale or a layout [`Quantizer::masks_in_one_pass`] refuses.
    pub fn quantize_masked_with_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        mask: &GpuBuffer<f32>,
        scheme: QuantScheme,
        amax: &GpuBuffer<u32>,
    ) -> Result<QuantizedTensor> {
        Self::check_given_amax("quantize_masked_with_amax", scheme, amax)?;
        self.masked("quantize_masked_with_amax", gpu, enc, x, mask, scheme, 1, Some(amax))
    }

    /// What SMP's entry points accept: stochastic rounding, at least one sample.
    fn check_samples(op: &str, scheme: QuantScheme, k: u32) -> Result<()> {
        let Rounding::Stochastic { .. } = scheme.rounding else {
            return Err(Error::InvalidArgument(format!(
                "{op}: SMP needs stochastic rounding (nearest gives k identical samples)"
            )));
        };
        if k == 0 {
            return Err(Error::InvalidArgument(format!("{op}: k must be at least 1")));
        }
        Ok(())
    }

    /// Records the one-pass quantizer (per-row, or per-block of at most 256 words). NVFP4, whose
    /// block scales depend on the tensor's maximum, takes two launches: `absmax` over the whole
    /// tensor, then the one-pass kernel reading it (as many as the chain `absmax → quantize`;
    /// same bits).
    pub fn quantize_one_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        self.one_pass(gpu, enc, x, scheme, None, None, 1)
    }

    /// Whether a quantized convolution unfolds its input and quantizes the rows in one launch
    /// ([`Quantizer::unfold_quantize`]) for `l`, the `[rows, kh·kw·c]` layout of the unfolded
    /// matrix: for per-row scales of a format without a tensor-wide scale, on every adapter (a
    /// thread per row on CPU layouts, as both launches it replaces run there; a team of threads
    /// per row on a GPU's, [`Im2colQuantize::uses_teams`]).
    pub fn unfolds_in_one_pass(_gpu: &Gpu, l: &QuantLayout) -> bool {
        Im2colQuantize::supports(l)
    }

    /// Whether a weight of layout `l` and its transpose of layout `lt` are quantized in one launch
    /// ([`Quantizer::quantize_both`], or NVFP4's [`Quantizer::quantize_reducing_amax_both`], whose
    /// one launch comes after an `absmax` launch where the weight does not fit one workgroup),
    /// rounding to nearest; elsewhere those make the two separately.
    pub fn quantizes_both_in_one_pass(gpu: &Gpu, l: &QuantLayout, lt: &QuantLayout) -> bool {
        match l.format.needs_tensor_amax() {
            true => {
                matches!((l.granularity, lt.granularity), (Granularity::PerBlock(_), Granularity::PerBlock(_)))
                    && QuantizeFused::supports_with_tensor_amax(l)
            }
            false => QuantizeBoth::fits(gpu, l, lt),
        }
    }

    /// Records `cols ← im2col(x)` (the convolution `g`; where `cols` is given, else cols is not
    /// written) and returns cols' quantization under `scheme`, in one launch ([`Im2colQuantize`]):
    /// the bits of im2col then [`Quantizer::quantize`]. Per-row scales of a format without a
    /// tensor-wide scale; an error elsewhere.
    pub fn unfold_quantize(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        cols: Option<&GpuBuffer<f32>>,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        g.check()?;
        let l = QuantLayout::new(g.rows(), g.kdim(), scheme.format, scheme.granularity)?;
        if !Im2colQuantize::supports(&l) {
            return Err(Error::InvalidArgument(format!(
                "unfold_quantize: {} scales of {} need im2col and the quantizer apart",
                l.granularity, l.format
            )));
        }
        let k = self.kernels(gpu, scheme.format)?;
        let unfold = built(&k.unfold, || Im2colQuantize::new(gpu, scheme.format))?;
        let q = Self::alloc(gpu, enc, l)?;
        unfold.encode(gpu, enc, g, x, cols, &l, scheme.rounding, &q.codes, &q.scales)?;
        Ok(q)
    }

    /// Whether [`Quantizer::unfold_quantize_both`] quantizes the convolution `g`'s cols (layout
    /// `l`) and colsᵀ (`lt`) together on `gpu` ([`Im2colQuantize::encode_both`]: x's maxima, then
    /// one launch for both): on CPU adapters (where both of its quantizers run a thread per row),
    /// channels in fours ([`Im2colQuantize::fits_both`]).
    pub fn unfolds_both_together(gpu: &Gpu, g: &ConvGeom, l: &QuantLayout, lt: &QuantLayout) -> bool {
        gpu.cpu_layouts()
            && Self::unfolds_in_one_pass(gpu, l)
            && Self::unfolds_transposed(gpu, lt)
            && Im2colQuantize::fits_both(g, l, lt)
    }

    /// [`Quantizer::unfold_quantize`] of `x` under `scheme` without cols, and
    /// [`Quantizer::unfold_quantize_transposed`] of `x` under `scheme_t`: a convolution's X for its
    /// forward and Xᵀ for its weight gradient: together ([`Im2colQuantize::encode_both`]) where
    /// [`Quantizer::unfolds_both_together`] holds, else those two; the same bits either way.
    /// An error for what either refuses or two formats.
    pub fn unfold_quantize_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        (scheme, scheme_t): (QuantScheme, QuantScheme),
    ) -> Result<(QuantizedTensor, QuantizedTensor)> {
        g.check()?;
        if scheme.format != scheme_t.format {
            return Err(Error::InvalidArgument(format!(
                "unfold_quantize_both: one format both ways, not {:?} and {:?}",
                scheme.format, scheme_t.format
            )));
        }
        let l = QuantLayout::new(g.rows(), g.kdim(), scheme.format, scheme.granularity)?;
        let lt = QuantLayout::new(g.kdim(), g.rows(), scheme_t.format, scheme_t.granularity)?;
        // (Checked before anything is recorded: the two launches' own checks come one by one.)
        if !Im2colQuantize::supports(&l) || !Im2colQuantizeTranspose::supports(&lt) {
            return Err(Error::InvalidArgument(format!(
                "unfold_quantize_both: {} scales of {} for X and {} scales for Xᵀ need im2col and the quantizers apart",
                l.granularity, l.format, lt.granularity
            )));
        }
        if !Self::unfolds_both_together(gpu, g, &l, &lt) {
            let q = self.unfold_quantize(gpu, enc, g, x, None, scheme)?;
            return Ok((q, self.unfold_quantize_transposed(gpu, enc, g, x, scheme_t)?));
        }
        let k = self.kernels(gpu, scheme.format)?;
        let unfold = built(&k.unfold, || Im2colQuantize::new(gpu, scheme.format))?;
        let (q, qt) = (Self::alloc(gpu, enc, l)?, Self::alloc(gpu, enc, lt)?);
        unfold.encode_both(gpu, enc, g, x, (side(&q, scheme.rounding), side(&qt, scheme_t.rounding)))?;
        Ok((q, qt))
    }

    /// Whether a quantized convolution quantizes its unfolded input's transpose from the input
    /// itself ([`Quantizer::unfold_quantize_transposed`]) for `l`, the `[kh·kw·c, rows]` layout of
    /// that transpose: for per-row or per-block scales of a format without a tensor-wide scale, on
    /// every adapter (a thread per row of it on CPU layouts, as the transposing quantizer runs
    /// there; on a GPU's, a piece of a row a thread, neighbouring rows side by side, in one launch,
    /// or two for long rows: [`Im2colQuantizeTranspose::uses_tiles`]), so cols need not be written
    /// for it.
    pub fn unfolds_transposed(_gpu: &Gpu, l: &QuantLayout) -> bool {
        Im2colQuantizeTranspose::supports(l)
    }

    /// The quantization under `scheme` of `im2col(x)ᵀ` (the convolution `g`; `[kh·kw·c,
    /// batch·oh·ow]`), formed from `x` in one launch ([`Im2colQuantizeTranspose`]), cols neither
    /// read nor written: the bits of im2col then [`Quantizer::quantize_transposed`]. Per-row or
    /// per-block scales of a format without a tensor-wide scale; an error elsewhere.
    pub fn unfold_quantize_transposed(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        g.check()?;
        let l = QuantLayout::new(g.kdim(), g.rows(), scheme.format, scheme.granularity)?;
        if !Im2colQuantizeTranspose::supports(&l) {
            return Err(Error::InvalidArgument(format!(
                "unfold_quantize_transposed: {} scales of {} need im2col and the transposing quantizer apart",
                l.granularity, l.format
            )));
        }
        let k = self.kernels(gpu, scheme.format)?;
        let kernel = built(&k.unfold_t, || Im2colQuantizeTranspose::new(gpu, scheme.format))?;
        let q = Self::alloc(gpu, enc, l)?;
        kernel.encode(gpu, enc, g, x, &l, scheme.rounding, 1, &q.codes, &q.scales)?;
        Ok(q)
    }

    /// Whether [`Quantizer::quantize_rotated_transposed`] takes `l` (the layout of the transpose)
    /// rotated in blocks of `block` ([`HadamardQuantizeTranspose::supports`]: the block-scaled
    /// formats, rotations of 16, L's rows in fours).
    pub fn rotates_transposed(l: &QuantLayout, block: u32) -> bool {
        HadamardQuantizeTranspose::supports(l, block)
    }

    /// The quantization under `scheme` of `(x·D·H₁₆)ᵀ`, `x` `[rows, cols]` rotated by the signed
    /// Hadamard (sign key `signs`) in blocks of 16 down its columns, in one launch that never
    /// writes the rotated tensor ([`HadamardQuantizeTranspose`]): the bits of
    /// [`crate::kernels::hadamard::Hadamard::encode_signed`] along the rows then
    /// [`Quantizer::quantize_transposed`]. `samples` stacked SMP samples (stochastic rounding);
    /// `extras` as the kernel takes them (NVFP4's tensor maximum of the rotated tensor is
    /// required: [`crate::kernels::hadamard::Hadamard::encode_maxima`] writes it). For the
    /// layouts of [`Quantizer::rotates_transposed`]; an error elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn quantize_rotated_transposed(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        signs: u32,
        samples: u32,
        extras: RotatedExtras,
    ) -> Result<QuantizedTensor> {
        let lt = Self::transposed_layout("quantize_rotated_transposed", x, scheme)?;
        let k = self.kernels(gpu, scheme.format)?;
        let kernel = built(&k.rotated_t, || HadamardQuantizeTranspose::new(gpu, scheme.format))?;
        let q = Self::alloc_samples(gpu, enc, lt, samples)?;
        kernel.encode(gpu, enc, x.buffer(), &lt, signs, scheme.rounding, samples, extras, &q.codes, &q.scales)?;
        Ok(q)
    }

    /// Whether [`Quantizer::quantize_rotated_transposed_both`] takes `lt` (the layout of the
    /// transpose) rotated in blocks of `block` with x's own layout `l` on `gpu`
    /// ([`HadamardQuantizeTranspose::supports_both`] and [`HadamardQuantizeTranspose::takes_both`]:
    /// the block-scaled formats, x in the transpose's format and shape).
    pub fn rotates_transposed_both(gpu: &Gpu, lt: &QuantLayout, block: u32, l: &QuantLayout) -> bool {
        HadamardQuantizeTranspose::takes_both(gpu) && HadamardQuantizeTranspose::supports_both(lt, block, l)
    }

    /// [`Quantizer::quantize_rotated_transposed`] (one sample, under `schemes.0`) that also
    /// quantizes `x` itself, unrotated, under `schemes.1` in the same launch: returns (xᵀ rotated,
    /// x). x's codes and scales are the bits of [`Quantizer::quantize`] (with `extras.mask`,
    /// [`Quantizer::quantize_masked`]; NVFP4's with x's own maximum `amax_x`, as
    /// [`Quantizer::quantize_with_amax`] takes it, required there and refused elsewhere). One
    /// launch where they take two. For the layouts of [`Quantizer::rotates_transposed_both`]; an
    /// error elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn quantize_rotated_transposed_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        (scheme_t, scheme): (QuantScheme, QuantScheme),
        signs: u32,
        extras: RotatedExtras,
        amax_x: Option<&GpuBuffer<u32>>,
    ) -> Result<(QuantizedTensor, QuantizedTensor)> {
        let lt = Self::transposed_layout("quantize_rotated_transposed_both", x, scheme_t)?;
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        let k = self.kernels(gpu, scheme_t.format)?;
        let kernel = built(&k.rotated_t, || HadamardQuantizeTranspose::new(gpu, scheme_t.format))?;
        let (qt, q) = (Self::alloc(gpu, enc, lt)?, Self::alloc(gpu, enc, l)?);
        let side = Unrotated {
            layout: &l,
            rounding: scheme.rounding,
            tensor_amax: amax_x,
            codes: &q.codes,
            scales: &q.scales,
        };
        let out = (&qt.codes, &qt.scales);
        kernel.encode_both(gpu, enc, x.buffer(), &lt, signs, scheme_t.rounding, extras, out, side)?;
        Ok((qt, q))
    }

    /// [`Quantizer::quantize`] for a format with a tensor-wide scale (NVFP4), given the tensor's
    /// maximum: `amax[0]` the largest finite, normal `|x|` as f32 bits, as
    /// [`Quantizer::tensor_amax`] or [`crate::kernels::hadamard::Hadamard::encode_signed_with_amax`]
    /// write it. One launch instead of two, and one maximum can serve every quantization of `x`
    /// and of `xᵀ`. Same bits as [`Quantizer::quantize`] when `amax` is `x`'s; an error for a
    /// format without a tensor-wide scale.
    pub fn quantize_with_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        amax: &GpuBuffer<u32>,
    ) -> Result<QuantizedTensor> {
        Self::check_given_amax("quantize_with_amax", scheme, amax)?;
        self.one_pass(gpu, enc, x, scheme, Some(amax), None, 1)
    }

    /// [`Quantizer::quantize`] of a format with a tensor-wide scale (NVFP4) that also hands back
    /// the tensor's maximum it reduced ([`Quantizer::tensor_amax`]'s word), for later quantizers
    /// of `x` or `xᵀ` (`_with_amax`). One launch where the tensor fits one workgroup
    /// ([`QuantizeFused::fits_whole`]: a layer's weight), `absmax` and the one-pass quantizer
    /// otherwise; the same bits either way. An error for a format without a tensor-wide scale.
    pub fn quantize_reducing_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<(QuantizedTensor, GpuBuffer<u32>)> {
        if !scheme.format.needs_tensor_amax() {
            return Err(Error::InvalidArgument(format!(
                "quantize_reducing_amax: {:?} has no tensor-wide scale to reduce a maximum for",
                scheme.format
            )));
        }
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        if !QuantizeFused::fits_whole(gpu, &l) {
            let a = self.tensor_amax(gpu, enc, x)?;
            let q = self.quantize_with_amax(gpu, enc, x, scheme, &a)?;
            return Ok((q, a));
        }
        let k = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc(gpu, enc, l)?;
        let a = enc.scratch::<u32>(gpu, "lowbit tensor amax", 1)?;
        k.fused.encode_reducing_tensor_amax(gpu, enc, x.buffer(), &l, scheme.rounding, &a, &q.codes, &q.scales)?;
        Ok((q, a))
    }

    /// [`Quantizer::quantize_reducing_amax`] of `x` under `scheme` and of `xᵀ` under
    /// `scheme_t` (the same format, rounding to nearest both): for a weight that one product
    /// takes as W and another as Wᵀ. One launch where `x` fits one workgroup
    /// ([`QuantizeFused::encode_whole_both`]); otherwise `absmax` and one launch for both
    /// ([`QuantizeFused::encode_both_with_tensor_amax`]), where the two quantizers took two.
    /// The bits of [`Quantizer::quantize_reducing_amax`] and
    /// [`Quantizer::quantize_transposed_with_amax`] either way; an error for a format without a
    /// tensor-wide scale, two formats, or stochastic rounding.
    pub fn quantize_reducing_amax_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        scheme_t: QuantScheme,
    ) -> Result<(QuantizedTensor, QuantizedTensor, GpuBuffer<u32>)> {
        let (l, lt) = Self::both_layouts("quantize_reducing_amax_both", x, scheme, scheme_t, true)?;
        if !Self::quantizes_both_in_one_pass(gpu, &l, &lt) {
            let (q, a) = self.quantize_reducing_amax(gpu, enc, x, scheme)?;
            let qt = self.quantize_transposed_with_amax(gpu, enc, x, scheme_t, &a)?;
            return Ok((q, qt, a));
        }
        let k = self.kernels(gpu, scheme.format)?;
        let (q, qt) = (Self::alloc(gpu, enc, l)?, Self::alloc(gpu, enc, lt)?);
        let outs = ((&q.codes, &q.scales), (&qt.codes, &qt.scales));
        let a = if QuantizeFused::fits_whole(gpu, &l) {
            let a = enc.scratch::<u32>(gpu, "lowbit tensor amax", 1)?;
            k.fused.encode_whole_both(gpu, enc, x.buffer(), (&l, &lt), &a, outs.0, outs.1)?;
            a
        } else {
            let a = self.tensor_amax(gpu, enc, x)?;
            k.fused.encode_both_with_tensor_amax(gpu, enc, x.buffer(), (&l, &lt), &a, outs.0, outs.1)?;
            a
        };
        Ok((q, qt, a))
    }

    /// [`Quantizer::quantize`] of `x` under `scheme` and [`Quantizer::quantize_transposed`] of
    /// `x` under `scheme_t` (the same format, without a tensor-wide scale; rounding to nearest
    /// both): for a weight that the forward takes as W and the input gradient as Wᵀ. One launch
    /// where the layouts take it ([`QuantizeBoth::fits`]: per-row or per-block scales, a
    /// tensor of a weight's size, or any on a CPU adapter where it reads vec4s), else the two
    /// quantizers; the same bits either way. An error for
    /// a format with a tensor-wide scale (see [`Quantizer::quantize_reducing_amax_both`]), two
    /// formats, or stochastic rounding.
    pub fn quantize_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        scheme_t: QuantScheme,
    ) -> Result<(QuantizedTensor, QuantizedTensor)> {
        let (l, lt) = Self::both_layouts("quantize_both", x, scheme, scheme_t, false)?;
        if !Self::quantizes_both_in_one_pass(gpu, &l, &lt) {
            let q = self.quantize(gpu, enc, x, scheme)?;
            return Ok((q, self.quantize_transposed(gpu, enc, x, scheme_t)?));
        }
        let (q, qt) = (Self::alloc(gpu, enc, l)?, Self::alloc(gpu, enc, lt)?);
        let k = self.kernels(gpu, scheme.format)?;
        let both = built(&k.both, || QuantizeBoth::new(gpu, scheme.format))?;
        let sides = (side(&q, Rounding::Nearest), side(&qt, Rounding::Nearest));
        both.encode(gpu, enc, x.buffer(), sides, &BothExtras::default())?;
        Ok((q, qt))
    }

    /// A layer's gradient in both orientations with its bias gradient: [`Quantizer::quantize`]
    /// of `dy` under `scheme` (dY for dX = dY·W) and
    /// [`Quantizer::quantize_transposed_samples_with_sums`] of `dy` under `scheme_t` (dYᵀ for
    /// dW = dYᵀ·X, and `sums` ← dY's column sums, `col_sum`'s bits), both of `dy` read through
    /// ReLU's `mask` where given (as [`Quantizer::quantize_masked`] reads it), `samples` SMP
    /// samples each (stochastic rounding both ways when more than 1; each side's own stream).
    /// One launch where [`Quantizer::quantizes_grad_both_in_one_pass`] holds, else the two
    /// quantizers; the same bits either way. An error for a format with a tensor-wide scale, two
    /// formats, layouts the one-pass quantizers refuse (per-tensor scales; a mask with the
    /// two-pass one), or SMP without stochastic rounding.
    #[allow(clippy::too_many_arguments)]
    pub fn quantize_grad_both(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        dy: &GpuTensor,
        mask: Option<&GpuBuffer<f32>>,
        (scheme, scheme_t): (QuantScheme, QuantScheme),
        samples: u32,
        sums: &GpuBuffer<f32>,
    ) -> Result<(QuantizedTensor, QuantizedTensor)> {
        let op = "quantize_grad_both";
        let (l, lt) = Self::grad_both_layouts(op, dy, (scheme, scheme_t), samples)?;
        if !Self::quantizes_grad_both_in_one_pass(gpu, &l, &lt) {
            // (Checked before dYᵀ's launch is recorded.)
            if mask.is_some() && !Self::masks_in_one_pass(&l) {
                return Err(Error::InvalidArgument(format!(
                    "{op}: {} scales of {} over {}x{} take the two-pass quantizer; apply the mask first",
                    l.granularity, l.format, l.rows, l.cols
                )));
            }
            let qt = self.transposed(op, gpu, enc, dy, scheme_t, Some(sums), None, mask, samples)?;
            let q = match mask {
                Some(m) => self.masked(op, gpu, enc, dy, m, scheme, samples, None)?,
                None if samples == 1 => self.quantize(gpu, enc, dy, scheme)?,
                None => self.quantize_samples(gpu, enc, dy, scheme, samples)?,
            };
            return Ok((q, qt));
        }
        let (q, qt) = (Self::alloc_samples(gpu, enc, l, samples)?, Self::alloc_samples(gpu, enc, lt, samples)?);
        let k = self.kernels(gpu, scheme.format)?;
        let both = built(&k.both, || QuantizeBoth::new(gpu, scheme.format))?;
        let extras = BothExtras { mask, sums: Some(sums), samples };
        both.encode(gpu, enc, dy.buffer(), (side(&q, scheme.rounding), side(&qt, scheme_t.rounding)), &extras)?;
        Ok((q, qt))
    }

    /// Whether [`Quantizer::quantize_grad_both`] takes dY's layout `l` and dYᵀ's `lt` in one
    /// launch on `gpu` ([`QuantizeBoth::fits`]: a tensor of at most
    /// [`QuantizeFused::whole_max_values`] values, or any on a CPU adapter where it reads vec4s).
    pub fn quantizes_grad_both_in_one_pass(gpu: &Gpu, l: &QuantLayout, lt: &QuantLayout) -> bool {
        QuantizeBoth::fits(gpu, l, lt)
    }

    /// The layouts of `x` and `xᵀ` for the `_both` entry points, which take one format with
    /// (`tensor_scale`) or without a tensor-wide scale, rounded to nearest both ways; an error
    /// naming `op` for anything else.
    fn both_layouts(
        op: &str,
        x: &GpuTensor,
        scheme: QuantScheme,
        scheme_t: QuantScheme,
        tensor_scale: bool,
    ) -> Result<(QuantLayout, QuantLayout)> {
        if scheme.format != scheme_t.format
            || scheme.format.needs_tensor_amax() != tensor_scale
            || scheme.rounding != Rounding::Nearest
            || scheme_t.rounding != Rounding::Nearest
        {
            let with = if tensor_scale { "with" } else { "without" };
            return Err(Error::InvalidArgument(format!(
                "{op}: both orientations in one format {with} a tensor-wide scale, rounded to nearest, not \
                 {scheme:?} and {scheme_t:?}"
            )));
        }
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        Ok((l, QuantLayout::new(x.cols(), x.rows(), scheme_t.format, scheme_t.granularity)?))
    }

    /// What the `_with_amax` entry points accept: a format with a tensor-wide scale, one word.
    fn check_given_amax(op: &'static str, scheme: QuantScheme, amax: &GpuBuffer<u32>) -> Result<()> {
        if !scheme.format.needs_tensor_amax() {
            return Err(Error::InvalidArgument(format!(
                "{op}: {:?} has no tensor-wide scale, so there is no tensor maximum to give it",
                scheme.format
            )));
        }
        crate::kernels::check_len(op, "amax", amax.len(), 1)
    }

    /// The one-pass kernel: NVFP4's tensor maximum given or reduced first, `x` optionally masked,
    /// `samples` stacked stochastic samples (SMP).
    #[allow(clippy::too_many_arguments)]
    fn one_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        given: Option<&GpuBuffer<u32>>,
        mask: Option<&GpuBuffer<f32>>,
        samples: u32,
    ) -> Result<QuantizedTensor> {
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        let k = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc_samples(gpu, enc, l, samples)?;
        let t = match l.format.needs_tensor_amax() {
            true => Some(self.given_or_reduced(gpu, enc, x, given, mask)?),
            false => None,
        };
        k.fused.record(gpu, enc, x.buffer(), &l, scheme.rounding, t.as_ref(), mask, samples, &q.codes, &q.scales)?;
        Ok(q)
    }

    /// The given tensor maximum, or one reduced here from `x` (masked as the quantizer will read
    /// it, when `mask`).
    fn given_or_reduced(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        given: Option<&GpuBuffer<u32>>,
        mask: Option<&GpuBuffer<f32>>,
    ) -> Result<GpuBuffer<u32>> {
        match given {
            Some(a) => Ok(a.clone()),
            None => self.reduce_tensor_amax(gpu, enc, x, mask),
        }
    }

    /// Records `absmax` over the whole of `x` (one group, read in x's own coalesced order) into a
    /// new scratch word: the tensor's maximum that NVFP4's block scales depend on, for
    /// [`Quantizer::quantize_with_amax`] and [`Quantizer::quantize_transposed_with_amax`]. absmax
    /// reads only the grouping of its layout; NVFP4's own layouts are per block, so E2M1's
    /// per-tensor layout of x stands in.
    pub fn tensor_amax(&self, gpu: &Gpu, enc: &mut impl Record, x: &GpuTensor) -> Result<GpuBuffer<u32>> {
        self.reduce_tensor_amax(gpu, enc, x, None)
    }

    /// [`Quantizer::tensor_amax`] of `x`, read masked by `mask` where given (ReLU's backward).
    fn reduce_tensor_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        mask: Option<&GpuBuffer<f32>>,
    ) -> Result<GpuBuffer<u32>> {
        let whole = QuantLayout::new(x.rows(), x.cols(), Format::Fp4E2M1, Granularity::PerTensor)?;
        let tensor_amax = enc.scratch::<u32>(gpu, "lowbit tensor amax", 1)?;
        match mask {
            Some(m) => self.absmax.encode_masked(gpu, enc, x.buffer(), m, &whole, false, &tensor_amax)?,
            None => self.absmax.encode(gpu, enc, x.buffer(), &whole, false, &tensor_amax)?,
        }
        Ok(tensor_amax)
    }

    /// Records the two-pass quantizer `absmax → quantize` (any granularity; the second launch
    /// turns the maxima into scales itself).
    pub fn quantize_two_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        self.two_pass(gpu, enc, x, scheme, 1)
    }

    /// The two-pass chain writing `samples` stacked samples in its second launch.
    fn two_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        samples: u32,
    ) -> Result<QuantizedTensor> {
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        let k = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc_samples(gpu, enc, l, samples)?;
        let amax = enc.scratch::<u32>(gpu, "lowbit amax", l.amax_len())?;
        self.absmax.encode(gpu, enc, x.buffer(), &l, false, &amax)?;
        k.quantize.encode(gpu, enc, x.buffer(), &amax, &l, scheme.rounding, samples, &q.codes, &q.scales)?;
        Ok(q)
    }

    /// Records the quantization of `xᵀ`: `x` must be 2-D `[r, c]`; the result is the `[c, r]`
    /// tensor packed along `r`, with groups, scales and random draws of the transposed tensor.
    /// Per-row and per-block scales take the one-pass `quantize_transpose_fused` (NVFP4, whose
    /// block scales need the tensor's maximum, after an `absmax` over the whole tensor) where it
    /// is the faster way ([`QuantizeTransposeFused::preferred`]); per-tensor scales and long rows
    /// the chain `absmax` → `quantize_transpose`. All give the same bits.
    pub fn quantize_transposed(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        self.transposed("quantize_transposed", gpu, enc, x, scheme, None, None, None, 1)
    }

    /// [`Quantizer::quantize_transposed`] for a format with a tensor-wide scale (NVFP4), given
    /// `x`'s maximum (see [`Quantizer::quantize_with_amax`]; the maximum of `x` is that of `xᵀ`):
    /// the one-pass kernel alone where it is the faster way; where the chain is (long rows), the
    /// chain, whose block reduction finds the maximum itself. Same bits either way; an error for a
    /// format without a tensor-wide scale.
    pub fn quantize_transposed_with_amax(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        amax: &GpuBuffer<u32>,
    ) -> Result<QuantizedTensor> {
        Self::check_given_amax("quantize_transposed_with_amax", scheme, amax)?;
        self.transposed("quantize_transposed_with_amax", gpu, enc, x, scheme, None, Some(amax), None, 1)
    }

    /// [`Quantizer::quantize_transposed`] that also writes `sums[j] = Σ_i x[i][j]` (`x` `[r, c]`,
    /// `sums` `[c]`: a layer's bias gradient from its dY) in the same launch, bit for bit what
    /// `col_sum` writes; for per-row scales of formats without a tensor-wide scale
    /// ([`QuantizeTransposeFused::supports_sums`]), an error otherwise.
    pub fn quantize_transposed_with_sums(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        sums: &GpuBuffer<f32>,
    ) -> Result<QuantizedTensor> {
        self.transposed("quantize_transposed_with_sums", gpu, enc, x, scheme, Some(sums), None, None, 1)
    }

    /// [`Quantizer::quantize_transposed_with_sums`] of `x` with every value whose `mask` value is
    /// not above 0 taken as 0 (ReLU's backward: `x` = dY, `mask` = Y): the codes, scales and sums
    /// of what `relu_backward` writes, in the one launch, without that kernel's launch and output.
    pub fn quantize_transposed_with_sums_masked(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        mask: &GpuBuffer<f32>,
        scheme: QuantScheme,
        sums: &GpuBuffer<f32>,
    ) -> Result<QuantizedTensor> {
        self.transposed("quantize_transposed_with_sums_masked", gpu, enc, x, scheme, Some(sums), None, Some(mask), 1)
    }

    /// [`Quantizer::quantize_transposed_samples`] that also writes the row sums of
    /// [`Quantizer::quantize_transposed_with_sums`] (once), and with `mask` reads `x` masked as
    /// [`Quantizer::quantize_transposed_with_sums_masked`] does: SMP's `k` samples of a masked
    /// dYᵀ and the bias gradient in one launch, each sample the bits of quantizing
    /// `relu_backward`'s output with its stream. For the layouts of
    /// [`QuantizeTransposeFused::supports_sums`]; an error elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn quantize_transposed_samples_with_sums(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        mask: Option<&GpuBuffer<f32>>,
        scheme: QuantScheme,
        k: u32,
        sums: &GpuBuffer<f32>,
    ) -> Result<QuantizedTensor> {
        let op = "quantize_transposed_samples_with_sums";
        Self::check_samples(op, scheme, k)?;
        self.transposed(op, gpu, enc, x, scheme, Some(sums), None, mask, k)
    }

    /// All of the above: the one-pass kernel where it is the faster way
    /// ([`QuantizeTransposeFused::preferred`]; always with `sums`: it refuses what it cannot do),
    /// writing `samples` stacked samples in its one launch; the two-pass chain otherwise, its
    /// second launch writing every sample.
    #[allow(clippy::too_many_arguments)]
    fn transposed(
        &self,
        op: &'static str,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        sums: Option<&GpuBuffer<f32>>,
        given: Option<&GpuBuffer<u32>>,
        mask: Option<&GpuBuffer<f32>>,
        samples: u32,
    ) -> Result<QuantizedTensor> {
        let lt = Self::transposed_layout(op, x, scheme)?;
        let k = self.kernels(gpu, scheme.format)?;
        if sums.is_some() || QuantizeTransposeFused::preferred(&lt, k.transpose_fused.reduce_path()) {
            let q = Self::alloc_samples(gpu, enc, lt, samples)?;
            // NVFP4: the tensor's maximum (given, or reduced here), then one launch.
            let t = match sums.is_none() && lt.format.needs_tensor_amax() {
                true => Some(self.given_or_reduced(gpu, enc, x, given, mask)?),
                false => None,
            };
            let (xb, rnd) = (x.buffer(), scheme.rounding);
            k.transpose_fused.record(
                gpu,
                enc,
                xb,
                &lt,
                rnd,
                &q.codes,
                &q.scales,
                sums,
                t.as_ref(),
                mask,
                samples,
                0,
            )?;
            return Ok(q);
        }
        // The two-pass chain: the maxima once, every sample in the second launch.
        let q = Self::alloc_samples(gpu, enc, lt, samples)?;
        self.transposed_chain(gpu, enc, x, scheme, &lt, q, None)
    }

    /// Whether [`Quantizer::quantize_batched_transposed`] takes `l` (the layout of the stacked
    /// transposes) in one launch on `gpu`: where the transposing one-pass kernel is the faster
    /// way ([`QuantizeTransposeFused::preferred`]). Elsewhere transpose first and quantize.
    pub fn batched_transpose_in_one_pass(gpu: &Gpu, l: &QuantLayout) -> bool {
        QuantizeTransposeFused::preferred(l, crate::kernels::quantize_fused::ReducePath::for_adapter(gpu))
    }

    /// Records the quantization of a stack of transposes: `x` holds `batches` matrices of
    /// `[k, rows]`; the result is the `[batches · rows, k]` tensor of their transposes one under
    /// the other, packed along `k` — the bits of transposing each matrix and quantizing the stack
    /// with [`Quantizer::quantize`], in one launch (NVFP4: after an `absmax` over x). For the
    /// layouts of [`Quantizer::batched_transpose_in_one_pass`]; an error elsewhere.
    pub fn quantize_batched_transposed(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuBuffer<f32>,
        (batches, k, rows): (usize, usize, usize),
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        let lt = QuantLayout::new(batches * rows, k, scheme.format, scheme.granularity)?;
        if !Self::batched_transpose_in_one_pass(gpu, &lt) {
            return Err(Error::InvalidArgument(format!(
                "quantize_batched_transposed: {} scales of {} over {}x{} take the chain on this adapter; transpose first",
                lt.granularity, lt.format, lt.rows, lt.cols
            )));
        }
        crate::kernels::check_len("quantize_batched_transposed", "x", x.len(), batches * k * rows)?;
        let kf = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc(gpu, enc, lt)?;
        let t = match lt.format.needs_tensor_amax() {
            true => Some(self.tensor_amax(gpu, enc, &GpuTensor::from_buffer(x.clone(), &[batches * k, rows])?)?),
            false => None,
        };
        let r = u32::try_from(rows).map_err(|_| Error::InvalidArgument(format!("{rows} rows per matrix")))?;
        kf.transpose_fused.encode_batched(gpu, enc, x, &lt, r, scheme.rounding, t.as_ref(), &q.codes, &q.scales)?;
        Ok(q)
    }

    /// Records the two-pass chain `absmax` → `quantize_transpose` for `xᵀ` (any granularity; the
    /// second launch turns the maxima into scales itself): what [`Quantizer::quantize_transposed`]
    /// takes for per-tensor scales, and for long rows on a GPU. Same bits as the one-pass kernel.
    pub fn quantize_transposed_two_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        let lt = Self::transposed_layout("quantize_transposed_two_pass", x, scheme)?;
        let q = Self::alloc(gpu, enc, lt)?;
        self.transposed_chain(gpu, enc, x, scheme, &lt, q, None)
    }

    /// Whether [`Quantizer::quantize_transposed`] (and `_samples`) quantizes xᵀ of layout `lt`
    /// on `gpu` by the two-pass chain, and the chain's first launch (`absmax` over x) could come
    /// from x's producer instead ([`Quantizer::quantize_transposed_given_maxima`]): a format
    /// without a tensor-wide scale, and a layout the one-pass kernel does not take on this adapter
    /// (long rows on a GPU; per tensor).
    pub fn transposes_from_maxima(gpu: &Gpu, lt: &QuantLayout) -> bool {
        !lt.format.needs_tensor_amax()
            && !QuantizeTransposeFused::preferred(lt, crate::kernels::quantize_fused::ReducePath::for_adapter(gpu))
    }

    /// [`Quantizer::quantize_transposed`] (`samples` 1) or
    /// [`Quantizer::quantize_transposed_samples`] given the chain's maxima: `maxima` holds, per
    /// group of xᵀ (a row, a block, or the tensor), the largest finite, normal |x| in it as f32
    /// bits — what `absmax` writes, here written by x's producer (batch norm's backward:
    /// [`crate::kernels::batchnorm::BatchNorm::encode_backward_maxima`]) — so only the chain's
    /// second launch runs: the chain's bits where the maxima are x's (the bits of every path of
    /// `quantize_transposed`, whose maxima are x's too). Any layout of a format without a
    /// tensor-wide scale (the trainer gives them where [`Quantizer::transposes_from_maxima`], and
    /// where dY is quantized in the same launch:
    /// [`Quantizer::quantizes_grad_both_given_maxima_in_one_pass`]); an error for another.
    pub fn quantize_transposed_given_maxima(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        samples: u32,
        maxima: &GpuBuffer<u32>,
    ) -> Result<QuantizedTensor> {
        let op = "quantize_transposed_given_maxima";
        if samples != 1 {
            Self::check_samples(op, scheme, samples)?;
        }
        let lt = Self::transposed_layout(op, x, scheme)?;
        if lt.format.needs_tensor_amax() {
            return Err(Error::InvalidArgument(format!(
                "{op}: {} has a tensor-wide scale, which its groups' maxima do not give",
                lt.format
            )));
        }
        crate::kernels::check_len(op, "maxima", maxima.len(), lt.amax_len())?;
        let q = Self::alloc_samples(gpu, enc, lt, samples)?;
        self.transposed_chain(gpu, enc, x, scheme, &lt, q, Some(maxima))
    }

    /// The layouts of dY and dYᵀ for the `quantize_grad_both` entry points, which take one format
    /// without a tensor-wide scale both ways and, for more than one SMP sample, stochastic
    /// rounding both ways; an error naming `op` for anything else.
    fn grad_both_layouts(
        op: &'static str,
        dy: &GpuTensor,
        (scheme, scheme_t): (QuantScheme, QuantScheme),
        samples: u32,
    ) -> Result<(QuantLayout, QuantLayout)> {
        if scheme.format != scheme_t.format || scheme.format.needs_tensor_amax() {
            return Err(Error::InvalidArgument(format!(
                "{op}: both orientations in one format without a tensor-wide scale, not {:?} and {:?}",
                scheme.format, scheme_t.format
            )));
        }
        if samples != 1 {
            Self::check_samples(op, scheme, samples)?;
            Self::check_samples(op, scheme_t, samples)?;
        }
        let l = QuantLayout::new(dy.rows(), dy.cols(), scheme.format, scheme.granularity)?;
        Ok((l, Self::transposed_layout(op, dy, scheme_t)?))
    }

    /// Whether [`Quantizer::quantize_grad_both_given_maxima`] takes dY's layout `l` and dYᵀ's `lt`
    /// in one launch on `gpu` ([`QuantizeBoth::fits_given`]: a GPU's layouts, dY per row or per
    /// block, one format without a tensor-wide scale).
    pub fn quantizes_grad_both_given_maxima_in_one_pass(gpu: &Gpu, l: &QuantLayout, lt: &QuantLayout) -> bool {
        QuantizeBoth::fits_given(gpu, l, lt)
    }

    /// A layer's gradient in both orientations where dY's producer wrote dYᵀ's group maxima:
    /// [`Quantizer::quantize`] (or `_samples`) of `dy` under `scheme` (dY for dX = dY·W) and
    /// [`Quantizer::quantize_transposed_given_maxima`] of `dy` under `scheme_t` from `maxima` (dYᵀ
    /// for dW = dYᵀ·X), `samples` SMP samples each (stochastic rounding both ways when more than
    /// 1; each side's own stream). One launch where
    /// [`Quantizer::quantizes_grad_both_given_maxima_in_one_pass`] holds, else the two launches;
    /// the same bits either way. An error, recording nothing, for two formats or one with a
    /// tensor-wide scale, maxima of the wrong length, or SMP without stochastic rounding.
    pub fn quantize_grad_both_given_maxima(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        dy: &GpuTensor,
        (scheme, scheme_t): (QuantScheme, QuantScheme),
        samples: u32,
        maxima: &GpuBuffer<u32>,
    ) -> Result<(QuantizedTensor, QuantizedTensor)> {
        let op = "quantize_grad_both_given_maxima";
        let (l, lt) = Self::grad_both_layouts(op, dy, (scheme, scheme_t), samples)?;
        if !Self::quantizes_grad_both_given_maxima_in_one_pass(gpu, &l, &lt) {
            let qt = self.quantize_transposed_given_maxima(gpu, enc, dy, scheme_t, samples, maxima)?;
            let q = match samples {
                1 => self.quantize(gpu, enc, dy, scheme)?,
                _ => self.quantize_samples(gpu, enc, dy, scheme, samples)?,
            };
            return Ok((q, qt));
        }
        crate::kernels::check_len(op, "maxima", maxima.len(), lt.amax_len())?;
        let (q, qt) = (Self::alloc_samples(gpu, enc, l, samples)?, Self::alloc_samples(gpu, enc, lt, samples)?);
        let k = self.kernels(gpu, scheme.format)?;
        let both = built(&k.both, || QuantizeBoth::new(gpu, scheme.format))?;
        both.encode_given(
            gpu,
            enc,
            dy.buffer(),
            (side(&q, scheme.rounding), side(&qt, scheme_t.rounding)),
            samples,
            maxima,
        )?;
        Ok((q, qt))
    }

    /// The layout under `scheme` of L = xᵀ for a 2-D `x`; an error naming `op` for another shape.
    fn transposed_layout(op: &'static str, x: &GpuTensor, scheme: QuantScheme) -> Result<QuantLayout> {
        let &[r, c] = x.shape() else {
            return Err(Error::Shape { op, detail: format!("needs a 2-D tensor, got shape {:?}", x.shape()) });
        };
        QuantLayout::new(c, r, scheme.format, scheme.granularity)
    }

    /// The chain `absmax` → `quantize_transpose` for xᵀ into `q`, or with `given` maxima (x's
    /// producer's) the second launch alone.
    #[allow(clippy::too_many_arguments)]
    fn transposed_chain(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        lt: &QuantLayout,
        q: QuantizedTensor,
        given: Option<&GpuBuffer<u32>>,
    ) -> Result<QuantizedTensor> {
        let (r, c) = (lt.cols as usize, lt.rows as usize);
        let k = self.kernels(gpu, scheme.format)?;
        let reduced;
        let amax = match given {
            Some(m) => m,
            None => {
                reduced = enc.scratch::<u32>(gpu, "lowbit amax", lt.amax_len())?;
                if scheme.granularity == Granularity::PerTensor {
                    // One group: reduce x in its own (coalesced) order.
                    let l = QuantLayout::new(r, c, scheme.format, scheme.granularity)?;
                    self.absmax.encode(gpu, enc, x.buffer(), &l, false, &reduced)?;
                } else {
                    self.absmax.encode(gpu, enc, x.buffer(), lt, true, &reduced)?;
                }
                &reduced
            }
        };
        k.transpose.encode(gpu, enc, x.buffer(), amax, lt, scheme.rounding, q.samples, &q.codes, &q.scales)?;
        Ok(q)
    }

    /// Records `k` independent stochastic quantizations of `x` (streams `stream, stream+1, …`),
    /// stacked into one tensor for SMP: the integer GEMM averages the `k` products in its
    /// epilogue. `scheme.rounding` must be stochastic. Where [`Quantizer::quantize`] takes the
    /// one-pass kernel, one launch writes every sample (x's maxima taken once); elsewhere the
    /// two-pass chain, its second launch writing every sample. Same bits either way.
    pub fn quantize_samples(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        k: u32,
    ) -> Result<QuantizedTensor> {
        Self::check_samples("quantize_samples", scheme, k)?;
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        if Self::takes_one_pass(&l) {
            return self.one_pass(gpu, enc, x, scheme, None, None, k);
        }
        self.two_pass(gpu, enc, x, scheme, k)
    }

    /// [`Quantizer::quantize_samples`] for the transpose: `k` stochastic samples of `xᵀ`, in one
    /// launch where [`Quantizer::quantize_transposed`] takes the one-pass kernel.
    pub fn quantize_transposed_samples(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        k: u32,
    ) -> Result<QuantizedTensor> {
        Self::check_samples("quantize_transposed_samples", scheme, k)?;
        self.transposed("quantize_transposed_samples", gpu, enc, x, scheme, None, None, None, k)
    }

    /// Records the dequantization of `q` into a new `[rows, cols]` tensor (sample 0 of SMP).
    pub fn dequantize(&self, gpu: &Gpu, enc: &mut impl Record, q: &QuantizedTensor) -> Result<GpuTensor> {
        let l = q.layout;
        let k = self.kernels(gpu, l.format)?;
        let out = GpuTensor::from_buffer(
            enc.scratch(gpu, "lowbit dequantized", (l.rows * l.cols) as usize)?,
            &[l.rows as usize, l.cols as usize],
        )?;
        built(&k.dequantize, || Dequantize::new(gpu, l.format))?.encode(
            gpu,
            enc,
            &q.codes,
            &q.scales,
            &l,
            out.buffer(),
        )?;
        Ok(out)
    }
}
