//! Precision as a policy: how each operand of each GEMM product of a layer is quantized.
//!
//! A layer that multiplies (Linear, Conv) computes three products, and asks here how to run each:
//!
//! | product | A | B | result |
//! |---|---|---|---|
//! | [`Product::Forward`] | X `[rows, k]` | W `[n, k]` | Y = X·Wᵀ |
//! | [`Product::InputGrad`] | dY `[rows, n]` | Wᵀ `[k, n]` | dX = dY·W |
//! | [`Product::WeightGrad`] | dYᵀ `[n, rows]` | Xᵀ `[k, rows]` | dW = dYᵀ·X |
//!
//! Both operands of a product are packed along its contracted dimension. A [`LayerScheme`] (what
//! presets, modifiers, per-layer overrides and [`crate::nn::Trainer::set_bits`] produce) compiles
//! to one [`ProductPolicy`] per product through [`LayerScheme::product`]; the GEMM code in
//! [`crate::nn::gemm`] runs whatever it is given, and nothing else in the trainer decides a
//! precision.

use super::scheme::{ForwardPrecision, GradPrecision, LayerScheme};
use crate::format::Format;
use crate::scheme::Granularity;

/// One of a layer's three GEMM products.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// `Y = X·Wᵀ`.
    Forward,
    /// `dX = dY·W`.
    InputGrad,
    /// `dW = dYᵀ·X`.
    WeightGrad,
}

/// Which TinyScript level table an operand is coded with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LevelTableId {
    /// The layer's input X (a TinyScript forward).
    Activation,
    /// The neural gradient dY, one scale per sample (for dY·W).
    GradRows,
    /// The neural gradient dYᵀ, one scale per output feature (for dYᵀ·X).
    GradCols,
}

/// How one operand of a product is presented to the GEMM.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// As f32 values.
    F32,
    /// Quantized and packed along the contracted dimension.
    Packed {
        /// Number format.
        format: Format,
        /// Scale groups (along the packed dimension).
        granularity: Granularity,
        /// Stochastic (unbiased) rounding from the layer's random stream for this product;
        /// otherwise round to nearest.
        stochastic: bool,
        /// Independent stochastic samples averaged in the GEMM epilogue (SMP; 1 = one).
        samples: u32,
    },
    /// Quantized per row (along the contracted dimension) and dequantized back to f32: the
    /// operand a quantized product would see, for an f32 product (the variance meter's
    /// reference: an fp32 gradient against a quantized forward's operands).
    Rounded {
        /// Number format.
        format: Format,
    },
    /// TinyScript codes on a fitted or evenly spaced level table, one scale per row.
    Levels {
        /// Which of the layer's tables.
        table: LevelTableId,
        /// Stochastic rounding (in training); otherwise to nearest.
        stochastic: bool,
    },
}

impl Operand {
    /// Whether quantizing this operand draws random numbers.
    pub fn stochastic(&self) -> bool {
        matches!(self, Operand::Packed { stochastic: true, .. } | Operand::Levels { stochastic: true, .. })
    }

    /// Independent samples drawn (SMP), 1 otherwise.
    pub fn samples(&self) -> u32 {
        match self {
            Operand::Packed { samples, .. } => *samples,
            _ => 1,
        }
    }
}

/// How to run one product: its two operands, and a block-Hadamard rotation of both along the
/// contracted dimension first (BHQ-style; only the weight gradient, whose contracted dimension is
/// the batch, uses one).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProductPolicy {
    /// The left operand (X, dY or dYᵀ).
    pub a: Operand,
    /// The right operand (W, Wᵀ or Xᵀ).
    pub b: Operand,
    /// Rotation block along the contracted dimension, if any.
    pub rotate: Option<u32>,
    /// The rotation is a random Hadamard transform (see [`LayerScheme::random_signs`]).
    pub random_signs: bool,
}

impl ProductPolicy {
    /// The rotation as the kernels take it: `(block, sign key)`, the key 0 for a plain Hadamard.
    pub fn rotation(&self) -> Option<(u32, u32)> {
        let signs = if self.random_signs { crate::kernels::hadamard::RANDOM_SIGNS } else { 0 };
        self.rotate.map(|b| (b, signs))
    }
}

