//! Data-parallel training: replicas of one model, one per GPU (on one machine or several),
//! each training on its own part of every global batch and exchanging gradients every step —
//! in low precision, which is what this crate is about.
//!
//! - [`Codec`] (always built) encodes a [`Trainer`]'s gradients for the exchange **on the GPU**
//!   — `fp32` as they are; `int8` per row and `log4` (LUQ's format) per row, both with
//!   stochastic rounding, so the exchanged gradient stays an unbiased estimate — optionally with
//!   error feedback (`+ef`: the part a step's encoding lost is added to the next step's
//!   gradient, on the GPU, by the `error_feedback` kernel), and decodes every replica's payload
//!   and averages them **in rank order** on the host, with the reference decoders that the
//!   kernels are tested against bit for bit, so every replica gets the same bits on every
//!   backend.
//! - With the `mpi` feature, `dist::mpi::Replica` moves the payloads over MPI (rsmpi): see its docs
//!   and the `dist` example.
//!
//! A "row" is a weight's output row (its first dimension); a bias or any one-dimensional
//! parameter is one row. Payloads are little-endian: per tensor, its codes (`u32` words) and then
//! its scales (`f32`), or its `f32` values for `fp32`.

#[cfg(feature = "mpi")]
pub mod mpi;

use crate::format::Format;
use crate::kernels::{add::Add, error_feedback::ErrorFeedback};
use crate::nn::Trainer;
use crate::quant::Quantizer;
use crate::rng::streams;
use crate::scheme::{QuantLayout, QuantScheme};
use crate::tensor::{GpuBuffer, GpuTensor};
use crate::{Error, Gpu, Record, Recorder, Result};

/// How gradients travel between replicas.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// f32 values (the baseline: 4 bytes per value).
    Fp32,
    /// int8 codes, one f32 scale per row, stochastic rounding (1 byte per value).
    Int8,
    /// LUQ's 4-bit log codes, one f32 scale per row, stochastic underflow and rounding (½ byte
    /// per value).
    Log4,
}

/// A gradient exchange: the codec and whether it carries error feedback.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The encoding.
    pub codec: Encoding,
    /// Error feedback: add what the last encoding lost to the next gradient before encoding it.
    pub error_feedback: bool,
}

impl Exchange {
    /// The fp32 exchange.
    pub const FP32: Exchange = Exchange { codec: Encoding::Fp32, error_feedback: false };

    /// `fp32`, `int8`, `log4`, the last two optionally with `+ef`.
    pub fn parse(s: &str) -> Result<Exchange> {
        let (base, ef) = match s.strip_suffix("+ef") {
            Some(b) => (b, true),
            None => (s, false),
        };
        let codec = match base {
            "fp32" => Encoding::Fp32,
            "int8" => Encoding::Int8,
            "log4" => Encoding::Log4,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown exchange '{s}' (fp32, int8, log4, int8+ef, log4+ef)"
                )))
            }
        };
        if ef && codec == Encoding::Fp32 {
            return Err(Error::InvalidArgument("the fp32 exchange loses nothing: '+ef' is for int8 and log4".into()));
        }
        Ok(Exchange { codec, error_feedback: ef })
    }

    /// The quantized format, if any.
    pub fn format(self) -> Option<Format> {
        match self.codec {
            Encoding::Fp32 => None,
            Encoding::Int8 => Some(Format::Int8),
            Encoding::Log4 => Some(Format::Log4),
        }
    }
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = match self.codec {
            Encoding::Fp32 => "fp32",
            Encoding::Int8 => "int8",
            Encoding::Log4 => "log4",
        };
        write!(f, "{c}{}", if self.error_feedback { "+ef" } else { "" })
    }
}

/// One exported gradient tensor: where it lives and how it is encoded.
struct Tensor {
    name: String,
    grad: GpuBuffer<f32>,
    /// Offset (in values) inside `grad`.
    offset: usize,
    rows: usize,
    cols: usize,
    /// The tensor copied out of `grad` (what is encoded).
    staging: GpuTensor,
    /// `staging` plus the residual, with error feedback.
    fed: Option<GpuTensor>,
    /// The residual carried to the next step, with error feedback.
    residual: Option<GpuBuffer<f32>>,
    layout: Option<QuantLayout>,
}

