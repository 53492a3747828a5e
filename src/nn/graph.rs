//! Models as graphs: values (per-sample shapes) and nodes (an [`Op`] applied to values).
//!
//! A [`GraphBuilder`] adds nodes one at a time, each reading values that exist already, so the
//! nodes are in a topological order by construction; shapes are inferred and checked as nodes
//! are added (an error names the node). Any directed acyclic graph can be written: residual
//! connections (a value read by two nodes, merged by [`Add`]), several branches, custom ops.
//! [`ModelSpec::to_graph`] builds the graph of a layer list. Parameter names are
//! `<node name>.<export>` (`layers.3.weight` for a `ModelSpec`'s fourth layer).

use super::model::{LayerSpec, ModelSpec};
use super::op::{numel, Op, Shape};
use super::ops::{
    Add, Attention, AvgPool, BatchNorm, Conv, Dense, Embedding, Flatten, Gelu, GlobalAvgPool, LayerNorm, Linear,
    MaxPool, Relu,
};
use crate::{Error, Result};
use std::sync::Arc;

/// A value of a graph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValueId(pub(crate) usize);

/// What a graph knows of a value.
#[derive(Clone, Debug)]
pub struct ValueInfo {
    /// Shape per sample.
    pub shape: Shape,
    /// Nonnegative whatever the model's input (it follows a ReLU).
    pub nonnegative: bool,
    /// The node that produces it (`None` for the graph's input).
    pub producer: Option<usize>,
}

/// A node: an op applied to values.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its name (unique in the graph).
    pub name: String,
    /// The op.
    pub op: Arc<dyn Op>,
    /// The values it reads.
    pub inputs: Vec<ValueId>,
    /// The value it produces.
    pub output: ValueId,
}

/// A model: nodes in topological order from one input value to one output value.
#[derive(Clone, Debug)]
pub struct Graph {
    name: String,
    values: Vec<ValueInfo>,
    nodes: Vec<Node>,
    output: ValueId,
    /// Nodes marked sensitive ([`GraphBuilder::mark_sensitive`]).
    sensitive: Vec<usize>,
}

impl Graph {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The input value.
    pub fn input(&self) -> ValueId {
        ValueId(0)
    }

    /// The output value.
    pub fn output(&self) -> ValueId {
        self.output
    }

    /// The nodes, in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// What is known of value `v`.
    pub fn value(&self, v: ValueId) -> &ValueInfo {
        &self.values[v.0]
    }

    /// Number of values.
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// The input's shape per sample.
    pub fn input_shape(&self) -> Shape {
        self.values[0].shape
    }

    /// The output's shape per sample.
    pub fn output_shape(&self) -> Shape {
        self.values[self.output.0].shape
    }

    /// The GEMM layers (what schemes count as trainable layers), as node indices in order.
    pub fn gemm_nodes(&self) -> Vec<usize> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.op.is_gemm()).map(|(i, _)| i).collect()
    }

    /// For each GEMM layer, whether a scheme keeping sensitive layers at higher precision keeps
    /// it ([`crate::nn::TrainScheme::keep_sensitive`]): the nodes the builder marked, or, when it
    /// marked none, the first and the last GEMM layer.
    pub fn sensitive_gemms(&self) -> Vec<bool> {
        let gemms = self.gemm_nodes();
        let n = gemms.len();
        gemms
            .iter()
            .enumerate()
            .map(
                |(i, node)| {
                    if self.sensitive.is_empty() {
                        i == 0 || i + 1 == n
                    } else {
                        self.sensitive.contains(node)
                    }
                },
            )
            .collect()
    }

    /// Whether the builder marked node `node` sensitive ([`GraphBuilder::mark_sensitive`]).
    pub fn is_marked_sensitive(&self, node: usize) -> bool {
        self.sensitive.contains(&node)
    }

    /// Whether the output can serve as logits for classification — `(h, w, classes)`, a row of
    /// logits per position (`(1, 1, classes)` for a classifier, `(1, T, vocab)` for a language
    /// model) — and is not forced nonnegative (a ReLU on the logits would be a mistake).
    pub fn has_logits(&self) -> bool {
        let o = self.value(self.output);
        o.shape.2 >= 1 && !o.nonnegative
    }

    /// Classes of a classifier (the output's channels).
    pub fn classes(&self) -> usize {
        self.output_shape().2
    }

    /// Positions of the output, each with its own label in classification (1 for a classifier,
    /// T for a sequence model).
    pub fn positions(&self) -> usize {
        let o = self.output_shape();
        o.0 * o.1
    }
}

