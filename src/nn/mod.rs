//! Quantized training: models as graphs of ops, precision policies, and the [`Trainer`] that
//! compiles a graph into step plans.
//!
//! - [`graph`]: a model is a [`Graph`] — values with per-sample shapes and nodes applying an
//!   [`Op`] — built by a [`GraphBuilder`] (any DAG: residual connections, branches, your own ops)
//!   or from a layer list ([`ModelSpec::to_graph`]; [`ModelSpec::by_name`] knows `mlp`, `cnn`,
//!   `resnet8`, `resnet20`); [`gpt`] builds a GPT language model.
//! - [`ops`]: one file per op (linear, dense, conv, batchnorm, layernorm, relu, gelu, add,
//!   max/avg pooling, global average pooling, flatten, embedding, attention, the losses), each
//!   holding its shape rule, parameters, forward and backward.
//! - [`policy`]: every GEMM layer (Linear, Conv as im2col + GEMM) computes `Y = X·Wᵀ`,
//!   `dX = dY·W` and `dW = dYᵀ·X`, each as its [`LayerScheme`] says ([`LayerScheme::product`]):
//!   forward on round-to-nearest quantized X and W with bias and ReLU fused into the epilogue,
//!   gradients on the stochastically quantized neural gradient and the activation saved
//!   *quantized* by the forward. Master weights, biases and the optimizer are fp32.
//! - [`trainer`]: step plans built once per shape and policy, replayed every step; a step is
//!   reproducible bit for bit from the seed on a given adapter.
//! - [`layer`]: the quantized Linear and Conv2d products on your own tensors, without a trainer.

pub mod bitmixer;
pub mod dcq;
pub mod gemm;
pub mod gpt;
pub mod graph;
pub mod kernels;
pub mod layer;
pub mod model;
pub mod op;
pub mod ops;
pub mod policy;
pub mod scheme;
pub mod trainer;
pub mod variance;

pub use gpt::GptConfig;
pub use graph::{Graph, GraphBuilder, ValueId};
pub use model::{LayerSpec, ModelSpec};
pub use op::{AttentionSite, Backward, Cx, Forward, NodeCx, Op, ParamSpec, Shape};
pub use policy::{AttentionPolicy, Operand, Product, ProductPolicy};
pub use scheme::{ForwardPrecision, GradPrecision, LayerScheme, TrainScheme};
pub use trainer::{
    cosine_lr, ActivationBytes, OptimConfig, Optimizer, Parameter, StepCounts, StepHostTime, StepStats, Trainer,
};
pub use variance::{measure as measure_variance, standard_quantizers, LayerVariance, MeterQuantizer};
