//! The three products of a GEMM layer (Linear, and Conv after im2col), each run as its
//! [`ProductPolicy`] says: `Y = epilogue(X·Wᵀ)` with bias and ReLU fused, `dW = dYᵀ·X`,
//! `dX = dY·W`. X is `[rows, k]`, W `[n, k]` (parameter 0 of the node), the bias `[n]`
//! (parameter 1, where the layer has one). The forward keeps, for the weight gradient, X in the
//! form that product's B operand takes (f32, packed along the batch, rounded, or TinyScript
//! codes), so a quantized step stores its activations quantized.

use super::kernels::Kernels;
use super::op::{he_bound, Cx, GemmSite, Init, NodeCx, ParamKind, ParamSpec};
use super::policy::{LevelTableId, Operand, Product, ProductPolicy};
use crate::format::Format;
use crate::kernels::gemm::Epilogue;
use crate::kernels::gemm_f32::GemmShape;
use crate::kernels::im2col::ConvGeom;
use crate::kernels::quantize_fused::ReducePath;
use crate::kernels::quantize_transpose_fused::QuantizeTransposeFused;
use crate::kernels::tinyscript::TinyScriptTensor;
use crate::quant::{QuantizedTensor, Quantizer};
use crate::scheme::{Granularity, QuantLayout, QuantScheme, Rounding};
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::tinyscript::LevelTable;
use crate::{Error, Record, Result};

/// The parameters of a GEMM layer with `n` outputs over `k` inputs: the weight `[n, k]`
/// (He-uniform, decayed) and, with `bias`, the bias `[n]` (zeros).
pub(crate) fn params(n: usize, k: usize, relu: bool, bias: bool) -> Vec<ParamSpec> {
    let weight = ParamSpec {
        len: n * k,
        init: Init::Uniform { bound: he_bound(k, relu) },
        kind: ParamKind::Trainable { weight_decay: true },
        exports: vec![("weight".into(), vec![n, k], 0)],
    };
    let bias = bias.then(|| ParamSpec {
        len: n,
        init: Init::Values(vec![0.0; n]),
        kind: ParamKind::Trainable { weight_decay: false },
        exports: vec![("bias".into(), vec![n], 0)],
    });
    std::iter::once(weight).chain(bias).collect()
}

/// X as the weight gradient will read it.
pub(crate) enum SavedX {
    /// f32, `[rows, k]`, or `[k, rows]` when `transposed` (a rounded operand).
    F32 { x: GpuBuffer<f32>, transposed: bool },
    /// Packed along the batch: Xᵀ `[k, rows]`.
    Packed(QuantizedTensor),
    /// TinyScript codes of X `[rows, k]` (the forward's own operand).
    Levels(TinyScriptTensor),
}

/// What the backward of a GEMM layer needs.
pub(crate) struct GemmSaved {
    rows: usize,
    k: usize,
    n: usize,
    x: SavedX,
    /// The output, for the ReLU mask (when the layer has one).
    y: Option<GpuBuffer<f32>>,
    /// W's tensor maximum, reduced for the forward's NVFP4 quantizer and read again by the
    /// backward's (W does not change in between).
    w_amax: Option<GpuBuffer<u32>>,
    /// Wᵀ as the input gradient takes it, quantized in the forward's launch for W where one
    /// launch does both ([`Quantizer::quantizes_both_in_one_pass`]).
    wt: Option<QuantizedTensor>,
}

fn site<'a>(node: &'a NodeCx) -> Result<&'a GemmSite<'a>> {
    node.gemm.as_ref().ok_or_else(|| Error::InvalidArgument(format!("{}: a GEMM layer without a precision", node.name)))
}

fn table<'a>(s: &'a GemmSite, id: LevelTableId) -> Result<(&'a LevelTable, &'a GpuBuffer<u32>)> {
    let l = s.levels.ok_or_else(|| Error::InvalidArgument("a TinyScript operand without level tables".into()))?;
    let t = match id {
        LevelTableId::Activation => &l.activation,
        LevelTableId::GradRows => &l.grad_rows,
        LevelTableId::GradCols => &l.grad_cols,
    };
    t.as_ref().map(|(t, b)| (t, b)).ok_or_else(|| Error::InvalidArgument(format!("no {id:?} level table")))
}

/// The rounding of an operand of `product` (its stream is the site's for that product).
fn rounding<R: Record>(cx: &Cx<R>, s: &GemmSite, product: Product, stochastic: bool) -> Rounding {
    let i = match product {
        Product::Forward => 0,
        Product::InputGrad => 1,
        Product::WeightGrad => 2,
    };
    if stochastic {
        Rounding::Stochastic { seed: cx.seed, stream: s.streams[i] }
    } else {
        Rounding::Nearest
    }
}

fn mismatch(product: Product, p: &ProductPolicy) -> Error {
    Error::InvalidArgument(format!("no GEMM runs {product:?} with operands {:?} × {:?}", p.a, p.b))
}