/// Builds a [`Graph`] node by node (see the module docs).
pub struct GraphBuilder {
    name: String,
    values: Vec<ValueInfo>,
    nodes: Vec<Node>,
    sensitive: Vec<usize>,
}

impl GraphBuilder {
    /// A graph named `name` whose input has `input` shape per sample.
    pub fn new(name: impl Into<String>, input: Shape) -> Self {
        GraphBuilder {
            name: name.into(),
            values: vec![ValueInfo { shape: input, nonnegative: false, producer: None }],
            nodes: Vec::new(),
            sensitive: Vec::new(),
        }
    }

    /// Marks the node producing `v` as sensitive: schemes that keep sensitive layers at higher
    /// precision keep it (see [`Graph::sensitive_gemms`]). Without marks, the first and the last
    /// GEMM layer are the sensitive ones.
    pub fn mark_sensitive(&mut self, v: ValueId) -> Result<()> {
        let node = self.values.get(v.0).and_then(|i| i.producer).ok_or_else(|| {
            Error::InvalidArgument(format!("graph {}: value {} is not a node's output", self.name, v.0))
        })?;
        if !self.sensitive.contains(&node) {
            self.sensitive.push(node);
        }
        Ok(())
    }

    /// The input value.
    pub fn input(&self) -> ValueId {
        ValueId(0)
    }

    /// The shape of a value built so far.
    pub fn shape(&self, v: ValueId) -> Shape {
        self.values[v.0].shape
    }

    /// Adds a node applying `op` to `inputs`; returns its output value.
    pub fn node(&mut self, name: impl Into<String>, op: impl Op + 'static, inputs: &[ValueId]) -> Result<ValueId> {
        self.node_arc(name.into(), Arc::new(op), inputs)
    }

    fn node_arc(&mut self, name: String, op: Arc<dyn Op>, inputs: &[ValueId]) -> Result<ValueId> {
        if name.is_empty() || self.nodes.iter().any(|n| n.name == name) {
            return Err(Error::InvalidArgument(format!(
                "graph {}: node name {name:?} is empty or used twice",
                self.name
            )));
        }
        if let Some(bad) = inputs.iter().find(|v| v.0 >= self.values.len()) {
            return Err(Error::InvalidArgument(format!("{name}: input value {} does not exist yet", bad.0)));
        }
        let shapes: Vec<Shape> = inputs.iter().map(|v| self.values[v.0].shape).collect();
        let shape = op.output_shape(&shapes).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{name}: {m}")),
            other => other,
        })?;
        if numel(shape) == 0 {
            return Err(Error::InvalidArgument(format!("{name}: empty output {shape:?}")));
        }
        let nonneg: Vec<bool> = inputs.iter().map(|v| self.values[v.0].nonnegative).collect();
        let v = ValueId(self.values.len());
        self.values.push(ValueInfo { shape, nonnegative: op.nonnegative(&nonneg), producer: Some(self.nodes.len()) });
        self.nodes.push(Node { name, op, inputs: inputs.to_vec(), output: v });
        Ok(v)
    }

    /// A Linear layer.
    pub fn linear(&mut self, name: impl Into<String>, x: ValueId, outputs: usize, relu: bool) -> Result<ValueId> {
        self.node(name, Linear { outputs, relu }, &[x])
    }

    /// A square-kernel convolution (`Conv::bias`: none where batch norm follows).
    pub fn conv(&mut self, name: impl Into<String>, x: ValueId, conv: Conv) -> Result<ValueId> {
        self.node(name, conv, &[x])
    }

    /// Batch normalization.
    pub fn batchnorm(&mut self, name: impl Into<String>, x: ValueId, relu: bool) -> Result<ValueId> {
        self.node(name, BatchNorm { relu }, &[x])
    }

    /// A standalone ReLU.
    pub fn relu(&mut self, name: impl Into<String>, x: ValueId) -> Result<ValueId> {
        self.node(name, Relu, &[x])
    }

    /// `relu?(a + b)`.
    pub fn add(&mut self, name: impl Into<String>, a: ValueId, b: ValueId, relu: bool) -> Result<ValueId> {
        self.node(name, Add { relu }, &[a, b])
    }

    /// k×k max pooling.
    pub fn maxpool(&mut self, name: impl Into<String>, x: ValueId, k: usize) -> Result<ValueId> {
        self.node(name, MaxPool { k }, &[x])
    }

    /// k×k average pooling.
    pub fn avgpool(&mut self, name: impl Into<String>, x: ValueId, k: usize) -> Result<ValueId> {
        self.node(name, AvgPool { k }, &[x])
    }

    /// Global average pooling.
    pub fn global_avgpool(&mut self, name: impl Into<String>, x: ValueId) -> Result<ValueId> {
        self.node(name, GlobalAvgPool, &[x])
    }

    /// Flatten.
    pub fn flatten(&mut self, name: impl Into<String>, x: ValueId) -> Result<ValueId> {
        self.node(name, Flatten, &[x])
    }

    /// A Dense layer (a Linear at every position, over the last dimension).
    pub fn dense(&mut self, name: impl Into<String>, x: ValueId, outputs: usize, relu: bool) -> Result<ValueId> {
        self.node(name, Dense { outputs, relu }, &[x])
    }

    /// Token plus position embedding of the ids in `x` `(h, w, 1)`.
    pub fn embedding(&mut self, name: impl Into<String>, x: ValueId, vocab: usize, dim: usize) -> Result<ValueId> {
        self.node(name, Embedding { vocab, dim }, &[x])
    }

    /// Layer normalization over the last dimension.
    pub fn layernorm(&mut self, name: impl Into<String>, x: ValueId) -> Result<ValueId> {
        self.node(name, LayerNorm, &[x])
    }

    /// GELU.
    pub fn gelu(&mut self, name: impl Into<String>, x: ValueId) -> Result<ValueId> {
        self.node(name, Gelu, &[x])
    }

    /// Multi-head self-attention over `qkv` `(h, w, 3C)`.
    pub fn attention(&mut self, name: impl Into<String>, qkv: ValueId, heads: usize, causal: bool) -> Result<ValueId> {
        self.node(name, Attention { heads, causal }, &[qkv])
    }

    /// The graph with `output` as its output. Every other value must be read by some node (a
    /// value nothing reads would get no gradient), and there must be at least one node.
    pub fn finish(self, output: ValueId) -> Result<Graph> {
        if self.nodes.is_empty() {
            return Err(Error::InvalidArgument(format!("graph {}: a model needs at least one layer", self.name)));
        }
        if output.0 >= self.values.len() || output.0 == 0 {
            return Err(Error::InvalidArgument(format!("graph {}: the output must be a node's value", self.name)));
        }
        let mut read = vec![false; self.values.len()];
        for n in &self.nodes {
            for v in &n.inputs {
                read[v.0] = true;
            }
        }
        read[output.0] = true;
        if let Some(v) = read.iter().position(|r| !r) {
            let what = match self.values[v].producer {
                Some(p) => format!("the output of node {}", self.nodes[p].name),
                None => "the input".to_string(),
            };
            return Err(Error::InvalidArgument(format!("graph {}: {what} is never used", self.name)));
        }
        Ok(Graph { name: self.name, values: self.values, nodes: self.nodes, output, sensitive: self.sensitive })
    }
}

