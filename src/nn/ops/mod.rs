//! The ops a graph is built from, one per file: each holds its shape rule, its parameters, and
//! how it records its forward and its backward (see [`super::op`]).

pub mod add;
pub mod attention;
pub mod avgpool;
pub mod batchnorm;
pub mod conv;
pub mod dense;
pub mod embedding;
pub mod flatten;
pub mod gelu;
pub mod global_avgpool;
pub mod layernorm;
pub mod linear;
pub mod loss;
pub mod maxpool;
pub mod relu;

pub use add::Add;
pub use attention::Attention;
pub use avgpool::AvgPool;
pub use batchnorm::BatchNorm;
pub use conv::Conv;
pub use dense::Dense;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use gelu::Gelu;
pub use global_avgpool::GlobalAvgPool;
pub use layernorm::LayerNorm;
pub use linear::Linear;
pub use loss::Loss;
pub use maxpool::MaxPool;
pub use relu::Relu;

use super::op::Shape;
use crate::{Error, Result};

/// The one input shape of a single-input op, or an error naming it.
pub(crate) fn one(kind: &str, inputs: &[Shape]) -> Result<Shape> {
    match inputs {
        [s] if s.0 * s.1 * s.2 > 0 => Ok(*s),
        [s] => Err(Error::InvalidArgument(format!("{kind}: empty input {s:?}"))),
        _ => Err(Error::InvalidArgument(format!("{kind} takes one input, got {}", inputs.len()))),
    }
}