/// The layouts of a `[rows, cols]` tensor under `a` and of its transpose under `t`, where both
/// are valid and in one format (what one launch quantizing both orientations could take).
fn both_layouts(
    (rows, cols): (usize, usize),
    a: (Format, Granularity),
    t: (Format, Granularity),
) -> Option<(QuantLayout, QuantLayout)> {
    if a.0 != t.0 {
        return None;
    }
    Some((QuantLayout::new(rows, cols, a.0, a.1).ok()?, QuantLayout::new(cols, rows, t.0, t.1).ok()?))
}

/// The scheme of a tensor's transpose (`[cols, rows]`, format and granularity `t`, to nearest)
/// where it is quantized in the launch of the tensor's own quantizer (`[rows, cols]` under `a`,
/// the same format: where `one_launch` takes the two layouts); `None` where they take two.
fn both_scheme(
    shape: (usize, usize),
    a: (Format, Granularity),
    t: (Format, Granularity),
    one_launch: impl FnOnce(&QuantLayout, &QuantLayout) -> bool,
) -> Option<QuantScheme> {
    let (l, lt) = both_layouts(shape, a, t)?;
    one_launch(&l, &lt).then_some(QuantScheme { format: t.0, granularity: t.1, rounding: Rounding::Nearest })
}

/// Records the forward product of X (`[rows, k]`) into a new `[rows, n]` output; in training,
/// also what the backward needs. With `unfold` (a convolution), X is the unfolded matrix of that
/// image, not yet written: unfolded here, in one launch with X's quantizer where the adapter
/// takes it ([`Quantizer::unfolds_in_one_pass`]; the same bits; X then written only where read
/// later), by im2col otherwise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<R: Record>(
    cx: &mut Cx<R>,
    node: &NodeCx,
    x: &GpuBuffer<f32>,
    unfold: Option<(&ConvGeom, &GpuBuffer<f32>)>,
    rows: usize,
    k: usize,
    n: usize,
    relu: bool,
) -> Result<(GpuBuffer<f32>, Option<GemmSaved>)> {
    let s = site(node)?;
    let (w, b) = (&node.params[0].value, node.params.get(1).map(|p| &p.value));
    let train = cx.training();
    let p = s.scheme.product(Product::Forward, train);
    let y = cx.scratch::<f32>("layer y", rows * n)?;
    let epi = Epilogue { bias: b, relu, ..Default::default() };
    let (gpu, kk) = (cx.gpu, cx.kernels);
    // The image to unfold with X's quantizer in one launch, or unfolded now.
    let fused_unfold = unfold.filter(|_| match p.a {
        Operand::Packed { format, granularity, .. } => {
            QuantLayout::new(rows, k, format, granularity).is_ok_and(|l| Quantizer::unfolds_in_one_pass(gpu, &l))
        }
        _ => false,
    });
    if let (Some((g, img)), None) = (unfold, fused_unfold) {
        kk.im2col.encode_unfold(gpu, cx.rec, g, img, x)?;
    }
    let mut coded = None;
    let mut w_amax = None;
    let mut w_t = None;
    // X's packed transpose, where X's quantizer made it too.
    let mut x_t = None;
    let wg = s.scheme.product(Product::WeightGrad, train);
    // In training, a convolution's packed Xᵀ (the weight gradient's operand) is formed from its
    // input where the adapter takes that ([`Quantizer::unfolds_transposed`]; the same bits).
    let xt_from_image = match (unfold, wg.b) {
        (Some(_), Operand::Packed { format, granularity, .. }) => {
            train
                && wg.rotation().is_none()
                && QuantLayout::new(k, rows, format, granularity).is_ok_and(|l| Quantizer::unfolds_transposed(gpu, &l))
        }
        _ => false,
    };
    // The fused unfold writes X only where something later reads it: in training, the refit's
    // copy or a weight-gradient operand made from X.
    let keep_x = train && (s.refit.1.is_some() || !xt_from_image);
    // In training, a rotated, packed weight-gradient operand is made first where the forward's X
    // takes a tensor-wide scale (NVFP4): its rotation reads all of X and reduces X's maximum in
    // the same launch, so the forward's quantizer needs no absmax launch (same bits). Where the
    // one launch that rotates and quantizes Xᵀ takes X's own blocks too (the block-scaled
    // formats, unless unfused), X is quantized there, in that launch (same bits).
    let (mut early, mut early_x) = (None, None);
    if let (true, Operand::Packed { format: fa, granularity: ga, .. }, Operand::Packed { format, granularity, .. }) =
        (train, p.a, wg.b)
    {
        let q = QuantScheme { format, granularity, rounding: Rounding::Nearest };
        let rot = wg.rotation();
        let one = !cx.unfused && Kernels::rotates_in_one_pass(gpu, rows, k, rot, q);
        let qx = QuantScheme { format: fa, granularity: ga, rounding: Rounding::Nearest };
        let with_x =
            (one && fused_unfold.is_none() && Kernels::takes_unrotated(gpu, rows, k, rot, q, qx)).then_some(qx);
        // (X's maximum for NVFP4: reduced in the rotation's maxima launch.)
        let amax = fa.needs_tensor_amax();
        if rot.is_some() && (amax || with_x.is_some()) {
            let (qt, a, qx) =
                kk.rotated_transposed(gpu, cx.rec, x, rows, k, rot, None, "rotated x", q, amax, None, one, with_x)?;
            early = Some((qt, a));
            early_x = qx;
        }
    }
    match (p.a, p.b) {
        (Operand::F32, Operand::F32) => kk.f32.encode(gpu, cx.rec, x, w, GemmShape::nt(rows, n, k), &epi, &y)?,
        (Operand::Packed { format: fa, granularity: ga, .. }, Operand::Packed { format: fb, granularity: gb, .. }) => {
            let xt = GpuTensor::from_buffer(x.clone(), &[rows, k])?;
            let qs = QuantScheme { format: fa, granularity: ga, rounding: Rounding::Nearest };
            // In training, a dense layer's unrotated Xᵀ for the weight gradient (same format, to
            // nearest) is quantized with X, in X's launch where one launch does both (unless
            // unfused; the same bits).
            let xt_scheme = match wg.b {
                Operand::Packed { format, granularity, .. }
                    if train && !cx.unfused && early.is_none() && unfold.is_none() && wg.rotation().is_none() =>
                {
                    both_scheme((rows, k), (fa, ga), (format, granularity), |l, lt| {
                        Quantizer::quantizes_both_in_one_pass(gpu, l, lt)
                    })
                }
                _ => None,
            };
            // In training, a convolution's Xᵀ formed from its input (same format, to nearest) is
            // quantized with X where the two are quantized together (unless unfused, or X itself
            // is kept; the same bits).
            let unfold_t_scheme = match (fused_unfold, wg.b) {
                (Some((g, _)), Operand::Packed { format, granularity, .. })
                    if xt_from_image && !keep_x && !cx.unfused && early.is_none() =>
                {
                    both_scheme((rows, k), (fa, ga), (format, granularity), |l, lt| {
                        Quantizer::unfolds_both_together(gpu, g, l, lt)
                    })
                }
                _ => None,
            };
            let qa = match (early_x.take(), early.as_ref().and_then(|e| e.1.as_ref()), fused_unfold, xt_scheme) {
                // X quantized in the launch of its rotated transpose.
                (Some(q), _, _, _) => q,
                (None, Some(a), _, _) => kk.qz.quantize_with_amax(gpu, cx.rec, &xt, qs, a)?,
                (None, None, Some((g, img)), _) => match unfold_t_scheme {
                    // A convolution's Xᵀ from its input, with X where the two are quantized together.
                    Some(st) => {
                        let (q, t) = kk.qz.unfold_quantize_both(gpu, cx.rec, g, img, (qs, st))?;
                        x_t = Some(t);
                        q
                    }
                    None => kk.qz.unfold_quantize(gpu, cx.rec, g, img, keep_x.then_some(x), qs)?,
                },
                (None, None, None, Some(st)) => {
                    // (NVFP4, unrotated: X's maximum, then both with it.)
                    let (q, t) = match fa.needs_tensor_amax() {
                        true => {
                            let (q, t, _) = kk.qz.quantize_reducing_amax_both(gpu, cx.rec, &xt, qs, st)?;
                            (q, t)
                        }
                        false => kk.qz.quantize_both(gpu, cx.rec, &xt, qs, st)?,
                    };
                    x_t = Some(t);
                    q
                }
                (None, None, None, None) => kk.qz.quantize(gpu, cx.rec, &xt, qs)?,
            };
            let wt = GpuTensor::from_buffer(w.clone(), &[n, k])?;
            let qs = QuantScheme { format: fb, granularity: gb, rounding: Rounding::Nearest };
            // In training, Wᵀ for the input gradient (same format, to nearest) is quantized with
            // W, in W's launch where one launch does both (unless unfused; the same bits).
            let wt_scheme = match s.scheme.product(Product::InputGrad, true).b {
                Operand::Packed { format, granularity, .. } if train && s.input_grad && !cx.unfused => {
                    both_scheme((n, k), (fb, gb), (format, granularity), |l, lt| {
                        Quantizer::quantizes_both_in_one_pass(gpu, l, lt)
                    })
                }
                _ => None,
            };
            let qw = if fb.needs_tensor_amax() {
                // NVFP4: W's maximum once, for this quantizer and the backward's of Wᵀ (reduced in
                // the quantizer's own launch where W fits one workgroup).
                let (q, a) = match wt_scheme {
                    Some(st) => {
                        let (q, t, a) = kk.qz.quantize_reducing_amax_both(gpu, cx.rec, &wt, qs, st)?;
                        w_t = Some(t);
                        (q, a)
                    }
                    None => kk.qz.quantize_reducing_amax(gpu, cx.rec, &wt, qs)?,
                };
                w_amax = Some(a);
                q
            } else {
                match wt_scheme {
                    Some(st) => {
                        let (q, t) = kk.qz.quantize_both(gpu, cx.rec, &wt, qs, st)?;
                        w_t = Some(t);
                        q
                    }
                    None => kk.qz.quantize(gpu, cx.rec, &wt, qs)?,
                }
            };
            kk.packed(gpu, cx.rec, &qa, &qw, &epi, &y)?;
        }
        (Operand::Levels { table: id, stochastic }, Operand::F32) => {
            // TinyScript: Q(X)·Wᵀ, W [n, k] is op(B) as stored.
            let (t, buf) = table(s, id)?;
            let r = rounding(cx, s, Product::Forward, stochastic);
            let qx = kk.ts.encode_quantize_with(gpu, cx.rec, x, rows, k, false, t, buf, r)?;
            kk.levels.encode(gpu, cx.rec, &qx, w, n, false, &epi, &y)?;
            coded = Some(qx);
        }
        _ => return Err(mismatch(Product::Forward, &p)),
    }
    if !train {
        return Ok((y, None));
    }
    if let Some(dst) = s.refit.1 {
        cx.rec.copy(x.buffer(), 0, dst.buffer(), 0, x.bytes());
    }
    let f32_bytes = x.bytes();
    let saved = match wg.b {
        Operand::F32 => SavedX::F32 { x: x.clone(), transposed: false },
        Operand::Packed { format, granularity, .. } => {
            let qs = QuantScheme { format, granularity, rounding: Rounding::Nearest };
            SavedX::Packed(match (early, x_t.take(), unfold) {
                (Some((q, _)), _, _) => q,
                (None, Some(t), _) => t,
                (None, None, Some((g, img))) if xt_from_image => {
                    kk.qz.unfold_quantize_transposed(gpu, cx.rec, g, img, qs)?
                }
                (None, None, _) => {
                    let rot = wg.rotation();
                    let one = !cx.unfused && Kernels::rotates_in_one_pass(gpu, rows, k, rot, qs);
                    kk.rotated_transposed(gpu, cx.rec, x, rows, k, rot, None, "rotated x", qs, false, None, one, None)?
                        .0
                }
            })
        }
        Operand::Rounded { format } => {
            // The operand a quantized gradient would meet, dequantized: with it the fp32 gradient
            // differs from the quantized one by the gradient quantizer alone.
            let r = kk.rotated(gpu, cx.rec, x, rows, k, wg.rotation(), None, "rotated x")?;
            let src = GpuTensor::from_buffer(r, &[rows, k])?;
            let q = kk.qz.quantize_transposed(gpu, cx.rec, &src, QuantScheme::per_row(format))?;
            SavedX::F32 { x: kk.qz.dequantize(gpu, cx.rec, &q)?.buffer().clone(), transposed: true }
        }
        Operand::Levels { table: LevelTableId::Activation, .. } => {
            SavedX::Levels(coded.ok_or_else(|| mismatch(Product::WeightGrad, &wg))?)
        }
        Operand::Levels { .. } => return Err(mismatch(Product::WeightGrad, &wg)),
    };
    let kept = match &saved {
        SavedX::Packed(q) => q.bytes(),
        SavedX::Levels(t) => t.codes.bytes() + t.scales.bytes(),
        SavedX::F32 { .. } => f32_bytes,
    };
    let mask = if relu { y.bytes() } else { 0 };
    cx.save(kept + mask, f32_bytes + mask);
    Ok((y.clone(), Some(GemmSaved { rows, k, n, x: saved, y: relu.then_some(y), w_amax, wt: w_t })))
}