impl Tensor {
    fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Payload bytes of this tensor.
    fn bytes(&self) -> usize {
        match self.layout {
            None => 4 * self.len(),
            Some(l) => 4 * (l.rows * l.words_per_row) as usize + 4 * l.n_groups as usize,
        }
    }
}

/// Encodes a trainer's gradients on the GPU for an [`Exchange`] and decodes and averages the
/// replicas' payloads (see the [module docs](self)).
pub struct Codec {
    gpu: Gpu,
    exchange: Exchange,
    seed: u32,
    tensors: Vec<Tensor>,
    quantizer: Quantizer,
    add: Add,
    residual: ErrorFeedback,
}

impl Codec {
    /// A codec for `trainer`'s gradient buffers (built once; it reads them where the trainer
    /// keeps them). Stochastic rounding draws from the trainer's seed, in the
    /// [`streams::exchange`] streams.
    pub fn new(trainer: &Trainer, exchange: Exchange) -> Result<Self> {
        let gpu = trainer.gpu().clone();
        let mut tensors = Vec::new();
        for (grad, exports) in trainer.gradient_slots() {
            for (name, shape, offset) in exports {
                let len: usize = shape.iter().product();
                let rows = if shape.len() > 1 { shape[0] } else { 1 };
                let cols = len / rows.max(1);
                let layout = exchange
                    .format()
                    .map(|f| QuantLayout::new(rows, cols, f, crate::scheme::Granularity::PerRow))
                    .transpose()?;
                let zeros = || GpuTensor::zeros(&gpu, &[rows, cols]);
                tensors.push(Tensor {
                    name,
                    grad: grad.clone(),
                    offset,
                    rows,
                    cols,
                    staging: zeros()?,
                    fed: exchange.error_feedback.then(zeros).transpose()?,
                    residual: exchange
                        .error_feedback
                        .then(|| GpuBuffer::zeros(&gpu, "exchange residual", len))
                        .transpose()?,
                    layout,
                });
            }
        }
        if tensors.is_empty() {
            return Err(Error::InvalidArgument("Codec: the model has no trainable parameter".into()));
        }
        Ok(Codec {
            quantizer: Quantizer::new(&gpu)?,
            add: Add::new(&gpu)?,
            residual: ErrorFeedback::new(&gpu)?,
            gpu,
            exchange,
            seed: trainer.seed(),
            tensors,
        })
    }

    /// The exchange.
    pub fn exchange(&self) -> Exchange {
        self.exchange
    }

    /// Bytes one replica's payload takes (the same every step).
    pub fn payload_bytes(&self) -> usize {
        self.tensors.iter().map(Tensor::bytes).sum()
    }

    /// Values exchanged (the gradients' total length).
    pub fn values(&self) -> usize {
        self.tensors.iter().map(Tensor::len).sum()
    }

