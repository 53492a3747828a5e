//! Model descriptions: a sequence of layers on channels-last tensors.

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
    /// 2-D convolution (square kernel), NHWC, as im2col + GEMM; optional fused ReLU.
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
}

impl LayerSpec {
    /// Whether the layer is a GEMM layer (Linear or Conv), the ones a scheme quantizes.
    pub fn is_gemm(&self) -> bool {
        matches!(self, LayerSpec::Linear { .. } | LayerSpec::Conv { .. })
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

    /// A small VGG-style CNN: per stage a 3×3 (5×5 on 28×28 inputs) convolution, batch norm with
    /// ReLU and a 2×2 max pool, then a linear classifier.
    pub fn cnn(input: (usize, usize, usize), channels: &[usize], classes: usize) -> Self {
        let k = if input.0 <= 28 { 5 } else { 3 };
        let mut layers = Vec::new();
        for &c in channels {
            layers.push(LayerSpec::Conv { channels: c, kernel: k, stride: 1, pad: k / 2, relu: false });
            layers.push(LayerSpec::BatchNorm { relu: true });
            layers.push(LayerSpec::MaxPool { k: 2 });
        }
        layers.push(LayerSpec::Linear { outputs: classes, relu: false });
        ModelSpec { name: "cnn".into(), input, layers }
    }

    /// `mlp` (784-256-256-10 on MNIST) or `cnn` (two conv stages on MNIST, three on CIFAR).
    pub fn by_name(name: &str, input: (usize, usize, usize), classes: usize) -> Result<Self> {
        match name {
            "mlp" => Ok(Self::mlp(input, &[256, 256], classes)),
            "cnn" if input.0 <= 28 => Ok(Self::cnn(input, &[16, 32], classes)),
            "cnn" => Ok(Self::cnn(input, &[32, 64, 128], classes)),
            other => Err(Error::InvalidArgument(format!("unknown model '{other}' (mlp, cnn)"))),
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
            s = match *l {
                LayerSpec::Linear { outputs, .. } => (1, 1, outputs),
                LayerSpec::Conv { channels, kernel, stride, pad, .. } => {
                    if s.0 + 2 * pad < kernel || s.1 + 2 * pad < kernel || stride == 0 {
                        return Err(Error::InvalidArgument(format!(
                            "layer {i}: {kernel}x{kernel} convolution on a {}x{} input",
                            s.0, s.1
                        )));
                    }
                    ((s.0 + 2 * pad - kernel) / stride + 1, (s.1 + 2 * pad - kernel) / stride + 1, channels)
                }
                LayerSpec::BatchNorm { .. } => s,
                LayerSpec::MaxPool { k } | LayerSpec::AvgPool { k } => {
                    if k == 0 || s.0 < k || s.1 < k {
                        return Err(Error::InvalidArgument(format!(
                            "layer {i}: {k}x{k} pooling on a {}x{} input",
                            s.0, s.1
                        )));
                    }
                    (s.0 / k, s.1 / k, s.2)
                }
            };
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
            nonneg = match *l {
                LayerSpec::Linear { relu, .. } | LayerSpec::Conv { relu, .. } | LayerSpec::BatchNorm { relu } => relu,
                LayerSpec::MaxPool { .. } | LayerSpec::AvgPool { .. } => nonneg,
            };
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
