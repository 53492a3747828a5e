//! Training schemes: which precision each layer's forward and backward products run in.
//!
//! Every trainable layer computes three products (forward `Y = X·Wᵀ`, input gradient
//! `dX = dY·W`, weight gradient `dW = dYᵀ·X`). A [`LayerScheme`] picks the forward operands'
//! format (X and W, round-to-nearest) and the neural gradient's format (dY, stochastic by
//! default), plus SMP samples and a block-Hadamard rotation for the gradient. Master weights
//! stay fp32.
//!
//! Presets ([`TrainScheme::preset`]):
//! | name | forward (X, W) | gradient (dY) | GEMMs |
//! |---|---|---|---|
//! | `fp32` | fp32 | fp32 | f32 |
//! | `int8` | int8, per row | int8, per row (see below) | `dot4I8Packed` |
//! | `fp8` | fp8-e4m3, per row | fp8-e5m2, per row | FP8 decode + f32 |
//! | `luq4` | int4, per row | LUQ log4, per row | `dot4I8Packed` (log4 levels as shifts) |
//! | `int4`, `int3`, `int2` | int4 / int3 / int2 (ternary), per row | int8, per row | `dot4I8Packed` |
//! | `tinyscript[B]` | X: TinyScript B-bit (default 4; unsigned after a ReLU), fitted levels, per row; W: fp32 | TinyScript B-bit, fitted, per row | `gemm_levels` |
//! | `levels[B]` | the same codes with evenly spaced levels | the same, evenly spaced | `gemm_levels` |
//! | `mxfp8` | MXFP8 (E4M3, power-of-two scale per 32) | MXFP8, stochastic | FP8 decode + f32 |
//! | `mxfp4` | MXFP4 (E2M1, power-of-two scale per 32) | MXFP4, stochastic | `dot4I8Packed` (2·E2M1 lanes) |
//! | `nvfp4` | NVFP4 (E2M1, E4M3 scale per 16 × tensor scale) | NVFP4, stochastic | `dot4I8Packed` (2·E2M1 lanes) |
//!
//! The block-scaled presets follow today's recipes (NVIDIA's for NVFP4): every operand of all
//! three products in the format, scale blocks along each product's K, round-to-nearest forward,
//! stochastic rounding on the gradient only, and a 16×16 random Hadamard transform of both
//! operands of the weight-gradient product along its K (the batch or tokens; `rot16` with random
//! signs). Master weights, the optimizer and non-GEMM ops (normalization, embeddings, and
//! attention's own products unless `+attn`) stay fp32.
//!
//! `luq4` and `int4`/`int3`/`int2` keep the model's sensitive layers — the first and the last
//! GEMM layer, or those the graph marks (a GPT's first block and head) — at 8 bits (int8 forward
//! and gradient), the common policy for low-bit training (LUQ, and most work before it); the
//! block-scaled presets keep them in fp32 (the recipes' BF16). `+all` (or `+all4`) turns it off.
//! Modifiers appended with `+`: `smpK` (average K gradient samples, SMP), `rotB` (rotate the
//! gradient and activations by a block-B Hadamard along the batch before the weight-gradient
//! product), `tensor` / `blockB` (one gradient scale per tensor / per B values, instead of per
//! row), `nearest` (round the gradient to nearest instead of stochastically: biased, for
//! ablations), `all`, `attn` (quantize attention's activation × activation products Q·Kᵀ and
//! P·V and their four backward products too, in the layers' formats: see
//! [`crate::nn::AttentionPolicy`]; without it they run in f32), `fwd32` (TinyScript /
//! levels presets: keep the forward in fp32 and quantize the gradient only). Example:
//! `luq4+smp2`, `nvfp4+attn`.
//!
//! "Per row" for the gradient means one scale per sample in the input-gradient product (PSQ)
//! and one per output feature in the weight-gradient product, whose dYᵀ operand is packed
//! along the batch; `blockB` gives that product a scale per feature and block of B samples.

use crate::format::Format;
use crate::scheme::Granularity;
use crate::{Error, Result};