    /// The tensors' names, in payload order.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.iter().map(|t| t.name.as_str()).collect()
    }

    /// Encodes the gradients now in the trainer's buffers, as replica `rank` of `ranks` at
    /// `step`, into a payload of [`Codec::payload_bytes`] bytes (waits for the GPU).
    pub fn encode(&self, step: u64, rank: u32, ranks: u32) -> Result<Vec<u8>> {
        let gpu = &self.gpu;
        let mut rec = Recorder::new(gpu, "lowbit exchange encode");
        let mut quantized = Vec::new();
        let n = self.tensors.len();
        for (i, t) in self.tensors.iter().enumerate() {
            rec.copy(t.grad.buffer(), 4 * t.offset as u64, t.staging.buffer().buffer(), 0, 4 * t.len() as u64);
            let Some(layout) = t.layout else { continue };
            let v = match (&t.fed, &t.residual) {
                (Some(fed), Some(e)) => {
                    self.add.encode(gpu, &mut rec, t.staging.buffer(), Some(e), false, fed.buffer())?;
                    fed
                }
                _ => &t.staging,
            };
            let scheme =
                QuantScheme::per_row(layout.format).stochastic(self.seed, streams::exchange(step, rank, ranks, i, n));
            let q = self.quantizer.quantize(gpu, &mut rec, v, scheme)?;
            if let Some(e) = &t.residual {
                let d = self.quantizer.dequantize(gpu, &mut rec, &q)?;
                self.residual.encode(gpu, &mut rec, v.buffer(), d.buffer(), e)?;
            }
            quantized.push(q);
        }
        gpu.submit([rec.finish()]);
        let mut out = Vec::with_capacity(self.payload_bytes());
        if self.exchange.format().is_none() {
            for t in &self.tensors {
                out.extend(t.staging.read(gpu)?.iter().flat_map(|v| v.to_le_bytes()));
            }
        } else {
            for q in &quantized {
                out.extend(q.codes.read(gpu)?.iter().flat_map(|v| v.to_le_bytes()));
                out.extend(q.scales.read(gpu)?.iter().flat_map(|v| v.to_le_bytes()));
            }
        }
        debug_assert_eq!(out.len(), self.payload_bytes());
        Ok(out)
    }

    /// Decodes every replica's payload (`payloads[r]` from rank `r`) and averages them per
    /// value, summing in rank order in f32 and dividing by the number of replicas: the same
    /// bits wherever it runs. One vector per tensor, in payload order.
    pub fn decode_mean(&self, payloads: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        let want = self.payload_bytes();
        if payloads.is_empty() {
            return Err(Error::Empty("Codec::decode_mean"));
        }
        if let Some((r, p)) = payloads.iter().enumerate().find(|(_, p)| p.len() != want) {
            return Err(Error::InvalidArgument(format!(
                "exchange payload of rank {r} holds {} bytes, not the {want} this model's {} exchange needs",
                p.len(),
                self.exchange
            )));
        }
        let words = |b: &[u8]| -> Vec<u32> {
            b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        };
        let floats = |b: &[u8]| -> Vec<f32> { words(b).into_iter().map(f32::from_bits).collect() };
        let mut out = Vec::with_capacity(self.tensors.len());
        let mut at = 0;
        for t in &self.tensors {
            let bytes = t.bytes();
            let mut sum = vec![0f32; t.len()];
            for p in payloads {
                let chunk = &p[at..at + bytes];
                let v = match t.layout {
                    None => floats(chunk),
                    Some(l) => {
                        let code_bytes = 4 * (l.rows * l.words_per_row) as usize;
                        crate::reference::dequantize::dequantize(
                            &words(&chunk[..code_bytes]),
                            &floats(&chunk[code_bytes..]),
                            &l,
                        )
                    }
                };
                for (s, v) in sum.iter_mut().zip(v) {
                    *s += v;
                }
            }
            let n = payloads.len() as f32;
            out.push(sum.into_iter().map(|s| s / n).collect());
            at += bytes;
        }
        Ok(out)
    }

    /// The residuals error feedback carries to the next step, one vector per tensor (empty
    /// without error feedback).
    pub fn residuals(&self) -> Result<Vec<Vec<f32>>> {
        self.tensors.iter().filter_map(|t| t.residual.as_ref()).map(|e| e.read(&self.gpu)).collect()
    }

    /// Writes `values` (one vector per tensor, as [`Codec::decode_mean`] returns them) into the
    /// trainer's gradient buffers, for [`Trainer::apply_gradients`].
    pub fn write(&self, values: &[Vec<f32>]) -> Result<()> {
        if values.len() != self.tensors.len() {
            return Err(Error::InvalidArgument(format!(
                "Codec::write: {} tensors, the model has {}",
                values.len(),
                self.tensors.len()
            )));
        }
        for (t, v) in self.tensors.iter().zip(values) {
            if v.len() != t.len() {
                return Err(Error::Shape {
                    op: "Codec::write",
                    detail: format!("{}: {} values, not {}", t.name, v.len(), t.len()),
                });
            }
        }
        for (t, v) in self.tensors.iter().zip(values) {
            t.grad.write_at(&self.gpu, t.offset, v)?;
        }
        Ok(())
    }
}