impl ModelSpec {
    /// The graph of this layer list: node `layers.{i}` for layer i; a residual block's layers
    /// are `layers.{i}.main.{j}` and `layers.{i}.shortcut.{j}`, merged by `layers.{i}.add`.
    pub fn to_graph(&self) -> Result<Graph> {
        let mut b = GraphBuilder::new(self.name.clone(), self.input);
        let mut v = b.input();
        for (i, l) in self.layers.iter().enumerate() {
            v = add_layer(&mut b, format!("layers.{i}"), l, v)?;
        }
        b.finish(v)
    }
}

fn add_layer(b: &mut GraphBuilder, name: String, l: &LayerSpec, x: ValueId) -> Result<ValueId> {
    match *l {
        LayerSpec::Linear { outputs, relu } => b.linear(name, x, outputs, relu),
        LayerSpec::Conv { channels, kernel, stride, pad, relu, bias } => {
            b.conv(name, x, Conv { channels, kernel, stride, pad, relu, bias })
        }
        LayerSpec::BatchNorm { relu } => b.batchnorm(name, x, relu),
        LayerSpec::MaxPool { k } => b.maxpool(name, x, k),
        LayerSpec::AvgPool { k } => b.avgpool(name, x, k),
        LayerSpec::GlobalAvgPool => b.global_avgpool(name, x),
        LayerSpec::Relu => b.relu(name, x),
        LayerSpec::Residual { ref main, ref shortcut, relu } => {
            let mut m = x;
            for (j, l) in main.iter().enumerate() {
                m = add_layer(b, format!("{name}.main.{j}"), l, m)?;
            }
            let mut s = x;
            for (j, l) in shortcut.iter().enumerate() {
                s = add_layer(b, format!("{name}.shortcut.{j}"), l, s)?;
            }
            b.add(format!("{name}.add"), m, s, relu)
        }
    }
}