/// Forward operand precision.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ForwardPrecision {
    /// f32.
    Fp32,
    /// INT8, per-row scales.
    Int8,
    /// FP8 E4M3, per-row scales.
    Fp8,
    /// INT4, per-row scales.
    Int4,
    /// INT3 (values in [-3, 3], in 4-bit lanes), per-row scales.
    Int3,
    /// INT2 (ternary), per-row scales.
    Int2,
    /// OCP MXFP8: E4M3 with a power-of-two scale per 32 values along K.
    Mxfp8,
    /// OCP MXFP4: E2M1 with a power-of-two scale per 32 values along K.
    Mxfp4,
    /// NVFP4: E2M1 with an E4M3 scale per 16 values along K and a power-of-two scale per tensor.
    Nvfp4,
    /// TinyScript: the activations X quantized onto `bits`-bit non-uniform levels, one scale per
    /// row (sample), stochastically in training (unbiased) and to nearest in evaluation. A
    /// layer whose input follows a ReLU uses an unsigned table (no sign bit: `2^bits` levels
    /// instead of `2^(bits−1)`), the first layer a signed one. With
    /// `fitted` the levels come from a Weibull fit of the layer's input, refit every
    /// [`TINYSCRIPT_REFIT`] steps (the first steps use uniform levels), else they stay uniform.
    /// Weights stay f32, as in the paper, which squeezes activations and gradients: the forward
    /// is `Q(X)·Wᵀ` and the saved activation is the codes (`gemm_levels`). Needs a TinyScript
    /// gradient.
    TinyScript {
        /// Bits per value, 2 to 8.
        bits: u32,
        /// Fitted (TinyScript) or evenly spaced levels.
        fitted: bool,
    },
}

/// Neural-gradient precision.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GradPrecision {
    /// f32.
    Fp32,
    /// INT8 (stochastic, scales as `grad_granularity` says).
    Int8,
    /// INT4 (stochastic, scales as `grad_granularity` says).
    Int4,
    /// FP8 E5M2.
    Fp8,
    /// LUQ's 4-bit logarithmic format.
    Luq4,
    /// MXFP8 (E4M3 values, a power-of-two scale per 32 along the product's K).
    Mxfp8,
    /// MXFP4 (E2M1 values, a power-of-two scale per 32).
    Mxfp4,
    /// NVFP4 (E2M1 values, an E4M3 scale per 16 times a power-of-two tensor scale).
    Nvfp4,
    /// TinyScript's non-uniform levels (`bits` per value, sign included), one scale per row,
    /// stochastic; with `fitted` the levels come from a Weibull fit of the layer's gradient,
    /// refit every [`TINYSCRIPT_REFIT`] steps (the first step uses uniform levels), else they
    /// stay uniform (the same kernels with evenly spaced levels: the baseline at equal bits).
    /// Runs with an fp32 or a TinyScript forward: the products decode the codes as tiles load
    /// (`gemm_levels`).
    TinyScript {
        /// Bits per value, 2 to 8.
        bits: u32,
        /// Fitted (TinyScript) or evenly spaced levels.
        fitted: bool,
    },
}

/// Steps between refits of TinyScript's gradient levels.
pub const TINYSCRIPT_REFIT: u64 = 50;

impl ForwardPrecision {
    /// The packed format, if quantized by the packing quantizer (TinyScript is not: see
    /// [`crate::kernels::tinyscript`]).
    pub fn format(self) -> Option<Format> {
        match self {
            ForwardPrecision::Fp32 | ForwardPrecision::TinyScript { .. } => None,
            ForwardPrecision::Int8 => Some(Format::Int8),
            ForwardPrecision::Fp8 => Some(Format::Fp8E4M3),
            ForwardPrecision::Int4 => Some(Format::Int4),
            ForwardPrecision::Int3 => Some(Format::Int3),
            ForwardPrecision::Int2 => Some(Format::Int2),
            ForwardPrecision::Mxfp8 => Some(Format::Mxfp8),
            ForwardPrecision::Mxfp4 => Some(Format::Mxfp4),
            ForwardPrecision::Nvfp4 => Some(Format::Nvfp4),
        }
    }

    /// The integer precision with `bits`-bit values (2, 3, 4, 8), or fp32 for 32.
    pub fn from_bits(bits: u32) -> Option<Self> {
        Some(match bits {
            2 => ForwardPrecision::Int2,
            3 => ForwardPrecision::Int3,
            4 => ForwardPrecision::Int4,
            8 => ForwardPrecision::Int8,
            32 => ForwardPrecision::Fp32,
            _ => return None,
        })
    }