impl LayerScheme {
    /// The policy of `product` under this scheme; `training` says whether the forward runs in a
    /// training step (TinyScript rounds activations stochastically there and to nearest in
    /// evaluation).
    pub fn product(&self, product: Product, training: bool) -> ProductPolicy {
        let fwd = self.forward.format();
        // Block-scaled formats carry their own blocks along K.
        let nearest = |format: Format| Operand::Packed {
            format,
            granularity: Granularity::native(format),
            stochastic: false,
            samples: 1,
        };
        let grad = |format: Format| Operand::Packed {
            format,
            granularity: if format.block().is_some() { Granularity::native(format) } else { self.grad_granularity },
            stochastic: self.stochastic,
            samples: self.smp,
        };
        let plain = ProductPolicy { a: Operand::F32, b: Operand::F32, rotate: None, random_signs: false };
        let rotated = |a: Operand, b: Operand| ProductPolicy {
            a,
            b,
            rotate: self.rotate,
            random_signs: self.random_signs && self.rotate.is_some(),
        };
        match product {
            Product::Forward => match self.forward {
                ForwardPrecision::TinyScript { .. } => ProductPolicy {
                    a: Operand::Levels { table: LevelTableId::Activation, stochastic: training },
                    ..plain
                },
                _ => match fwd {
                    Some(f) => ProductPolicy { a: nearest(f), b: nearest(f), ..plain },
                    None => plain,
                },
            },
            Product::InputGrad => match (self.gradient, fwd) {
                (GradPrecision::TinyScript { .. }, _) => {
                    ProductPolicy { a: Operand::Levels { table: LevelTableId::GradRows, stochastic: true }, ..plain }
                }
                (GradPrecision::Fp32, Some(f)) => ProductPolicy { b: Operand::Rounded { format: f }, ..plain },
                (g, Some(f)) => match g.format() {
                    Some(gf) => ProductPolicy { a: grad(gf), b: nearest(f), ..plain },
                    None => plain,
                },
                (_, None) => plain,
            },
            Product::WeightGrad => match (self.gradient, fwd) {
                (GradPrecision::TinyScript { .. }, _) => ProductPolicy {
                    a: Operand::Levels { table: LevelTableId::GradCols, stochastic: true },
                    b: match self.forward {
                        ForwardPrecision::TinyScript { .. } => {
                            Operand::Levels { table: LevelTableId::Activation, stochastic: training }
                        }
                        _ => Operand::F32,
                    },
                    rotate: None,
                    random_signs: false,
                },
                (GradPrecision::Fp32, Some(f)) => rotated(Operand::F32, Operand::Rounded { format: f }),
                (g, Some(f)) => match g.format() {
                    Some(gf) => rotated(grad(gf), nearest(f)),
                    None => plain,
                },
                (_, None) => plain,
            },
        }
    }
}

/// How attention's six batched activation × activation products run under a scheme with the
/// `+attn` modifier ([`crate::nn::TrainScheme::attention`]): the forward's `S = Q·Kᵀ` and
/// `O = P·V` take Q, K, V and P as [`AttentionPolicy::activation`]; the backward's `dP = dO·Vᵀ`,
/// `dQ = dS·K`, `dK = dSᵀ·Q` and `dV = Pᵀ·dO` multiply a neural gradient (dO or dS, as
/// [`AttentionPolicy::gradient`]) by an activation. Each operand is packed along its product's
/// contracted dimension (the head dimension D, or the keys or queries), one batch and head at a
/// time. A product runs quantized when both its operands are, in f32 otherwise.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttentionPolicy {
    /// Q, K, V and P: the forward format, round to nearest, its native scale groups (per row, or
    /// the block format's blocks).
    pub activation: Operand,
    /// dO and dS: the gradient format with the scheme's rounding and scale groups, one sample.
    pub gradient: Operand,
}