/// Whether dYᵀ (`[n, rows]`, for dW = dYᵀ·X under `p`) is quantized in one launch that also
/// sums its rows (the bias gradient, bit for bit what col_sum gives), SMP's samples included;
/// col_sum otherwise.
fn fuses_bias(gpu: &crate::Gpu, p: &ProductPolicy, rows: usize, n: usize) -> bool {
    match p.a {
        Operand::Packed { format, granularity, .. } if p.rotation().is_none() => {
            QuantLayout::new(n, rows, format, granularity).is_ok_and(|l| {
                QuantizeTransposeFused::supports_sums(&l)
                    && QuantizeTransposeFused::preferred(&l, ReducePath::for_adapter(gpu))
            })
        }
        _ => false,
    }
}

/// Where [`backward`] quantizes dYᵀ (`dy` `[rows, n]`, the layer's ReLU `relu`) from its
/// groups' maxima as dY's producer writes them ([`super::op::Op::grad_maxima_wanted`]) —
/// packed, unrotated, no ReLU mask — `Some(granularity)` of dYᵀ's groups: where the two-pass
/// chain would quantize it (the bias summed by col_sum, and a layout of
/// [`Quantizer::transposes_from_maxima`]: the maxima are the chain's first launch), and where
/// the layer has no bias and dY for dX is quantized in the same launch ([`dy_beside_maxima`]:
/// on a GPU's layouts that launch replaces the one-pass quantizers of dYᵀ and of dY); `None`
/// elsewhere and for unfused plans.
pub(crate) fn dy_maxima_wanted<R: Record>(
    cx: &Cx<R>,
    node: &NodeCx,
    rows: usize,
    n: usize,
    relu: bool,
) -> Option<Granularity> {
    let s = node.gemm.as_ref()?;
    let p = s.scheme.product(Product::WeightGrad, true);
    let Operand::Packed { format, granularity, .. } = p.a else { return None };
    if cx.unfused || relu || p.rotation().is_some() {
        return None;
    }
    let lt = QuantLayout::new(n, rows, format, granularity).ok()?;
    let chain = !fuses_bias(cx.gpu, &p, rows, n) && Quantizer::transposes_from_maxima(cx.gpu, &lt);
    let beside = node.params.get(1).is_none() && dy_beside_maxima(cx, s, rows, n).is_some();
    (chain || beside).then_some(lt.granularity)
}