    /// Bits per value: 2, 3, 4, 8 (int8 and fp8), TinyScript's bits, or 32.
    pub fn bits(self) -> u32 {
        match self {
            ForwardPrecision::TinyScript { bits, .. } => bits,
            f => f.format().map_or(32, Format::value_bits),
        }
    }

    /// An integer forward below 8 bits (int4, int3, int2).
    pub fn is_low(self) -> bool {
        self.format().is_some_and(|f| f.is_int() && f.value_bits() < 8)
    }
}

impl GradPrecision {
    /// The packed format, if quantized.
    pub fn format(self) -> Option<Format> {
        match self {
            GradPrecision::Fp32 => None,
            GradPrecision::Int8 => Some(Format::Int8),
            GradPrecision::Int4 => Some(Format::Int4),
            GradPrecision::Fp8 => Some(Format::Fp8E5M2),
            GradPrecision::Luq4 => Some(Format::Log4),
            GradPrecision::Mxfp8 => Some(Format::Mxfp8),
            GradPrecision::Mxfp4 => Some(Format::Mxfp4),
            GradPrecision::Nvfp4 => Some(Format::Nvfp4),
            GradPrecision::TinyScript { .. } => None,
        }
    }
}

/// One layer's precisions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LayerScheme {
    /// Forward operands.
    pub forward: ForwardPrecision,
    /// Neural gradient.
    pub gradient: GradPrecision,
    /// Stochastic (unbiased) gradient rounding; `false` rounds to nearest.
    pub stochastic: bool,
    /// SMP: independent gradient samples averaged in the GEMM epilogue (1 = off).
    pub smp: u32,
    /// Block size of the Hadamard rotation along the batch for the weight gradient (BHQ-style).
    /// With an fp32 gradient over a quantized forward it rotates the same way, so that the
    /// weight gradient meets the operand a rotated quantized gradient would (the variance
    /// meter's reference).
    pub rotate: Option<u32>,
    /// Make the rotation a random Hadamard transform: the block's elements are first multiplied
    /// by a fixed pseudo-random ±1 pattern ([`crate::kernels::hadamard::RANDOM_SIGNS`]), as in
    /// NVIDIA's NVFP4 recipe (the block-scaled presets set it).
    pub random_signs: bool,
    /// Scale groups of the quantized neural gradient dY `[samples, features]`. `PerRow` (the
    /// default): for the input gradient dY·W one scale per sample (PSQ), for the weight gradient
    /// dYᵀ·X, whose operand is packed along the batch, one per output feature. `PerTensor`: one
    /// scale. `PerBlock(b)`: a scale per `b` consecutive values along the packed dimension
    /// (for dYᵀ·X: per feature and block of `b` samples, the closest to per-sample scales there).
    pub grad_granularity: Granularity,
}

impl LayerScheme {
    /// Plain fp32.
    pub const FP32: LayerScheme = LayerScheme {
        forward: ForwardPrecision::Fp32,
        gradient: GradPrecision::Fp32,
        stochastic: true,
        smp: 1,
        rotate: None,
        random_signs: false,
        grad_granularity: Granularity::PerRow,
    };
    /// INT8 forward and gradient.
    pub const INT8: LayerScheme =
        LayerScheme { forward: ForwardPrecision::Int8, gradient: GradPrecision::Int8, ..LayerScheme::FP32 };

