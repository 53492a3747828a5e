//! `hadamard`: block Walsh–Hadamard rotation along one axis, for BHQ-style variance reduction.
//!
//! Math: `out = x·H_B` per block of `B` (a power of two, 2…256) consecutive elements along the
//! chosen axis, `H_B` the normalized (orthogonal) Hadamard matrix, so `H Hᵀ = I` and rotating
//! both GEMM operands along K leaves `A·Bᵀ` unchanged while spreading outliers before they are
//! quantized. With a sign key it is a random Hadamard transform `x·D·H_B` (`D` a fixed
//! pseudo-random ±1 diagonal, [`RANDOM_SIGNS`] in training: NVIDIA's NVFP4 recipe rotates the
//! weight gradient's operands with a 16×16 one). Layout: 256/B vectors per workgroup,
//! butterflies in workgroup memory.
//! Bindings: 0 params, 1 x (read), 2 out (read-write). Reference: [`crate::reference::hadamard`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot};
pub use crate::reference::hadamard::{scale, Axis};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// The sign key of the random Hadamard transforms the trainer applies (any fixed nonzero key:
/// both operands of a product must use the same one).
pub const RANDOM_SIGNS: u32 = 0x9e37_79b9;

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct HadamardParams {
    rows: u32,
    cols: u32,
    block: u32,
    axis: u32,
    n_vectors: u32,
    scale: f32,
    signs: u32,
    pad: u32,
}
const _: () = assert!(std::mem::size_of::<HadamardParams>() == 32);

/// The rotation kernel.
pub struct Hadamard {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Hadamard {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "hadamard", &[Slot::Uniform, Slot::Read, Slot::Write]);
        Ok(Hadamard { pipeline: pipeline(gpu, "hadamard", "main", &pl, &[])?, bgl })
    }

    /// Records `out ← x·H` blockwise along `axis` of the `[rows, cols]` tensor `x`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        block: u32,
        axis: Axis,
    ) -> Result<()> {
        self.encode_signed(gpu, enc, x, out, (rows, cols), block, axis, 0)
    }

    /// Records `out ← x·D·H` blockwise, `D` the ±1 diagonal of sign key `signs` (0: none).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_signed(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
        (rows, cols): (usize, usize),
        block: u32,
        axis: Axis,
        signs: u32,
    ) -> Result<()> {
        if !(2..=256).contains(&block) || !block.is_power_of_two() {
            return Err(Error::InvalidArgument(format!("hadamard: block {block} must be a power of two in 2..=256")));
        }
        let along = if axis == Axis::Cols { cols } else { rows };
        if along % block as usize != 0 {
            return Err(Error::Shape {
                op: "hadamard",
                detail: format!("the rotated dimension ({along}) must be a multiple of the block ({block})"),
            });
        }
        check_len("hadamard", "x", x.len(), rows * cols)?;
        check_len("hadamard", "out", out.len(), rows * cols)?;
        let n_vectors = (rows * cols / block as usize) as u32;
        let p = HadamardParams {
            rows: rows as u32,
            cols: cols as u32,
            block,
            axis: (axis == Axis::Rows) as u32,
            n_vectors,
            scale: scale(block),
            signs,
            pad: 0,
        };
        let params = uniform(gpu, "hadamard", &p);
        dispatch(
            gpu,
            enc,
            "hadamard",
            &self.pipeline,
            &self.bgl,
            &[&params, x.buffer(), out.buffer()],
            n_vectors.div_ceil(256 / block),
        )
    }
}
