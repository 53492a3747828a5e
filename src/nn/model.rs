//! Model descriptions: a sequence of layers on channels-last tensors, residual blocks among
//! them; [`ModelSpec::to_graph`](super::graph) turns one into the graph the trainer compiles.
//! Models that a layer list cannot describe are built with [`super::graph::GraphBuilder`].

use super::op::{Op, Shape};
use super::ops;
use crate::{Error, Result};

/// One layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSpec {
    /// Fully connected: flattens its input (`h·w·c` features) to `outputs`; optional fused ReLU.
    Linear {
        /// Output features.
        outputs: usize,
        /// ReLU after the layer (fused into the GEMM epilogue).
        relu: bool,
    },
    /// 2-D convolution (square kernel), NHWC, as im2col + GEMM; optional bias and fused ReLU.
    Conv {
        /// Output channels.
        channels: usize,
        /// Kernel edge.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding.
        pad: usize,
        /// ReLU after the layer.
        relu: bool,
        /// A learned bias per channel; a convolution that batch norm follows needs none (the
        /// normalization removes it: see [`ops::Conv::bias`]).
        bias: bool,
    },
    /// k×k max pooling with stride k.
    MaxPool {
        /// Window edge.
        k: usize,
    },
    /// k×k average pooling with stride k.
    AvgPool {
        /// Window edge.
        k: usize,
    },
    /// Batch normalization over batch and space per channel (fp32, learnable γ and β; batch
    /// statistics in training, running statistics in evaluation); optional ReLU after it.
    BatchNorm {
        /// ReLU after the normalization.
        relu: bool,
    },
    /// Global average pooling of a square input to one value per channel.
    GlobalAvgPool,
    /// A standalone ReLU.
    Relu,
    /// A residual block: `relu?(main(x) + shortcut(x))`, an empty shortcut being the identity
    /// (He et al. 2016). Both paths must end in the same shape.
    Residual {
        /// The main path.
        main: Vec<LayerSpec>,
        /// The shortcut (empty: identity; a strided 1×1 convolution and batch norm where the
        /// shape changes: a projection).
        shortcut: Vec<LayerSpec>,
        /// ReLU after the sum.
        relu: bool,
    },
}

impl LayerSpec {
    /// Whether the layer is a GEMM layer (Linear or Conv), the ones a scheme quantizes.
    pub fn is_gemm(&self) -> bool {
        matches!(self, LayerSpec::Linear { .. } | LayerSpec::Conv { .. })
    }

    /// The GEMM layers in it (itself, or those of a residual block's paths).
    pub fn gemm_count(&self) -> usize {
        match self {
            LayerSpec::Residual { main, shortcut, .. } => main.iter().chain(shortcut).map(|l| l.gemm_count()).sum(),
            l => l.is_gemm() as usize,
        }
    }

    /// Its output shape on an input of shape `s`.
    pub fn output_shape(&self, s: Shape) -> Result<Shape> {
        match self {
            LayerSpec::Residual { main, shortcut, relu } => {
                let m = main.iter().try_fold(s, |s, l| l.output_shape(s))?;
                let c = shortcut.iter().try_fold(s, |s, l| l.output_shape(s))?;
                ops::Add { relu: *relu }.output_shape(&[m, c])
            }
            l => l.op().expect("a single op").output_shape(&[s]),
        }
    }

    /// Whether its output is nonnegative, given whether its input is.
    pub fn nonnegative(&self, input: bool) -> bool {
        match self {
            LayerSpec::Residual { main, shortcut, relu } => {
                let m = main.iter().fold(input, |n, l| l.nonnegative(n));
                let c = shortcut.iter().fold(input, |n, l| l.nonnegative(n));
                *relu || (m && c)
            }
            l => l.op().expect("a single op").nonnegative(&[input]),
        }
    }

    /// The op of a single-op layer (`None` for a residual block).
    pub(crate) fn op(&self) -> Option<Box<dyn Op>> {
        Some(match *self {
            LayerSpec::Linear { outputs, relu } => Box::new(ops::Linear { outputs, relu }),
            LayerSpec::Conv { channels, kernel, stride, pad, relu, bias } => {
                Box::new(ops::Conv { channels, kernel, stride, pad, relu, bias })
            }
            LayerSpec::MaxPool { k } => Box::new(ops::MaxPool { k }),
            LayerSpec::AvgPool { k } => Box::new(ops::AvgPool { k }),
            LayerSpec::BatchNorm { relu } => Box::new(ops::BatchNorm { relu }),
            LayerSpec::GlobalAvgPool => Box::new(ops::GlobalAvgPool),
            LayerSpec::Relu => Box::new(ops::Relu),
            LayerSpec::Residual { .. } => return None,
        })
    }
}