    /// Fails for combinations no GEMM kernel runs.
    pub fn check(&self) -> Result<()> {
        use ForwardPrecision as F;
        use GradPrecision as G;
        if let F::TinyScript { bits, .. } = self.forward {
            if !(2..=8).contains(&bits) {
                return Err(Error::InvalidArgument(format!("TinyScript activations have 2 to 8 bits, not {bits}")));
            }
            if !matches!(self.gradient, G::TinyScript { .. }) {
                return Err(Error::InvalidArgument(
                    "a TinyScript forward runs with a TinyScript gradient (its products decode both)".into(),
                ));
            }
        }
        if let G::TinyScript { bits, .. } = self.gradient {
            if !(2..=8).contains(&bits) {
                return Err(Error::InvalidArgument(format!("TinyScript gradients have 2 to 8 bits, not {bits}")));
            }
            let forward_ok = matches!(self.forward, F::Fp32 | F::TinyScript { .. });
            if !forward_ok || self.smp != 1 || self.rotate.is_some() || !self.stochastic {
                return Err(Error::InvalidArgument(
                    "TinyScript gradients run with an fp32 or TinyScript forward, stochastic rounding, no SMP and no rotation".into(),
                ));
            }
            if self.grad_granularity != Granularity::PerRow {
                return Err(Error::InvalidArgument("TinyScript gradients have one scale per row".into()));
            }
            return Ok(());
        }
        // A gradient meets the forward's operands in one GEMM: integer lanes (int, log4 and E2M1
        // formats, gemm_int) or FP8 values (E4M3, E5M2, MXFP8, gemm_fp8).
        let family = |f: Format| f.is_fp8();
        let ok = match (self.forward.format(), self.gradient.format()) {
            (_, None) => self.gradient == G::Fp32,
            (Some(fw), Some(gr)) => family(fw) == family(gr),
            (None, Some(_)) => false,
        };
        if !ok {
            return Err(Error::InvalidArgument(format!(
                "no GEMM kernel multiplies a {:?} gradient with {:?} operands",
                self.gradient, self.forward
            )));
        }
        if self.smp == 0 {
            return Err(Error::InvalidArgument("smp must be at least 1".into()));
        }
        if self.smp > 1 && !matches!(self.gradient, G::Int8 | G::Int4 | G::Luq4) {
            return Err(Error::InvalidArgument(
                "SMP runs in the integer GEMM: it needs an int8, int4 or luq4 gradient".into(),
            ));
        }
        if self.gradient.format().is_some_and(|f| f.block().is_some()) && self.grad_granularity != Granularity::PerRow {
            return Err(Error::InvalidArgument(format!(
                "a {:?} gradient has its own scale blocks (no gradient granularity modifier)",
                self.gradient
            )));
        }
        if let Granularity::PerBlock(b) = self.grad_granularity {
            if b < 8 || !b.is_power_of_two() {
                return Err(Error::InvalidArgument(format!(
                    "gradient scale blocks must be a power of two of at least 8 values, not {b}"
                )));
            }
        }
        if self.random_signs && self.rotate.is_none() {
            return Err(Error::InvalidArgument("random signs are for a rotation (rotB)".into()));
        }
        if self.rotate.is_some() && self.gradient == G::Fp32 && self.forward == F::Fp32 {
            return Err(Error::InvalidArgument(
                "the rotation is for quantized products (with an fp32 gradient it needs a quantized forward)".into(),
            ));
        }
        Ok(())
    }
}

/// `tinyscript[B]` (fitted levels) and `levels[B]` (evenly spaced), B bits (default 4).
fn tinyscript_preset(name: &str) -> Option<GradPrecision> {
    let (rest, fitted) = match (name.strip_prefix("tinyscript"), name.strip_prefix("levels")) {
        (Some(r), _) => (r, true),
        (_, Some(r)) => (r, false),
        _ => return None,
    };
    let bits = if rest.is_empty() { 4 } else { rest.parse().ok()? };
    Some(GradPrecision::TinyScript { bits, fitted })
}

/// A model-wide scheme with per-layer overrides.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainScheme {
    /// The name it was built from (e.g. `luq4+smp2`).
    pub name: String,
    /// What every trainable layer uses unless overridden.
    pub default: LayerScheme,
    /// Keep the model's sensitive GEMM layers at higher precision ([`TrainScheme::sensitive`]):
    /// the first and the last, or those the graph marks (a GPT's first block and head; see
    /// [`crate::nn::GraphBuilder::mark_sensitive`]).
    pub keep_sensitive: bool,
    /// Quantize attention's batched activation × activation products too (`+attn`; see
    /// [`crate::nn::AttentionPolicy`]): the default layer scheme's formats (a sensitive
    /// attention — a GPT's first block — takes the sensitive layers' scheme). Off by default:
    /// Q·Kᵀ and P·V run in f32.
    pub attention: bool,
    /// `(trainable layer index, scheme)` overrides, applied last.
    pub overrides: Vec<(usize, LayerScheme)>,
}

