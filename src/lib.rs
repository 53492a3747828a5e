//! # lowbit
//!
//! GPU compute kernels for low-bitwidth neural-network training, on wgpu (Vulkan, Metal, DX12).
//!
//! ## Architecture in one screen
//! - **Formats are data** ([`format`](mod@format)): INT8, INT4, INT3, INT2, FP8 E4M3/E5M2, FP4 E2M1,
//!   the block-scaled MXFP8, MXFP4 and NVFP4 (their E8M0 and E4M3 scale grids in
//!   [`format::scale`]) and LUQ's 4-bit log format (TinyScript's fitted levels in
//!   [`tinyscript`]), each a documented bit layout with a scalar encode/decode that *is* the
//!   specification. The WGSL
//!   mirrors live in `shaders/common/`, function for function.
//! - **Deterministic randomness** ([`rng`]): one counter hash of (seed, stream, element index),
//!   identical in Rust and WGSL, so stochastic rounding is reproducible and testable bit for bit;
//!   a training run numbers its streams so that no two uses share one.
//! - **One name per kernel, three files**: `shaders/<k>.wgsl`, its launcher
//!   [`kernels`]`::<k>` (a struct built once from a [`Gpu`]) and its CPU reference
//!   [`reference`](mod@reference)`::<k>`. A launcher never submits and never makes a bind group:
//!   it hands each dispatch's buffers, copies, clears and scratch requests to a [`Record`].
//! - **Record once, replay every step** ([`plan`]): a [`plan::Tape`] is a `Record` that keeps what
//!   it is given; finished, it packs scratch values by lifetime into shared arena buffers and makes
//!   every bind group once. A [`plan::Plan`] replays with set-pipeline, set-bind-group and
//!   dispatch, and one [`record::StepState`] uniform (random-stream base, learning rate, loss
//!   slot) is all that changes between steps.
//! - **Schemes and policies**: [`scheme`] is format × granularity × rounding for one tensor;
//!   [`nn::TrainScheme`] and its presets give each GEMM layer a [`nn::LayerScheme`], which says
//!   how each operand of each of its three products is quantized ([`nn::policy`]).
//! - **Training** ([`nn`]): a model is a [`nn::Graph`] of ops, one file each under `nn/ops`
//!   (forward and backward side by side; add your own through [`nn::Op`]); the
//!   [`nn::Trainer`] compiles it into step plans. [`nn::layer`] runs a quantized Linear or Conv2d
//!   on your own tensors without a trainer.
//! - **Several GPUs** ([`dist`]): data-parallel replicas exchange gradients encoded on the GPU
//!   (fp32, int8, LUQ log4, with error feedback) and average them in rank order; over MPI with
//!   the `mpi` feature.
//! - **The quantizer API** ([`quant::Quantizer`]): picks the one-pass fused kernel where every
//!   workgroup can own whole scale groups, the two-pass `absmax → quantize` elsewhere.
//! - **Typed buffers** ([`tensor`]) and the **GPU context** ([`Gpu`]: cheap to clone, counts the
//!   GPU objects lowbit creates, keeps its own profiler and shared kernel sets).
//!
//! Everything a kernel computes is specified bit for bit by its reference: rounding happens in
//! integer arithmetic on f32 bit patterns and scales are inverted by an exact integer reciprocal,
//! so results do not depend on a device's division accuracy or on FMA contraction.
//!
//! ```no_run
//! use lowbit::{format::Format, quant::Quantizer, scheme::QuantScheme, Gpu, GpuTensor};
//! let gpu = Gpu::new()?;
//! let x = GpuTensor::from_slice(&gpu, &[0.5, -1.25, 3.0, 0.01], &[2, 2])?;
//! let qz = Quantizer::new(&gpu)?;
//! let mut enc = gpu.device.create_command_encoder(&Default::default());
//! let q = qz.quantize(&gpu, &mut enc, &x, QuantScheme::per_row(Format::Int8).stochastic(42, 0))?;
//! let back = qz.dequantize(&gpu, &mut enc, &q)?;
//! gpu.submit([enc.finish()]);
//! println!("{:?}", back.read(&gpu)?);
//! # Ok::<(), lowbit::Error>(())
//! ```

#![warn(missing_docs)]
// Launchers take the GPU, the encoder and every buffer explicitly (as candle's kernels do), so
// what a kernel reads and writes is visible at the call site.
#![allow(clippy::too_many_arguments)]

pub mod data;
pub mod dist;
mod error;
pub mod format;
pub mod gpu;
pub mod kernels;
pub mod nn;
pub mod plan;
pub mod profile;
pub mod quant;
pub mod record;
pub mod reference;
pub mod rng;
pub mod scheme;
pub mod shaders;
pub mod tensor;
pub mod timing;
pub mod tinyscript;

pub use error::{Error, Result};
pub use gpu::{AdapterReport, Gpu, Layouts};
pub use record::{Record, Recorder};
pub use tensor::{GpuBuffer, GpuTensor};

/// The README's Rust examples, compiled by `cargo test` so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