/// dY's scheme for dX (`[rows, n]`) where [`backward`], given dYᵀ's maxima, quantizes dY in the
/// launch that packs dYᵀ from them ([`Quantizer::quantize_grad_both_given_maxima`]): both
/// products packed, dYᵀ unrotated, dY in its format with as many samples, and a pair of layouts
/// that launch takes ([`Quantizer::quantizes_grad_both_given_maxima_in_one_pass`]); `None`
/// elsewhere and for unfused plans.
fn dy_beside_maxima<R: Record>(cx: &Cx<R>, s: &GemmSite, rows: usize, n: usize) -> Option<QuantScheme> {
    let (p, p_dx) = (s.scheme.product(Product::WeightGrad, true), s.scheme.product(Product::InputGrad, true));
    match (p.a, p_dx.a, p_dx.b) {
        (
            Operand::Packed { format, granularity, samples, .. },
            Operand::Packed { format: fd, granularity: gd, stochastic: sd, samples: kd },
            Operand::Packed { .. },
        ) if !cx.unfused && p.rotation().is_none() && kd == samples => {
            let (l, lt) = both_layouts((rows, n), (fd, gd), (format, granularity))?;
            Quantizer::quantizes_grad_both_given_maxima_in_one_pass(cx.gpu, &l, &lt).then(|| QuantScheme {
                format: fd,
                granularity: gd,
                rounding: rounding(cx, s, Product::InputGrad, sd),
            })
        }
        _ => None,
    }
}