/// A model: input shape, layers, classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// Short name ("mlp", "cnn").
    pub name: String,
    /// Input `(h, w, c)`.
    pub input: (usize, usize, usize),
    /// The layers, in order; the last must be a Linear with `classes` outputs and no ReLU.
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    /// A multi-layer perceptron with ReLU hidden layers.
    pub fn mlp(input: (usize, usize, usize), hidden: &[usize], classes: usize) -> Self {
        let mut layers: Vec<LayerSpec> = hidden.iter().map(|&h| LayerSpec::Linear { outputs: h, relu: true }).collect();
        layers.push(LayerSpec::Linear { outputs: classes, relu: false });
        ModelSpec { name: "mlp".into(), input, layers }
    }

    /// A small VGG-style CNN: per stage a 3×3 (5×5 on 28×28 inputs) convolution without bias,
    /// batch norm with ReLU and a 2×2 max pool, then a linear classifier.
    pub fn cnn(input: (usize, usize, usize), channels: &[usize], classes: usize) -> Self {
        let k = if input.0 <= 28 { 5 } else { 3 };
        let mut layers = Vec::new();
        for &c in channels {
            layers.push(LayerSpec::Conv { channels: c, kernel: k, stride: 1, pad: k / 2, relu: false, bias: false });
            layers.push(LayerSpec::BatchNorm { relu: true });
            layers.push(LayerSpec::MaxPool { k: 2 });
        }
        layers.push(LayerSpec::Linear { outputs: classes, relu: false });
        ModelSpec { name: "cnn".into(), input, layers }
    }

    /// The CIFAR ResNet of He et al. (2016, section 4.2) with `blocks` basic blocks per stage:
    /// a 3×3 convolution to 16 channels with batch norm and ReLU, three stages of basic blocks
    /// (two 3×3 convolutions with batch norm, ReLU after the residual sum) at 16, 32 and 64
    /// channels, the first block of stages 2 and 3 downsampling with stride 2 and a projection
    /// shortcut (a strided 1×1 convolution and batch norm), then global average pooling and a
    /// linear classifier: `6·blocks + 2` layers with weights (`resnet20`: 3 blocks, `resnet8`: 1).
    /// Every convolution is followed by batch norm, so none has a bias.
    pub fn resnet(input: (usize, usize, usize), blocks: usize, classes: usize) -> Self {
        let conv =
            |channels, kernel, stride, pad| LayerSpec::Conv { channels, kernel, stride, pad, relu: false, bias: false };
        let bn = |relu| LayerSpec::BatchNorm { relu };
        let mut layers = vec![conv(16, 3, 1, 1), bn(true)];
        let mut c_in = 16;
        for (stage, c) in [16, 32, 64].into_iter().enumerate() {
            for b in 0..blocks {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let main = vec![conv(c, 3, stride, 1), bn(true), conv(c, 3, 1, 1), bn(false)];
                let shortcut = if stride != 1 || c_in != c { vec![conv(c, 1, stride, 0), bn(false)] } else { vec![] };
                layers.push(LayerSpec::Residual { main, shortcut, relu: true });
                c_in = c;
            }
        }
        layers.push(LayerSpec::GlobalAvgPool);
        layers.push(LayerSpec::Linear { outputs: classes, relu: false });
        ModelSpec { name: format!("resnet{}", 6 * blocks + 2), input, layers }
    }

    /// The model names [`ModelSpec::by_name`] knows.
    pub const NAMES: [&'static str; 4] = ["mlp", "cnn", "resnet8", "resnet20"];

    /// `mlp` (784-256-256-10 on MNIST), `cnn` (two conv stages on MNIST, three on CIFAR),
    /// `resnet20` or `resnet8` ([`ModelSpec::resnet`] with 3 or 1 blocks per stage).
    pub fn by_name(name: &str, input: (usize, usize, usize), classes: usize) -> Result<Self> {
        match name {
            "mlp" => Ok(Self::mlp(input, &[256, 256], classes)),
            "cnn" if input.0 <= 28 => Ok(Self::cnn(input, &[16, 32], classes)),
            "cnn" => Ok(Self::cnn(input, &[32, 64, 128], classes)),
            "resnet20" => Ok(Self::resnet(input, 3, classes)),
            "resnet8" => Ok(Self::resnet(input, 1, classes)),
            other => Err(Error::InvalidArgument(format!("unknown model '{other}' ({})", Self::NAMES.join(", ")))),
        }
    }

    /// Output shape `(h, w, c)` after every layer of a classifier; fails on shapes that do not
    /// fit and unless the last layer is a Linear without ReLU (the logits).
    pub fn shapes(&self) -> Result<Vec<(usize, usize, usize)>> {
        let out = self.layer_shapes()?;
        match self.layers.last() {
            Some(LayerSpec::Linear { relu: false, .. }) => Ok(out),
            _ => Err(Error::InvalidArgument("the last layer must be a Linear without ReLU (the logits)".into())),
        }
    }

    /// Output shape `(h, w, c)` after every layer of any stack of layers (a section of a model,
    /// say); fails on shapes that do not fit or no layers.
    pub fn layer_shapes(&self) -> Result<Vec<(usize, usize, usize)>> {
        if self.layers.is_empty() {
            return Err(Error::InvalidArgument("a model needs at least one layer".into()));
        }
        let mut s = self.input;
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            s = l.output_shape(s).map_err(|e| match e {
                Error::InvalidArgument(m) => Error::InvalidArgument(format!("layer {i}: {m}")),
                other => other,
            })?;
            out.push(s);
        }
        Ok(out)
    }

    /// For every layer, whether its input is nonnegative whatever the model's input: it follows
    /// a ReLU (fused into a Linear, Conv or BatchNorm), possibly through pooling layers. The
    /// model's own input is not assumed nonnegative (datasets are normalized around 0).
    pub fn nonnegative_inputs(&self) -> Vec<bool> {
        let mut nonneg = false;
        let mut out = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            out.push(nonneg);
            nonneg = l.nonnegative(nonneg);
        }
        out
    }

    /// Number of classes (the last layer's outputs).
    pub fn classes(&self) -> usize {
        match self.layers.last() {
            Some(LayerSpec::Linear { outputs, .. }) => *outputs,
            _ => 0,
        }
    }
}
