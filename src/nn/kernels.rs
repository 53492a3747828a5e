//! The launchers a trainer's ops record with, built once per trainer (the integer and FP8 GEMMs
//! per pair of operand formats, on first use).

use crate::format::Format;
use crate::kernels::adam::Adam;
use crate::kernels::add::Add;
use crate::kernels::avgpool::AvgPool;
use crate::kernels::batchnorm::BatchNorm;
use crate::kernels::col_sum::ColSum;
use crate::kernels::embedding::Embedding;
use crate::kernels::finite::Finite;
use crate::kernels::gelu::Gelu;
use crate::kernels::gemm::Epilogue;
use crate::kernels::gemm_f32::GemmF32;
use crate::kernels::gemm_f32_col2im::GemmF32Col2im;
use crate::kernels::gemm_f32_lanes::GemmF32Lanes;
use crate::kernels::gemm_fp8::GemmFp8;
use crate::kernels::gemm_fp8_col2im::GemmFp8Col2im;
use crate::kernels::gemm_int::{GemmInt, INT_FORMATS};
use crate::kernels::gemm_int_col2im::GemmIntCol2im;
use crate::kernels::gemm_levels::GemmLevels;
use crate::kernels::gemm_levels_col2im::GemmLevelsCol2im;
use crate::kernels::hadamard::{Axis, Hadamard, RotateExtras};
use crate::kernels::hadamard_quantize_transpose::{HadamardQuantizeTranspose, RotatedExtras};
use crate::kernels::heads::Heads;
use crate::kernels::im2col::{ConvGeom, Im2col};
use crate::kernels::layernorm::LayerNorm;
use crate::kernels::maxpool::MaxPool;
use crate::kernels::mse::Mse;
use crate::kernels::relu_backward::ReluBackward;
use crate::kernels::sgd::Sgd;
use crate::kernels::softmax::Softmax;
use crate::kernels::softmax_xent::SoftmaxXent;
use crate::kernels::tinyscript::TinyScript;
use crate::kernels::transpose::Transpose;
use crate::quant::{QuantizedTensor, Quantizer};
use crate::scheme::{QuantLayout, QuantScheme};
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::{Error, Gpu, Record, Result};
use std::collections::HashMap;

/// A tensor maximum: one word, the largest finite, normal |value| as f32 bits.
type Amax = GpuBuffer<u32>;
use std::sync::{Arc, Mutex};

/// lowbit's launchers, as the ops of a trainer use them.
pub struct Kernels {
    /// Quantizers of every format.
    pub qz: Quantizer,
    /// The f32 GEMM.
    pub f32: GemmF32,
    int: Mutex<HashMap<(Format, Format), Arc<GemmInt>>>,
    fp8: Mutex<HashMap<(Format, Format), Arc<GemmFp8>>>,
    int_col2im: Mutex<HashMap<(Format, Format), Arc<GemmIntCol2im>>>,
    fp8_col2im: Mutex<HashMap<(Format, Format), Arc<GemmFp8Col2im>>>,
    /// The f32 convolutions' fused input gradient, where the GEMMs run their lanes kernels.
    f32_col2im: Option<GemmF32Col2im>,
    /// The TinyScript convolutions' fused input gradient, likewise.
    levels_col2im: Option<GemmLevelsCol2im>,
    /// im2col and col2im.
    pub im2col: Im2col,
    /// Max pooling.
    pub maxpool: MaxPool,
    /// Average pooling.
    pub avgpool: AvgPool,
    /// Batch normalization.
    pub norm: BatchNorm,
    /// ReLU's backward mask.
    pub relu: ReluBackward,
    /// Elementwise add / ReLU.
    pub add: Add,
    /// Column sums (bias gradients).
    pub colsum: ColSum,
    /// The finiteness check of a step's gradients.
    pub finite: Finite,
    /// Softmax cross-entropy.
    pub xent: SoftmaxXent,
    /// Squared error.
    pub mse: Mse,
    /// SGD.
    pub sgd: Sgd,
    /// AdamW.
    pub adam: Adam,
    /// Block Hadamard rotation.
    pub hadamard: Hadamard,
    /// TinyScript quantization and fits.
    pub ts: TinyScript,
    /// TinyScript GEMMs.
    pub levels: GemmLevels,
    /// Token and position embeddings.
    pub embedding: Embedding,
    /// Attention's head layouts.
    pub heads: Heads,
    /// Batched transposes (attention's quantized products).
    pub transpose: Transpose,
    /// Attention's softmax.
    pub softmax: Softmax,
    /// Layer normalization.
    pub layernorm: LayerNorm,
    /// GELU.
    pub gelu: Gelu,
}