impl TrainScheme {
    /// The preset names.
    pub const PRESETS: [&'static str; 10] =
        ["fp32", "int8", "fp8", "luq4", "int4", "int3", "int2", "mxfp8", "mxfp4", "nvfp4"];

    /// A preset with optional `+` modifiers (see the module docs).
    pub fn preset(spec: &str) -> Result<Self> {
        let mut parts = spec.split('+');
        let base = parts.next().unwrap_or_default();
        let mut default = match base {
            "fp32" => LayerScheme::FP32,
            "int8" => LayerScheme::INT8,
            "fp8" => LayerScheme { forward: ForwardPrecision::Fp8, gradient: GradPrecision::Fp8, ..LayerScheme::FP32 },
            "luq4" => {
                LayerScheme { forward: ForwardPrecision::Int4, gradient: GradPrecision::Luq4, ..LayerScheme::FP32 }
            }
            "mxfp8" | "mxfp4" | "nvfp4" => {
                let (f, g) = match base {
                    "mxfp8" => (ForwardPrecision::Mxfp8, GradPrecision::Mxfp8),
                    "mxfp4" => (ForwardPrecision::Mxfp4, GradPrecision::Mxfp4),
                    _ => (ForwardPrecision::Nvfp4, GradPrecision::Nvfp4),
                };
                LayerScheme { forward: f, gradient: g, rotate: Some(16), random_signs: true, ..LayerScheme::FP32 }
            }
            "int4" | "int3" | "int2" => LayerScheme {
                forward: ForwardPrecision::from_bits(base[3..].parse().unwrap_or_default())
                    .expect("int4, int3 and int2 name integer precisions"),
                ..LayerScheme::INT8
            },
            other => match tinyscript_preset(other) {
                Some(g @ GradPrecision::TinyScript { bits, fitted }) => LayerScheme {
                    forward: ForwardPrecision::TinyScript { bits, fitted },
                    gradient: g,
                    ..LayerScheme::FP32
                },
                Some(g) => LayerScheme { gradient: g, ..LayerScheme::FP32 },
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown scheme '{other}' (presets: fp32, int8, fp8, luq4, int4, int3, int2, mxfp8, mxfp4, nvfp4, tinyscript[B], levels[B])"
                    )))
                }
            },
        };
        let mut keep_sensitive = matches!(base, "luq4" | "int4" | "int3" | "int2" | "mxfp8" | "mxfp4" | "nvfp4");
        let mut attention = false;
        for m in parts {
            if let Some(k) = m.strip_prefix("smp") {
                default.smp = k.parse().map_err(|_| Error::InvalidArgument(format!("bad modifier '{m}' (smpK)")))?;
            } else if let Some(b) = m.strip_prefix("rot") {
                default.rotate =
                    Some(b.parse().map_err(|_| Error::InvalidArgument(format!("bad modifier '{m}' (rotB)")))?);
            } else if m == "tensor" {
                default.grad_granularity = Granularity::PerTensor;
            } else if let Some(b) = m.strip_prefix("block") {
                default.grad_granularity = Granularity::PerBlock(
                    b.parse().map_err(|_| Error::InvalidArgument(format!("bad modifier '{m}' (blockB)")))?,
                );
            } else if m == "nearest" {
                default.stochastic = false;
            } else if m == "fwd32" {
                if !matches!(default.forward, ForwardPrecision::TinyScript { .. }) {
                    return Err(Error::InvalidArgument(format!(
                        "'+fwd32' is for the tinyscript and levels presets, not '{base}'"
                    )));
                }
                default.forward = ForwardPrecision::Fp32;
            } else if m == "all" || m == "all4" {
                keep_sensitive = false;
            } else if m == "attn" {
                attention = true;
            } else {
                return Err(Error::InvalidArgument(format!(
                    "unknown modifier '{m}' (smpK, rotB, tensor, blockB, nearest, all, attn, fwd32)"
                )));
            }
        }
        default.check()?;
        let scheme = TrainScheme { name: spec.to_string(), default, keep_sensitive, attention, overrides: Vec::new() };
        if attention {
            scheme.attention_scheme(false).attention()?;
            scheme.attention_scheme(true).attention()?;
        }
        Ok(scheme)
    }

    /// The same scheme with layer `i` (counting trainable layers) overridden.
    pub fn with_layer(mut self, i: usize, s: LayerScheme) -> Result<Self> {
        s.check()?;
        self.overrides.push((i, s));
        Ok(self)
    }

    /// What a sensitive layer runs instead of the default (with [`TrainScheme::keep_sensitive`]):
    /// int8 forward and gradient under a sub-8-bit integer or LUQ default (the policy of LUQ and
    /// most low-bit work before it), fp32 under a block-scaled one (NVIDIA's recipes keep them
    /// in BF16, which lowbit does not have); `None` when the default needs no exception.
    pub fn sensitive(&self) -> Option<LayerScheme> {
        let s = self.default;
        let block = s.forward.format().is_some_and(|f| f.block().is_some());
        if block {
            Some(LayerScheme::FP32)
        } else if s.forward.is_low() || matches!(s.gradient, GradPrecision::Luq4) {
            Some(LayerScheme { forward: ForwardPrecision::Int8, gradient: GradPrecision::Int8, ..s })
        } else {
            None
        }
    }

    /// The layer scheme an attention op's products follow under `+attn` ([`TrainScheme::attention`]):
    /// the default's, or the sensitive layers' where the graph marks the attention sensitive —
    /// what a GEMM layer gets before its per-layer overrides ([`TrainScheme::layer_with`]).
    pub fn attention_scheme(&self, sensitive: bool) -> LayerScheme {
        match (self.keep_sensitive && sensitive, self.sensitive()) {
            (true, Some(h)) => h,
            _ => self.default,
        }
    }

    /// The scheme of trainable layer `i` of `n`, the first and the last being the sensitive ones.
    pub fn layer(&self, i: usize, n: usize) -> LayerScheme {
        self.layer_with(i, i == 0 || i + 1 == n)
    }

    /// The scheme of trainable layer `i`, `sensitive` saying whether the model counts it among
    /// its sensitive layers (see [`TrainScheme::keep_sensitive`]).
    pub fn layer_with(&self, i: usize, sensitive: bool) -> LayerScheme {
        let mut s = self.attention_scheme(sensitive);
        for &(j, o) in &self.overrides {
            if j == i {
                s = o;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_modifiers() {
        let s = TrainScheme::preset("luq4+smp2+rot32").unwrap();
        assert_eq!(s.default.smp, 2);
        assert_eq!(s.default.rotate, Some(32));
        assert_eq!(s.layer(0, 3).forward, ForwardPrecision::Int8);
        assert_eq!(s.layer(1, 3).forward, ForwardPrecision::Int4);
        assert_eq!(s.layer(2, 3).gradient, GradPrecision::Int8);
        assert_eq!(TrainScheme::preset("luq4+all4").unwrap().layer(0, 3).forward, ForwardPrecision::Int4);
        assert!(TrainScheme::preset("int5").is_err());
        let t = TrainScheme::preset("int2").unwrap();
        assert_eq!((t.layer(1, 3).forward, t.layer(1, 3).gradient), (ForwardPrecision::Int2, GradPrecision::Int8));
        assert_eq!(t.layer(0, 3).forward, ForwardPrecision::Int8);
        assert_eq!(TrainScheme::preset("int3+all").unwrap().layer(0, 3).forward, ForwardPrecision::Int3);
        assert_eq!(ForwardPrecision::from_bits(3).map(ForwardPrecision::bits), Some(3));
        assert!(TrainScheme::preset("fp8+smp2").is_err());
        assert!(TrainScheme::preset("fp32+rot16").is_err());
        let o = TrainScheme::preset("fp32").unwrap().with_layer(1, LayerScheme::INT8).unwrap();
        assert_eq!(o.layer(1, 3), LayerScheme::INT8);
        assert_eq!(o.layer(0, 3), LayerScheme::FP32);
        let bad = LayerScheme { forward: ForwardPrecision::Fp8, gradient: GradPrecision::Luq4, ..LayerScheme::FP32 };
        assert!(bad.check().is_err());
    }
}