impl LayerScheme {
    /// The policy of attention's products under this scheme (see [`AttentionPolicy`]); f32
    /// operands where the scheme's forward is f32. TinyScript level tables and SMP are for GEMM
    /// layers and are refused here.
    pub fn attention(&self) -> crate::Result<AttentionPolicy> {
        let refuse = |why: &str| Err(crate::Error::InvalidArgument(format!("'+attn': {why}")));
        if matches!(self.forward, ForwardPrecision::TinyScript { .. })
            || matches!(self.gradient, GradPrecision::TinyScript { .. })
        {
            return refuse(
                "attention's products take packed formats (integer, log4, FP8, MX, NVFP4), not TinyScript levels",
            );
        }
        if self.smp > 1 {
            return refuse("SMP averages samples in a GEMM layer's epilogue; attention's products take one sample");
        }
        let Some(f) = self.forward.format() else {
            return Ok(AttentionPolicy { activation: Operand::F32, gradient: Operand::F32 });
        };
        let activation =
            Operand::Packed { format: f, granularity: Granularity::native(f), stochastic: false, samples: 1 };
        let gradient = match self.gradient.format() {
            Some(g) => Operand::Packed {
                format: g,
                granularity: if g.block().is_some() { Granularity::native(g) } else { self.grad_granularity },
                stochastic: self.stochastic,
                samples: 1,
            },
            None => Operand::F32,
        };
        Ok(AttentionPolicy { activation, gradient })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::TrainScheme;

    #[test]
    fn presets_compile_to_product_policies() {
        let int8 = TrainScheme::preset("int8+smp2+rot32").unwrap().default;
        let f = int8.product(Product::Forward, true);
        assert_eq!(
            f.a,
            Operand::Packed { format: Format::Int8, granularity: Granularity::PerRow, stochastic: false, samples: 1 }
        );
        let w = int8.product(Product::WeightGrad, true);
        assert_eq!(w.a.samples(), 2);
        assert!(w.a.stochastic() && !w.b.stochastic());
        assert_eq!(w.rotate, Some(32));
        assert_eq!(int8.product(Product::InputGrad, true).rotate, None);
        let fp32 = TrainScheme::preset("fp32").unwrap().default;
        for p in [Product::Forward, Product::InputGrad, Product::WeightGrad] {
            assert_eq!(
                fp32.product(p, true),
                ProductPolicy { a: Operand::F32, b: Operand::F32, rotate: None, random_signs: false }
            );
        }
        let ts = TrainScheme::preset("tinyscript3").unwrap().default;
        assert_eq!(
            ts.product(Product::Forward, false).a,
            Operand::Levels { table: LevelTableId::Activation, stochastic: false }
        );
        assert_eq!(
            ts.product(Product::WeightGrad, true).b,
            Operand::Levels { table: LevelTableId::Activation, stochastic: true }
        );
        let ts32 = TrainScheme::preset("tinyscript3+fwd32").unwrap().default;
        assert_eq!(ts32.product(Product::Forward, true).a, Operand::F32);
        assert_eq!(ts32.product(Product::WeightGrad, true).b, Operand::F32);
        // An fp32 gradient against an int8 forward meets the rounded operands (the meter's view).
        let meter = LayerScheme { gradient: GradPrecision::Fp32, ..LayerScheme::INT8 };
        assert_eq!(meter.product(Product::InputGrad, true).b, Operand::Rounded { format: Format::Int8 });
        // NVFP4: blocks of 16 on every operand, the gradient stochastic, the weight gradient's
        // operands through a random 16×16 Hadamard transform.
        let nv = TrainScheme::preset("nvfp4").unwrap().default;
        let block = Granularity::PerBlock(16);
        let f = nv.product(Product::Forward, true);
        assert_eq!(f.a, Operand::Packed { format: Format::Nvfp4, granularity: block, stochastic: false, samples: 1 });
        assert_eq!((f.rotate, f.random_signs), (None, false));
        let w = nv.product(Product::WeightGrad, true);
        assert_eq!(w.a, Operand::Packed { format: Format::Nvfp4, granularity: block, stochastic: true, samples: 1 });
        assert!(!w.b.stochastic());
        assert_eq!((w.rotate, w.random_signs), (Some(16), true));
        let mx = TrainScheme::preset("mxfp8").unwrap();
        assert_eq!(
            mx.default.product(Product::InputGrad, true).b,
            Operand::Packed {
                format: Format::Mxfp8,
                granularity: Granularity::PerBlock(32),
                stochastic: false,
                samples: 1
            }
        );
        assert_eq!(mx.layer(0, 3), LayerScheme::FP32);
        assert_eq!(mx.layer(1, 3).forward, crate::nn::ForwardPrecision::Mxfp8);
        assert!(TrainScheme::preset("mxfp4+all").unwrap().layer(0, 3).forward == crate::nn::ForwardPrecision::Mxfp4);
        assert!(TrainScheme::preset("nvfp4+block32").is_err());
    }
}