/// Records the backward of a GEMM layer from `dy` `[rows, n]`: the weight and bias gradients
/// into the node's gradient buffers, and, when `need_dx`, dX `[rows, k]` — or, for a convolution
/// (`fold`: its geometry, X the unfolded input), dX of the image, the columns' gradient folded
/// back by col2im (in one launch with the product where [`Kernels::folds`](super::kernels::Kernels::folds)).
pub(crate) fn backward<R: Record>(
    cx: &mut Cx<R>,
    node: &NodeCx,
    saved: GemmSaved,
    dy: &GpuBuffer<f32>,
    need_dx: bool,
    fold: Option<&ConvGeom>,
) -> Result<Option<GpuBuffer<f32>>> {
    let s = site(node)?;
    let GemmSaved { rows, k, n, x, y, w_amax, wt: saved_wt } = saved;
    let (gpu, kk) = (cx.gpu, cx.kernels);
    let w = &node.params[0].value;
    let dw = node.params[0].grad("gemm")?;
    let none = Epilogue::default();
    // dW = dYᵀ·X.
    let p = s.scheme.product(Product::WeightGrad, true);
    // dYᵀ's maxima, written by dY's producer ([`dy_maxima_wanted`]): dYᵀ is packed from them.
    let given = cx.take_grad_maxima();
    // (Given maxima are wanted only where the layer has no bias to sum.)
    let fused_bias = fuses_bias(gpu, &p, rows, n) && given.is_none();
    if given.is_some() && dy_maxima_wanted(cx, node, rows, n, y.is_some()).is_none() {
        return Err(Error::InvalidArgument(format!(
            "{}: dYᵀ's maxima were given to a weight gradient that does not quantize dYᵀ from them",
            node.name
        )));
    }
    // Under ReLU, the gradient's readers apply the mask Y > 0 themselves where every one of them
    // can: the one-pass quantizers (dYᵀ with its sums, and dY for dX, NVFP4's maximum reduced
    // masked), TinyScript's quantizer (dYᵀ and dY, col_sum masked beside them), and for a rotated
    // dYᵀ (the block-scaled presets) the rotation and col_sum. The bits of reading
    // relu_backward's output, without its launch and its [rows, n] output.
    let p_dx = s.scheme.product(Product::InputGrad, true);
    let dx_reads_masked = match (p_dx.a, p_dx.b) {
        (Operand::Packed { format, granularity, .. }, Operand::Packed { .. }) => {
            QuantLayout::new(rows, n, format, granularity).is_ok_and(|l| Quantizer::masks_in_one_pass(&l))
        }
        // TinyScript's quantizer reads the mask in its launch (both orientations).
        (Operand::Levels { .. }, Operand::F32) => true,
        _ => false,
    };
    let dw_reads_masked = fused_bias || matches!(p.a, Operand::Levels { .. });
    let rotated_dw = matches!(p.a, Operand::Packed { .. }) && p.rotation().is_some();
    // A rotated dYᵀ quantized in the launch that rotates it also sums dY's columns (the bias
    // gradient, col_sum's bits) where that kernel takes it: the block-scaled presets' dYᵀ. Where
    // the rotation is written first and quantized after (NVFP4 on a CPU adapter), the rotation's
    // launch sums them where it can ([`Kernels::sums_in_rotation`]).
    let rotated_one_pass = match p.a {
        Operand::Packed { format, granularity, samples: 1, .. } => {
            let q = QuantScheme { format, granularity, rounding: Rounding::Nearest };
            !cx.unfused && Kernels::rotates_in_one_pass(gpu, rows, n, p.rotation(), q)
        }
        _ => false,
    };
    let rotated_sums = rotated_one_pass
        || (matches!(p.a, Operand::Packed { samples: 1, .. }) && !cx.unfused && kk.sums_in_rotation(n, p.rotation()));
    // The bias gradient, where the layer has a bias. Without one, nothing sums dY's columns but
    // the one-launch quantizers of dYᵀ that always do (`fused_bias`): they run as they would
    // with a bias (the same kernels, so the same bits of dW and dX) and write the sums to
    // scratch.
    let db = match node.params.get(1) {
        Some(b) => Some(b.grad("gemm")?.clone()),
        None if fused_bias => Some(cx.scratch::<f32>("unused bias sums", n)?),
        None => None,
    };
    let mask =
        y.as_ref().filter(|_| s.refit.0.is_none() && (dw_reads_masked || rotated_dw) && (!need_dx || dx_reads_masked));
    let g = match (&y, mask) {
        (Some(y), None) => {
            let g = cx.scratch::<f32>("relu dy", rows * n)?;
            kk.relu.encode(gpu, cx.rec, y, dy, &g)?;
            g
        }
        _ => dy.clone(),
    };
    if let Some(dst) = s.refit.0 {
        cx.rec.copy(g.buffer(), 0, dst.buffer(), 0, g.bytes());
    }
    match (&db, mask) {
        (Some(_), _) if fused_bias || rotated_sums => {}
        (Some(db), Some(m)) => kk.colsum.encode_masked(gpu, cx.rec, &g, m, rows, n, db)?,
        (Some(db), None) => kk.colsum.encode(gpu, cx.rec, &g, rows, n, db)?,
        (None, _) => {}
    }
    // Where a launch below writes dY's column sums, `db` is there.
    let sums = || db.as_ref().ok_or_else(|| Error::InvalidArgument(format!("{}: no buffer for dY's sums", node.name)));
    // The rotation reads the mask where there is one; without a rotation the quantizer does.
    let rot_mask = mask.filter(|_| rotated_dw);
    // An NVFP4 dY for dX takes its tensor maximum from dYᵀ's rotation (which reads all of dY, as
    // masked as the dX quantizer reads it) instead of an absmax launch.
    let dx_wants_max = need_dx
        && matches!((p_dx.a, p_dx.b), (Operand::Packed { format, .. }, Operand::Packed { .. }) if format.needs_tensor_amax());
    let mut dy_amax = None;
    // dY for dX and dYᵀ for dW, with the bias gradient, ReLU's mask and SMP's samples, in one
    // launch where it takes both (unless unfused; the same bits): the schemes of dY and dYᵀ and
    // the samples.
    let grad_both = match (p.a, p_dx.a, p_dx.b) {
        (
            Operand::Packed { format, granularity: gt, stochastic: st, samples },
            Operand::Packed { format: fd, granularity: gd, stochastic: sd, samples: kd },
            Operand::Packed { .. },
        ) if need_dx && fused_bias && !cx.unfused && kd == samples => {
            let fits = both_layouts((rows, n), (fd, gd), (format, gt))
                .is_some_and(|(l, lt)| Quantizer::quantizes_grad_both_in_one_pass(gpu, &l, &lt));
            fits.then(|| {
                let d = QuantScheme { format, granularity: gd, rounding: rounding(cx, s, Product::InputGrad, sd) };
                let t = QuantScheme { format, granularity: gt, rounding: rounding(cx, s, Product::WeightGrad, st) };
                (d, t, samples)
            })
        }
        _ => None,
    };
    // dY quantized with dYᵀ, for dX below.
    let mut early_qg: Option<QuantizedTensor> = None;
    match (p.a, &x) {
        (Operand::F32, SavedX::F32 { x, transposed }) => {
            // A rotated operand (the meter's reference) meets the gradient rotated the same way.
            let block = p.rotation().filter(|_| *transposed);
            let g_dw = kk.rotated(gpu, cx.rec, &g, rows, n, block, None, "rotated dy")?;
            let shape = GemmShape { m: n, n: k, k: rows, trans_a: true, trans_b: !*transposed };
            kk.f32.encode(gpu, cx.rec, &g_dw, x, shape, &none, dw)?;
        }
        (Operand::Packed { format, granularity, stochastic, samples }, SavedX::Packed(qx)) => {
            let q = QuantScheme { format, granularity, rounding: rounding(cx, s, Product::WeightGrad, stochastic) };
            let qgt = if let Some((sd, st, k)) = grad_both {
                let gt = GpuTensor::from_buffer(g.clone(), &[rows, n])?;
                let (qg, qgt) = kk.qz.quantize_grad_both(gpu, cx.rec, &gt, mask, (sd, st), k, sums()?)?;
                early_qg = Some(qg);
                qgt
            } else if let Some(m) = &given {
                // Unrotated, unmasked, no sums (dy_maxima_wanted): dYᵀ packed from the maxima (the
                // chain's second launch) over dY, every sample; dY for dX in the same launch where
                // it takes both (the same bits).
                let gt = GpuTensor::from_buffer(g.clone(), &[rows, n])?;
                let with_dy = dy_beside_maxima(cx, s, rows, n).filter(|_| need_dx && mask.is_none());
                match with_dy {
                    Some(d) => {
                        let (qg, qgt) = kk.qz.quantize_grad_both_given_maxima(gpu, cx.rec, &gt, (d, q), samples, m)?;
                        early_qg = Some(qg);
                        qgt
                    }
                    None => kk.qz.quantize_transposed_given_maxima(gpu, cx.rec, &gt, q, samples, m)?,
                }
            } else if samples > 1 || fused_bias {
                let g_rot = kk.rotated(gpu, cx.rec, &g, rows, n, p.rotation(), rot_mask, "rotated dy")?;
                let gt = GpuTensor::from_buffer(g_rot, &[rows, n])?;
                match (fused_bias, samples, mask) {
                    (true, 1, Some(m)) => {
                        kk.qz.quantize_transposed_with_sums_masked(gpu, cx.rec, &gt, m, q, sums()?)?
                    }
                    (true, 1, None) => kk.qz.quantize_transposed_with_sums(gpu, cx.rec, &gt, q, sums()?)?,
                    (true, _, m) => {
                        kk.qz.quantize_transposed_samples_with_sums(gpu, cx.rec, &gt, m, q, samples, sums()?)?
                    }
                    (false, _, _) => kk.qz.quantize_transposed_samples(gpu, cx.rec, &gt, q, samples)?,
                }
            } else {
                // dY for dX, quantized in the launch that rotates and quantizes dYᵀ where that
                // launch takes it (the same block-scaled format, one sample; the same bits).
                let with_dy = match (p_dx.a, p_dx.b) {
                    (
                        Operand::Packed { format: fd, granularity: gd, stochastic: sd, samples: 1 },
                        Operand::Packed { .. },
                    ) if need_dx && rotated_one_pass => {
                        let r = rounding(cx, s, Product::InputGrad, sd);
                        let d = QuantScheme { format: fd, granularity: gd, rounding: r };
                        Kernels::takes_unrotated(gpu, rows, n, p.rotation(), q, d).then_some(d)
                    }
                    _ => None,
                };
                let (q, a, qd) = kk.rotated_transposed(
                    gpu,
                    cx.rec,
                    &g,
                    rows,
                    n,
                    p.rotation(),
                    rot_mask,
                    "rotated dy",
                    q,
                    dx_wants_max,
                    db.as_ref().filter(|_| rotated_sums),
                    rotated_one_pass,
                    with_dy,
                )?;
                dy_amax = a;
                early_qg = qd;
                q
            };
            kk.packed(gpu, cx.rec, &qgt, qx, &none, dw)?;
        }
        (Operand::Levels { table: id, stochastic }, saved_x) => {
            // dW = Q(dYᵀ)·X: dY [rows, n] read transposed; X (f32 or codes) is op(B) stored [K, N].
            let (t, buf) = table(s, id)?;
            let r = rounding(cx, s, Product::WeightGrad, stochastic);
            let qgt = kk.ts.encode_quantize_under(gpu, cx.rec, &g, mask, (n, rows, true), t, buf, r)?;
            match saved_x {
                SavedX::F32 { x, transposed: false } => kk.levels.encode(gpu, cx.rec, &qgt, x, k, true, &none, dw)?,
                SavedX::Levels(qx) => {
                    let both =
                        s.levels.and_then(|l| l.both.as_ref()).ok_or_else(|| mismatch(Product::WeightGrad, &p))?;
                    kk.levels.encode_coded_tables(gpu, cx.rec, &qgt, qx, true, both, &none, dw)?
                }
                _ => return Err(mismatch(Product::WeightGrad, &p)),
            }
        }
        _ => return Err(mismatch(Product::WeightGrad, &p)),
    }
    if !need_dx {
        return Ok(None);
    }
    // dX = dY·W: W stored [n, k] is op(B) as [K, N]. A convolution's f32 or packed product and
    // col2im run as one launch where the adapter takes that (the same bits, no dcols).
    let p = p_dx;
    let fused_fold = fold.filter(|_| !cx.unfused).filter(|&g| match (p.a, p.b) {
        (Operand::F32, Operand::F32) => kk.folds_f32(g, n).is_some(),
        (Operand::Levels { .. }, Operand::F32) => kk.folds_levels(g, n).is_some(),
        (Operand::Packed { format, granularity, samples, .. }, Operand::Packed { format: fb, granularity: gb, .. }) => {
            match (QuantLayout::new(rows, n, format, granularity), QuantLayout::new(k, n, fb, gb)) {
                (Ok(la), Ok(lb)) => kk.folds(gpu, &la, &lb, samples),
                _ => false,
            }
        }
        _ => false,
    });
    let dx = match fused_fold {
        Some(g) => cx.scratch::<f32>("conv dx", g.input_len())?,
        None => cx.scratch::<f32>("dx", rows * k)?,
    };
    match (p.a, p.b) {
        (Operand::F32, Operand::F32) => match fused_fold.and_then(|geom| Some((geom, kk.folds_f32(geom, n)?))) {
            Some((geom, fused)) => fused.encode(gpu, cx.rec, geom, n, &g, w, &dx)?,
            None => {
                let shape = GemmShape { m: rows, n: k, k: n, trans_a: false, trans_b: true };
                kk.f32.encode(gpu, cx.rec, &g, w, shape, &none, &dx)?;
            }
        },
        (Operand::F32, Operand::Rounded { format }) => {
            // Wᵀ [k, n] quantized per row and dequantized is op(B) as stored.
            let wt = GpuTensor::from_buffer(w.clone(), &[n, k])?;
            let q = kk.qz.quantize_transposed(gpu, cx.rec, &wt, QuantScheme::per_row(format))?;
            let wr = kk.qz.dequantize(gpu, cx.rec, &q)?;
            let shape = GemmShape { m: rows, n: k, k: n, trans_a: false, trans_b: false };
            kk.f32.encode(gpu, cx.rec, &g, wr.buffer(), shape, &none, &dx)?;
        }
        (
            Operand::Packed { format, granularity, stochastic, samples },
            Operand::Packed { format: fb, granularity: gb, .. },
        ) => {
            let gt = GpuTensor::from_buffer(g.clone(), &[rows, n])?;
            let q = QuantScheme { format, granularity, rounding: rounding(cx, s, Product::InputGrad, stochastic) };
            let qg = match early_qg {
                Some(q) => q,
                None => match (mask, samples, &dy_amax) {
                    (Some(m), 1, Some(a)) => kk.qz.quantize_masked_with_amax(gpu, cx.rec, &gt, m, q, a)?,
                    (None, 1, Some(a)) => kk.qz.quantize_with_amax(gpu, cx.rec, &gt, q, a)?,
                    (Some(m), 1, None) => kk.qz.quantize_masked(gpu, cx.rec, &gt, m, q)?,
                    (None, 1, None) => kk.qz.quantize(gpu, cx.rec, &gt, q)?,
                    (Some(m), _, _) => kk.qz.quantize_samples_masked(gpu, cx.rec, &gt, m, q, samples)?,
                    (None, _, _) => kk.qz.quantize_samples(gpu, cx.rec, &gt, q, samples)?,
                },
            };
            let wt = GpuTensor::from_buffer(w.clone(), &[n, k])?;
            let qs = QuantScheme { format: fb, granularity: gb, rounding: Rounding::Nearest };
            let qwt = match (saved_wt, &w_amax) {
                (Some(q), _) => q,
                (None, Some(a)) if fb.needs_tensor_amax() => {
                    kk.qz.quantize_transposed_with_amax(gpu, cx.rec, &wt, qs, a)?
                }
                _ => kk.qz.quantize_transposed(gpu, cx.rec, &wt, qs)?,
            };
            match fused_fold {
                Some(geom) => kk.packed_col2im(gpu, cx.rec, geom, &qg, &qwt, &dx)?,
                None => kk.packed(gpu, cx.rec, &qg, &qwt, &none, &dx)?,
            }
        }
        (Operand::Levels { table: id, stochastic }, Operand::F32) => {
            let (t, buf) = table(s, id)?;
            let r = rounding(cx, s, Product::InputGrad, stochastic);
            let qg = kk.ts.encode_quantize_under(gpu, cx.rec, &g, mask, (rows, n, false), t, buf, r)?;
            match fused_fold.and_then(|geom| Some((geom, kk.folds_levels(geom, n)?))) {
                Some((geom, fused)) => fused.encode(gpu, cx.rec, geom, &qg, w, &dx)?,
                None => kk.levels.encode(gpu, cx.rec, &qg, w, k, true, &none, &dx)?,
            }
        }
        _ => return Err(mismatch(Product::InputGrad, &p)),
    }
    match (fold, fused_fold) {
        (Some(g), None) => {
            let img = cx.scratch::<f32>("conv dx", g.input_len())?;
            kk.im2col.encode_fold(gpu, cx.rec, g, &dx, &img)?;
            Ok(Some(img))
        }
        _ => Ok(Some(dx)),
    }
}