impl Kernels {
    /// Builds every pipeline but the per-format GEMMs.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Kernels {
            qz: Quantizer::new(gpu)?,
            f32: GemmF32::new(gpu)?,
            int: Mutex::new(HashMap::new()),
            fp8: Mutex::new(HashMap::new()),
            int_col2im: Mutex::new(HashMap::new()),
            fp8_col2im: Mutex::new(HashMap::new()),
            f32_col2im: GemmF32Lanes::chosen(gpu).then(|| GemmF32Col2im::new(gpu)).transpose()?,
            levels_col2im: GemmF32Lanes::chosen(gpu).then(|| GemmLevelsCol2im::new(gpu)).transpose()?,
            im2col: Im2col::new(gpu)?,
            maxpool: MaxPool::new(gpu)?,
            avgpool: AvgPool::new(gpu)?,
            norm: BatchNorm::new(gpu)?,
            relu: ReluBackward::new(gpu)?,
            add: Add::new(gpu)?,
            colsum: ColSum::new(gpu)?,
            finite: Finite::new(gpu)?,
            xent: SoftmaxXent::new(gpu)?,
            mse: Mse::new(gpu)?,
            sgd: Sgd::new(gpu)?,
            adam: Adam::new(gpu)?,
            hadamard: Hadamard::new(gpu)?,
            ts: TinyScript::new(gpu)?,
            levels: GemmLevels::new(gpu)?,
            embedding: Embedding::new(gpu)?,
            heads: Heads::new(gpu)?,
            transpose: Transpose::new(gpu)?,
            softmax: Softmax::new(gpu)?,
            layernorm: LayerNorm::new(gpu)?,
            gelu: Gelu::new(gpu)?,
        })
    }

    /// `x` `[rows, cols]` rotated along the rows by a block Hadamard (BHQ; `rot` = `(block, sign
    /// key)`, a nonzero key making it a random Hadamard transform), or `x` itself without one.
    /// With `mask` (a ReLU layer's output, for its gradient `x`), `x` is read as 0 wherever the
    /// mask is not above 0 (only with a rotation: without one the caller's next reader masks).
    #[allow(clippy::too_many_arguments)]
    pub fn rotated(
        &self,
        gpu: &Gpu,
        rec: &mut impl Record,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        rot: Option<(u32, u32)>,
        mask: Option<&GpuBuffer<f32>>,
        label: &str,
    ) -> Result<GpuBuffer<f32>> {
        Ok(self.rotate(gpu, rec, x, (rows, cols), rot, mask, label, (false, false), None)?.0)
    }

    /// `x` `[rows, cols]` rotated as by [`Kernels::rotated`], then its transpose quantized under
    /// `q`. With `one_pass` (the block-scaled formats' rotations of 16), one launch rotates and
    /// quantizes without writing the rotated tensor, and with `sums` also writes the row sums of
    /// the unrotated, masked xᵀ per chunk of the batch, which `col_sum`'s second level then adds
    /// (`col_sum`'s bits: a layer's bias gradient); a format with a tensor-wide scale (NVFP4)
    /// takes one launch before it for the rotated tensor's maximum. Without, the rotation is
    /// written, and with a tensor-wide scale it also writes the rotated tensor's maximum, so the
    /// quantizer needs no reduction launch of its own. Same bits either way. With `input_max` and
    /// a rotation, it also returns `x`'s own maximum (as read, masked), reduced in the rotation's
    /// (or the maxima's) launch, for a product that quantizes `x` unrotated with a tensor-wide
    /// scale. Training asks for `one_pass` where [`Kernels::rotates_in_one_pass`] says so, unless
    /// [`crate::plan::PlanOptions::unfused`]; asked elsewhere, it is an error. Without it, `sums`
    /// come from the rotation's launch where [`Kernels::sums_in_rotation`] says so (the same
    /// chunks, finished by `col_sum`'s second level; the rotated tensor's maximum is then
    /// reduced too), and are an error elsewhere. With `unrotated` (where
    /// [`Kernels::takes_unrotated`] says so, `one_pass` asked), the one launch also
    /// quantizes `x` itself under that scheme, read through the same mask (NVFP4's with x's own
    /// maximum, reduced in the maxima's launch): the third output, the bits of
    /// [`Quantizer::quantize`] (masked, or with that maximum) in the launch of xᵀ's.
    #[allow(clippy::too_many_arguments)]
    pub fn rotated_transposed(
        &self,
        gpu: &Gpu,
        rec: &mut impl Record,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        rot: Option<(u32, u32)>,
        mask: Option<&GpuBuffer<f32>>,
        label: &str,
        q: QuantScheme,
        input_max: bool,
        sums: Option<&GpuBuffer<f32>>,
        one_pass: bool,
        unrotated: Option<QuantScheme>,
    ) -> Result<(QuantizedTensor, Option<GpuBuffer<u32>>, Option<QuantizedTensor>)> {
        if let Some(u) = unrotated.filter(|&u| !(one_pass && Self::takes_unrotated(gpu, rows, cols, rot, q, u))) {
            return Err(Error::InvalidArgument(format!(
                "{label}: x's own {} {} over [{rows}, {cols}] takes no launch of its rotated transpose ({} {}, \
                 rotated by {rot:?}, one launch: {one_pass})",
                u.format, u.granularity, q.format, q.granularity
            )));
        }
        // NVFP4's x quantized in the launch takes x's maximum from the maxima's launch.
        let input_max = input_max || unrotated.is_some_and(|u| u.format.needs_tensor_amax());
        if one_pass {
            let lt = QuantLayout::new(cols, rows, q.format, q.granularity)?;
            let Some((block, signs)) = rot.filter(|&(b, _)| Quantizer::rotates_transposed(&lt, b)) else {
                return Err(Error::InvalidArgument(format!(
                    "{label}: no one-launch rotated quantizer for {} {} over [{rows}, {cols}] rotated by {rot:?}",
                    q.format, q.granularity
                )));
            };
            let needs = q.format.needs_tensor_amax();
            let amax = if needs || input_max { Some(rec.scratch::<u32>(gpu, "rotated amax", 1)?) } else { None };
            let in_amax = if input_max { Some(rec.scratch::<u32>(gpu, "unrotated amax", 1)?) } else { None };
            if let Some(a) = &amax {
                self.hadamard.encode_maxima(
                    gpu,
                    rec,
                    x,
                    (rows, cols),
                    block,
                    Axis::Rows,
                    signs,
                    mask,
                    a,
                    in_amax.as_ref(),
                )?;
            }
            // The row sums come per chunk of the batch, which col_sum's second level adds.
            let chunks = HadamardQuantizeTranspose::sum_chunks(rows);
            let partial = match sums {
                Some(_) if chunks > 1 => Some(rec.scratch::<f32>(gpu, "rotated sums", chunks * cols)?),
                _ => None,
            };
            let extras =
                RotatedExtras { mask, tensor_amax: amax.as_ref().filter(|_| needs), sums: partial.as_ref().or(sums) };
            let t = GpuTensor::from_buffer(x.clone(), &[rows, cols])?;
            let (qt, qx) = match unrotated {
                Some(u) => {
                    let amax_x = in_amax.as_ref().filter(|_| u.format.needs_tensor_amax());
                    let (qt, qx) =
                        self.qz.quantize_rotated_transposed_both(gpu, rec, &t, (q, u), signs, extras, amax_x)?;
                    (qt, Some(qx))
                }
                None => (self.qz.quantize_rotated_transposed(gpu, rec, &t, q, signs, 1, extras)?, None),
            };
            if let (Some(p), Some(s)) = (&partial, sums) {
                self.colsum.encode_finish(gpu, rec, p, rows, cols, s)?;
            }
            return Ok((qt, in_amax, qx));
        }
        if sums.is_some() && !self.sums_in_rotation(cols, rot) {
            return Err(Error::InvalidArgument(format!(
                "{label}: the row sums come with the one-launch rotated quantizer, or a rotation by 16 on a CPU \
                 adapter's layouts ({} {} over [{rows}, {cols}] rotated by {rot:?})",
                q.format, q.granularity
            )));
        }
        // The rotation writes the sums per chunk of the batch, which col_sum's second level adds;
        // it writes them only beside the rotated tensor's maximum, asked for them where the format
        // needs none.
        let chunks = HadamardQuantizeTranspose::sum_chunks(rows);
        let partial = match sums {
            Some(_) if chunks > 1 => Some(rec.scratch::<f32>(gpu, "rotation sums", chunks * cols)?),
            _ => None,
        };
        let maxima = (q.format.needs_tensor_amax() || input_max || sums.is_some(), input_max);
        let (r, amax, in_amax) =
            self.rotate(gpu, rec, x, (rows, cols), rot, mask, label, maxima, partial.as_ref().or(sums))?;
        if let (Some(p), Some(s)) = (&partial, sums) {
            self.colsum.encode_finish(gpu, rec, p, rows, cols, s)?;
        }
        let t = GpuTensor::from_buffer(r, &[rows, cols])?;
        let q = match amax.filter(|_| q.format.needs_tensor_amax()) {
            Some(a) => self.qz.quantize_transposed_with_amax(gpu, rec, &t, q, &a)?,
            None => self.qz.quantize_transposed(gpu, rec, &t, q)?,
        };
        Ok((q, in_amax, None))
    }

    /// Whether [`Kernels::rotated_transposed`] rotates and quantizes `x` `[rows, cols]` under `q`
    /// in one launch (and so can also write its row sums): a rotation the one-launch kernel takes
    /// ([`Quantizer::rotates_transposed`]), and for a format with a tensor-wide scale (NVFP4) a
    /// GPU. NVFP4 needs the rotated tensor's maximum before its first block, so its one launch
    /// comes after a pass that rotates x for the maximum alone, and the rotation is computed
    /// twice where the chain computes it once and stores it: on a GPU, where the chain's store and
    /// read of the rotated tensor (and col_sum's reads) are the cost, the fused path is expected
    /// to win (not measured: no GPU was lent since it was written); on a CPU adapter, where the
    /// arithmetic is, it lost (llvmpipe, `resnet20` batch 16 `profile_step --schemes nvfp4`: the
    /// rotations, quantizers and col_sum of the weight gradients 193 ms a step against the chain's
    /// 158), so there NVFP4 keeps the chain. The MX formats need no maximum first: one launch
    /// everywhere (there 118 against 119 ms a step, 60 launches fewer).
    pub fn rotates_in_one_pass(gpu: &Gpu, rows: usize, cols: usize, rot: Option<(u32, u32)>, q: QuantScheme) -> bool {
        match rot {
            Some((block, _)) if !(q.format.needs_tensor_amax() && gpu.cpu_layouts()) => {
                QuantLayout::new(cols, rows, q.format, q.granularity)
                    .is_ok_and(|l| Quantizer::rotates_transposed(&l, block))
            }
            _ => false,
        }
    }

    /// Whether [`Kernels::rotated_transposed`]'s one launch that rotates and quantizes xᵀ (`x`
    /// `[rows, cols]`) under `q` also takes x itself under `unrotated`
    /// ([`Quantizer::rotates_transposed_both`]: the same block-scaled format; on an adapter that
    /// binds the launch's storage buffers). Training asks for it where it takes that one launch
    /// ([`Kernels::rotates_in_one_pass`]).
    pub fn takes_unrotated(
        gpu: &Gpu,
        rows: usize,
        cols: usize,
        rot: Option<(u32, u32)>,
        q: QuantScheme,
        unrotated: QuantScheme,
    ) -> bool {
        let Some((block, _)) = rot else {
            return false;
        };
        match (
            QuantLayout::new(cols, rows, q.format, q.granularity),
            QuantLayout::new(rows, cols, unrotated.format, unrotated.granularity),
        ) {
            (Ok(lt), Ok(l)) => Quantizer::rotates_transposed_both(gpu, &lt, block, &l),
            _ => false,
        }
    }

    /// Whether [`Kernels::rotated_transposed`]'s two-launch chain (the rotation written, then
    /// quantized) writes the row sums of xᵀ (`x` `[rows, cols]`) in the rotation's launch: a
    /// rotation by 16 on the per-thread path ([`Hadamard::writes_sums`]: CPU adapters).
    pub fn sums_in_rotation(&self, cols: usize, rot: Option<(u32, u32)>) -> bool {
        rot.is_some_and(|(block, _)| self.hadamard.writes_sums(cols, block, Axis::Rows))
    }

    /// Both of the above: the rotation, and with `maxima` = (output, input) the rotated tensor's
    /// maximum and x's own (none without a rotation), and with `sums` x's column sums as the
    /// rotation writes them ([`RotateExtras::sums`]).
    #[allow(clippy::too_many_arguments)]
    fn rotate(
        &self,
        gpu: &Gpu,
        rec: &mut impl Record,
        x: &GpuBuffer<f32>,
        shape: (usize, usize),
        rot: Option<(u32, u32)>,
        mask: Option<&GpuBuffer<f32>>,
        label: &str,
        (out_max, in_max): (bool, bool),
        sums: Option<&GpuBuffer<f32>>,
    ) -> Result<(GpuBuffer<f32>, Option<Amax>, Option<Amax>)> {
        let Some((b, signs)) = rot else {
            if mask.is_some() {
                return Err(Error::InvalidArgument(format!("{label}: a ReLU mask without a rotation to read it")));
            }
            return Ok((x.clone(), None, None));
        };
        let r = rec.scratch::<f32>(gpu, label, shape.0 * shape.1)?;
        let amax = if out_max || in_max { Some(rec.scratch::<u32>(gpu, "rotated amax", 1)?) } else { None };
        let in_amax = if in_max { Some(rec.scratch::<u32>(gpu, "unrotated amax", 1)?) } else { None };
        let extras = RotateExtras { mask, amax: amax.as_ref(), input_amax: in_amax.as_ref(), sums };
        self.hadamard.encode_with(gpu, rec, x, &r, shape, b, Axis::Rows, signs, extras)?;
        Ok((r, amax, in_amax))
    }

    /// `c ← epilogue(A·Bᵀ)` for packed operands, with whichever kernel multiplies their formats.
    pub fn packed(
        &self,
        gpu: &Gpu,
        rec: &mut impl Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.packed_batched(gpu, rec, a, b, 1, epi, c)
    }

    /// `batches` products `c[i] ← epilogue(A[i]·B[i]ᵀ)` of stacked packed operands (see
    /// [`crate::kernels::gemm_int::GemmInt::encode_batched`]), with whichever kernel multiplies
    /// their formats.
    #[allow(clippy::too_many_arguments)]
    pub fn packed_batched(
        &self,
        gpu: &Gpu,
        rec: &mut impl Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let key = (a.layout.format, b.layout.format);
        if key.0.is_fp8() {
            cached(&self.fp8, key, || GemmFp8::new(gpu, key.0, key.1))?.encode_batched(gpu, rec, a, b, batches, epi, c)
        } else {
            cached(&self.int, key, || GemmInt::new(gpu, key.0, key.1))?.encode_batched(gpu, rec, a, b, batches, epi, c)
        }
    }

    /// Tunes every integer GEMM's shape classes that its products met untuned
    /// ([`GemmInt::tune_untuned`]: among the paths with each product's untuned bits). Returns how
    /// many it tuned.
    pub fn tune_int(&self, gpu: &Gpu) -> Result<usize> {
        self.int_kernels().iter().map(|k| k.tune_untuned(gpu)).sum()
    }

    /// What every integer GEMM's tuning timed ([`GemmInt::tunings`]), kernel by kernel.
    pub fn int_tunings(&self) -> Vec<crate::kernels::gemm_int::Tuning> {
        self.int_kernels().iter().flat_map(|k| k.tunings()).collect()
    }

    /// The integer GEMMs built so far (taken out of the lock: tuning submits and waits).
    fn int_kernels(&self) -> Vec<Arc<GemmInt>> {
        self.int.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Whether [`Kernels::packed_col2im`] runs a convolution's input gradient from operands of
    /// layouts `la` (dY, `samples` stacked) and `lb` (Wᵀ): on a CPU adapter with 8-lane subgroups
    /// (where the GEMMs run their lanes kernels), for integer formats that
    /// [`GemmIntCol2im::fits_layouts`] or FP8 ones of one sample, any stride (the kernels group a
    /// tile's pixels by the taps that reach them).
    pub fn folds(&self, gpu: &Gpu, la: &QuantLayout, lb: &QuantLayout, samples: u32) -> bool {
        let (fa, fb) = (la.format, lb.format);
        GemmF32Lanes::chosen(gpu)
            && match (fa.is_fp8(), fb.is_fp8()) {
                (true, true) => samples == 1,
                (false, false) => {
                    INT_FORMATS.contains(&fa)
                        && INT_FORMATS.contains(&fb)
                        && GemmIntCol2im::fits_layouts(la, lb, samples)
                }
                _ => false,
            }
    }

    /// The f32 counterpart of [`Kernels::folds`] for convolution `g` with `k` output channels:
    /// [`GemmF32Col2im`] where the GEMMs run their lanes kernels, with `k` and the input channels
    /// multiples of 4.
    pub fn folds_f32(&self, g: &ConvGeom, k: usize) -> Option<&GemmF32Col2im> {
        self.f32_col2im.as_ref().filter(|_| GemmF32Col2im::fits(g, k))
    }

    /// The TinyScript counterpart of [`Kernels::folds_f32`] (dY coded, W in f32):
    /// [`GemmLevelsCol2im`] under the same conditions.
    pub fn folds_levels(&self, g: &ConvGeom, k: usize) -> Option<&GemmLevelsCol2im> {
        self.levels_col2im.as_ref().filter(|_| GemmLevelsCol2im::fits(g, k))
    }

    /// `dx ← col2im(A·Bᵀ)` for convolution `g` in one launch ([`GemmIntCol2im`] or
    /// [`GemmFp8Col2im`]; where [`Kernels::folds`]).
    #[allow(clippy::too_many_arguments)]
    pub fn packed_col2im(
        &self,
        gpu: &Gpu,
        rec: &mut impl Record,
        g: &ConvGeom,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        let key = (a.layout.format, b.layout.format);
        if key.0.is_fp8() {
            cached(&self.fp8_col2im, key, || GemmFp8Col2im::new(gpu, key.0, key.1))?.encode(gpu, rec, g, a, b, dx)
        } else {
            cached(&self.int_col2im, key, || GemmIntCol2im::new(gpu, key.0, key.1))?.encode(gpu, rec, g, a, b, dx)
        }
    }
}

/// The kernel of `map` for `key`, built by `build` the first time.
fn cached<T>(
    map: &Mutex<HashMap<(Format, Format), Arc<T>>>,
    key: (Format, Format),
    build: impl FnOnce() -> Result<T>,
) -> Result<Arc<T>> {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = m.get(&key) {
        return Ok(k.clone());
    }
    let k = Arc::new(build()?);
    m.insert(key, k.clone());
    Ok(k)
}
