//! The quantizer API: quantize, quantize-transposed and dequantize tensors under a
//! [`QuantScheme`], choosing the one-pass or two-pass kernels, recording into the caller's encoder.

use crate::format::Format;
use crate::kernels::{
    absmax::Absmax, dequantize::Dequantize, quantize::Quantize, quantize_fused::QuantizeFused,
    quantize_transpose::QuantizeTranspose, quantize_transpose_fused::QuantizeTransposeFused, scale::Scale,
};
use crate::scheme::{Granularity, QuantLayout, QuantScheme, Rounding};
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::{Error, Gpu, Record, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    scale: Scale,
    quantize: Quantize,
    fused: QuantizeFused,
    transpose: QuantizeTranspose,
    transpose_fused: QuantizeTransposeFused,
    dequantize: Dequantize,
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
            scale: Scale::new(gpu, f)?,
            quantize: Quantize::new(gpu, f)?,
            fused: QuantizeFused::new(gpu, f)?,
            transpose: QuantizeTranspose::new(gpu, f)?,
            transpose_fused: QuantizeTransposeFused::new(gpu, f)?,
            dequantize: Dequantize::new(gpu, f)?,
        });
        map.insert(f, k.clone());
        Ok(k)
    }

    fn alloc(gpu: &Gpu, enc: &mut impl Record, l: QuantLayout) -> Result<QuantizedTensor> {
        gpu.check_binding("quantized codes", l.words() as u64 * 4)?;
        Ok(QuantizedTensor {
            codes: enc.scratch(gpu, "lowbit codes", l.words())?,
            scales: enc.scratch(gpu, "lowbit scales", l.n_groups as usize)?,
            layout: l,
            samples: 1,
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
    /// the one-pass kernel, for formats without a tensor-wide scale.
    pub fn masks_in_one_pass(l: &QuantLayout) -> bool {
        !l.format.needs_tensor_amax() && Self::takes_one_pass(l)
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
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        if !Self::masks_in_one_pass(&l) {
            return Err(Error::InvalidArgument(format!(
                "quantize_masked: {} scales of {} over {}x{} take the two-pass quantizer or a tensor maximum; apply the mask first",
                l.granularity, l.format, l.rows, l.cols
            )));
        }
        let k = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc(gpu, enc, l)?;
        k.fused.encode_masked(gpu, enc, x.buffer(), mask, &l, scheme.rounding, &q.codes, &q.scales)?;
        Ok(q)
    }

    /// Records the one-pass quantizer (per-row, or per-block of at most 256 words). NVFP4, whose
    /// block scales depend on the tensor's maximum, takes two launches: `absmax` over the whole
    /// tensor, then the one-pass kernel reading it (the chain `absmax → scale → quantize` takes
    /// three; same bits).
    pub fn quantize_one_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        self.one_pass(gpu, enc, x, scheme, None)
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
        self.one_pass(gpu, enc, x, scheme, Some(amax))
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

    fn one_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        given: Option<&GpuBuffer<u32>>,
    ) -> Result<QuantizedTensor> {
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        let k = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc(gpu, enc, l)?;
        if l.format.needs_tensor_amax() {
            let t = self.given_or_reduced(gpu, enc, x, given)?;
            k.fused.encode_with_tensor_amax(gpu, enc, x.buffer(), &l, scheme.rounding, &t, &q.codes, &q.scales)?;
        } else {
            k.fused.encode(gpu, enc, x.buffer(), &l, scheme.rounding, &q.codes, &q.scales)?;
        }
        Ok(q)
    }

    /// The given tensor maximum, or one reduced from `x` here.
    fn given_or_reduced(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        given: Option<&GpuBuffer<u32>>,
    ) -> Result<GpuBuffer<u32>> {
        match given {
            Some(a) => Ok(a.clone()),
            None => self.tensor_amax(gpu, enc, x),
        }
    }

    /// Records `absmax` over the whole of `x` (one group, read in x's own coalesced order) into a
    /// new scratch word: the tensor's maximum that NVFP4's block scales depend on, for
    /// [`Quantizer::quantize_with_amax`] and [`Quantizer::quantize_transposed_with_amax`]. absmax
    /// reads only the grouping of its layout; NVFP4's own layouts are per block, so E2M1's
    /// per-tensor layout of x stands in.
    pub fn tensor_amax(&self, gpu: &Gpu, enc: &mut impl Record, x: &GpuTensor) -> Result<GpuBuffer<u32>> {
        let whole = QuantLayout::new(x.rows(), x.cols(), Format::Fp4E2M1, Granularity::PerTensor)?;
        let tensor_amax = enc.scratch::<u32>(gpu, "lowbit tensor amax", 1)?;
        self.absmax.encode(gpu, enc, x.buffer(), &whole, false, &tensor_amax)?;
        Ok(tensor_amax)
    }

    /// Records the two-pass quantizer `absmax → scale → quantize` (any granularity).
    pub fn quantize_two_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        let k = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc(gpu, enc, l)?;
        let amax = enc.scratch::<u32>(gpu, "lowbit amax", l.amax_len())?;
        let inv = enc.scratch::<f32>(gpu, "lowbit inv", l.n_groups as usize)?;
        self.absmax.encode(gpu, enc, x.buffer(), &l, false, &amax)?;
        k.scale.encode(gpu, enc, &amax, &q.scales, &inv)?;
        k.quantize.encode(gpu, enc, x.buffer(), &inv, &l, scheme.rounding, &q.codes)?;
        Ok(q)
    }

    /// Records the quantization of `xᵀ`: `x` must be 2-D `[r, c]`; the result is the `[c, r]`
    /// tensor packed along `r`, with groups, scales and random draws of the transposed tensor.
    /// Per-row and per-block scales take the one-pass `quantize_transpose_fused` (NVFP4, whose
    /// block scales need the tensor's maximum, after an `absmax` over the whole tensor) where it
    /// is the faster way ([`QuantizeTransposeFused::preferred`]); per-tensor scales and long rows
    /// the chain `absmax` → `scale` → `quantize_transpose`. All give the same bits.
    pub fn quantize_transposed(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        self.transposed("quantize_transposed", gpu, enc, x, scheme, None, None, None)
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
        self.transposed("quantize_transposed_with_amax", gpu, enc, x, scheme, None, Some(amax), None)
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
        self.transposed("quantize_transposed_with_sums", gpu, enc, x, scheme, Some(sums), None, None)
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
        self.transposed("quantize_transposed_with_sums_masked", gpu, enc, x, scheme, Some(sums), None, Some(mask))
    }

    /// All of the above: the one-pass kernel where it is the faster way
    /// ([`QuantizeTransposeFused::preferred`]; always with `sums`: it refuses what it cannot do),
    /// the chain otherwise.
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
    ) -> Result<QuantizedTensor> {
        let &[r, c] = x.shape() else {
            return Err(Error::Shape { op, detail: format!("needs a 2-D tensor, got shape {:?}", x.shape()) });
        };
        let lt = QuantLayout::new(c, r, scheme.format, scheme.granularity)?;
        let k = self.kernels(gpu, scheme.format)?;
        let q = Self::alloc(gpu, enc, lt)?;
        if sums.is_some() || QuantizeTransposeFused::preferred(&lt, k.transpose_fused.reduce_path()) {
            let (xb, rnd) = (x.buffer(), scheme.rounding);
            if sums.is_none() && lt.format.needs_tensor_amax() {
                // NVFP4: the tensor's maximum (given, or reduced here), then one launch.
                let t = self.given_or_reduced(gpu, enc, x, given)?;
                k.transpose_fused.encode_with_tensor_amax(gpu, enc, xb, &lt, rnd, &t, &q.codes, &q.scales)?;
            } else if let Some(m) = mask {
                k.transpose_fused.encode_with_sums_masked(gpu, enc, xb, m, &lt, rnd, &q.codes, &q.scales, sums)?;
            } else {
                k.transpose_fused.encode_with_sums(gpu, enc, xb, &lt, rnd, &q.codes, &q.scales, sums)?;
            }
            return Ok(q);
        }
        self.transposed_chain(gpu, enc, x, scheme, &lt, q)
    }

    /// Records the three-launch chain `absmax` → `scale` → `quantize_transpose` for `xᵀ` (any
    /// granularity): what [`Quantizer::quantize_transposed`] takes for per-tensor scales, and for
    /// long rows on a GPU. Same bits as the one-pass kernel.
    pub fn quantize_transposed_three_pass(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
    ) -> Result<QuantizedTensor> {
        let &[r, c] = x.shape() else {
            return Err(Error::Shape {
                op: "quantize_transposed_three_pass",
                detail: format!("needs a 2-D tensor, got shape {:?}", x.shape()),
            });
        };
        let lt = QuantLayout::new(c, r, scheme.format, scheme.granularity)?;
        let q = Self::alloc(gpu, enc, lt)?;
        self.transposed_chain(gpu, enc, x, scheme, &lt, q)
    }

    fn transposed_chain(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        lt: &QuantLayout,
        q: QuantizedTensor,
    ) -> Result<QuantizedTensor> {
        let (r, c) = (lt.cols as usize, lt.rows as usize);
        let k = self.kernels(gpu, scheme.format)?;
        let amax = enc.scratch::<u32>(gpu, "lowbit amax", lt.amax_len())?;
        let inv = enc.scratch::<f32>(gpu, "lowbit inv", lt.n_groups as usize)?;
        if scheme.granularity == Granularity::PerTensor {
            // One group: reduce x in its own (coalesced) order.
            let l = QuantLayout::new(r, c, scheme.format, scheme.granularity)?;
            self.absmax.encode(gpu, enc, x.buffer(), &l, false, &amax)?;
        } else {
            self.absmax.encode(gpu, enc, x.buffer(), lt, true, &amax)?;
        }
        k.scale.encode(gpu, enc, &amax, &q.scales, &inv)?;
        k.transpose.encode(gpu, enc, x.buffer(), &inv, lt, scheme.rounding, &q.codes)?;
        Ok(q)
    }

    /// Records `k` independent stochastic quantizations of `x` (streams `stream, stream+1, …`),
    /// stacked into one tensor for SMP: the integer GEMM averages the `k` products in its
    /// epilogue. `scheme.rounding` must be stochastic.
    pub fn quantize_samples(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        k: u32,
    ) -> Result<QuantizedTensor> {
        let Rounding::Stochastic { seed, stream } = scheme.rounding else {
            return Err(Error::InvalidArgument(
                "quantize_samples: SMP needs stochastic rounding (nearest gives k identical samples)".into(),
            ));
        };
        if k == 0 {
            return Err(Error::InvalidArgument("quantize_samples: k must be at least 1".into()));
        }
        let l = QuantLayout::new(x.rows(), x.cols(), scheme.format, scheme.granularity)?;
        let (words, groups) = (l.words() as u64 * 4, l.n_groups as u64 * 4);
        gpu.check_binding("SMP codes", words * k as u64)?;
        let out = QuantizedTensor {
            codes: enc.scratch(gpu, "lowbit smp codes", l.words() * k as usize)?,
            scales: enc.scratch(gpu, "lowbit smp scales", l.n_groups as usize * k as usize)?,
            layout: l,
            samples: k,
        };
        for j in 0..k {
            let s = QuantScheme { rounding: Rounding::Stochastic { seed, stream: stream.wrapping_add(j) }, ..scheme };
            let q = self.quantize(gpu, enc, x, s)?;
            enc.copy(q.codes.buffer(), 0, out.codes.buffer(), j as u64 * words, words);
            enc.copy(q.scales.buffer(), 0, out.scales.buffer(), j as u64 * groups, groups);
        }
        Ok(out)
    }

    /// [`Quantizer::quantize_samples`] for the transpose: `k` stochastic samples of `xᵀ`.
    pub fn quantize_transposed_samples(
        &self,
        gpu: &Gpu,
        enc: &mut impl Record,
        x: &GpuTensor,
        scheme: QuantScheme,
        k: u32,
    ) -> Result<QuantizedTensor> {
        let Rounding::Stochastic { seed, stream } = scheme.rounding else {
            return Err(Error::InvalidArgument("quantize_transposed_samples: SMP needs stochastic rounding".into()));
        };
        if k == 0 {
            return Err(Error::InvalidArgument("quantize_transposed_samples: k must be at least 1".into()));
        }
        if k == 1 {
            return self.quantize_transposed(gpu, enc, x, scheme);
        }
        let first = self.quantize_transposed(gpu, enc, x, scheme)?;
        let l = first.layout;
        let (words, groups) = (l.words() as u64 * 4, l.n_groups as u64 * 4);
        gpu.check_binding("SMP codes", words * k as u64)?;
        let out = QuantizedTensor {
            codes: enc.scratch(gpu, "lowbit smp codes", l.words() * k as usize)?,
            scales: enc.scratch(gpu, "lowbit smp scales", l.n_groups as usize * k as usize)?,
            layout: l,
            samples: k,
        };
        for j in 0..k {
            let q = if j == 0 {
                None
            } else {
                let s =
                    QuantScheme { rounding: Rounding::Stochastic { seed, stream: stream.wrapping_add(j) }, ..scheme };
                Some(self.quantize_transposed(gpu, enc, x, s)?)
            };
            let q = q.as_ref().unwrap_or(&first);
            enc.copy(q.codes.buffer(), 0, out.codes.buffer(), j as u64 * words, words);
            enc.copy(q.scales.buffer(), 0, out.scales.buffer(), j as u64 * groups, groups);
        }
        Ok(out)
    }

    /// Records the dequantization of `q` into a new `[rows, cols]` tensor (sample 0 of SMP).
    pub fn dequantize(&self, gpu: &Gpu, enc: &mut impl Record, q: &QuantizedTensor) -> Result<GpuTensor> {
        let l = q.layout;
        let k = self.kernels(gpu, l.format)?;
        let out = GpuTensor::from_buffer(
            enc.scratch(gpu, "lowbit dequantized", (l.rows * l.cols) as usize)?,
            &[l.rows as usize, l.cols as usize],
        )?;
        k.dequantize.encode(gpu, enc, &q.codes, &q.scales, &l, out.buffer())?;
        Ok(out)
    }
}
