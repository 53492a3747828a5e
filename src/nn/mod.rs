//! Quantized training: models, schemes, and the [`Trainer`].
//!
//! Every trainable layer (Linear, or Conv2d as im2col + GEMM on NHWC tensors) runs its three
//! products on the operands its [`LayerScheme`] names: forward `Y = X·Wᵀ` on round-to-nearest
//! quantized X and W with bias and ReLU fused into the GEMM epilogue; weight gradient
//! `dW = dYᵀ·X` on the stochastically quantized neural gradient (packed along the batch by the
//! transposing quantizer) and the activation saved *quantized* in the forward pass; input
//! gradient `dX = dY·W` on the quantized gradient and the transposed quantized weights. Master
//! weights, biases and the optimizer are fp32. A step is one recorded command buffer and is
//! reproducible bit for bit from the seed on a given adapter.

pub mod bitmixer;
pub mod dcq;
pub mod gemm;
pub mod graph;
pub mod kernels;
pub mod model;
pub mod op;
pub mod ops;
pub mod policy;
pub mod scheme;
pub mod trainer;
pub mod variance;

pub use graph::{Graph, GraphBuilder, ValueId};
pub use model::{LayerSpec, ModelSpec};
pub use op::{Backward, Cx, Forward, NodeCx, Op, ParamSpec, Shape};
pub use policy::{Operand, Product, ProductPolicy};
pub use scheme::{ForwardPrecision, GradPrecision, LayerScheme, TrainScheme};
pub use trainer::{cosine_lr, ActivationBytes, OptimConfig, Parameter, StepCounts, StepHostTime, StepStats, Trainer};
pub use variance::{measure as measure_variance, standard_quantizers, LayerVariance, MeterQuantizer};
