//! `gemm_fp8_coop`: [`super::gemm_fp8`]'s products on the cooperative-matrix unit (tensor
//! cores), within an f32 bound of the exact product rather than gemm_fp8's bits. Each K step's
//! FP8 codes are decoded to f16 in workgroup memory (every E4M3 and E5M2 value is exact in f16)
//! and multiplied as f16 × f16 → f32 cooperative matrices (products exact in f32); at every scale
//! chunk's end the unit's sums are scaled by A's and B's scales and added up in f32:
//! `|c − C| ≤ (K + 3·chunks + 6)·2⁻²⁴·Σ|terms|` ([`bound`]). The loop is `gemm_int_coop`'s
//! (`shaders/common/gemm_coop.wgsl`): 64×64 output tiles, 8×8×8 or 16×16×16 matrices, the
//! adapter conditions of [`GemmIntCoop::size`](super::gemm_int_coop::GemmIntCoop::size), one sample of A, scale chunks over all of K or
//! in multiples of the matrix size ([`GemmIntCoop::fits`](super::gemm_int_coop::GemmIntCoop::fits); MXFP8's 32 are). [`super::gemm_fp8::GemmFp8`]
//! runs it where the adapter has it and the lanes kernel does not apply, and
//! [`super::gemm_fp8::GemmFp8::encode_coop`] asks for it by name.
//! Bindings: as gemm_fp8's. Reference: [`crate::reference::gemm_fp8_coop`].

use super::gemm_fp8::check_fp8_formats;
use super::gemm_int_coop::CoopPipeline;
use crate::format::Format;
use crate::{Gpu, Result};

/// The bound on `|gemm_fp8_coop − exact|` relative to `Σ|terms|` (the reference's `magnitude`)
/// for a product over `k` elements in `chunks` scale chunks (see the shader's header).
pub fn bound(k: usize, chunks: usize) -> f64 {
    (k as f64 + 3.0 * chunks as f64 + 6.0) * 2f64.powi(-24)
}

/// The cooperative FP8 GEMM for one pair of operand formats.
pub struct GemmFp8Coop(CoopPipeline);

impl GemmFp8Coop {
    /// Builds the pipeline for A in `fmt_a` and B in `fmt_b` (each fp8-e4m3, fp8-e5m2 or mxfp8),
    /// or says why this adapter cannot run it.
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        check_fp8_formats("gemm_fp8_coop", [fmt_a, fmt_b])?;
        Ok(GemmFp8Coop(CoopPipeline::new(gpu, "gemm_fp8_coop", fmt_a, fmt_b)?))
    }

    /// The matrix size this pipeline runs.
    pub fn matrix_size(&self) -> u32 {
        self.0.matrix_size()
    }

    /// The pipeline, which checks and records the products (gemm_fp8's params with 64×64 tiles,
    /// without the raw flag).
    pub(crate) fn pipeline(&self) -> &CoopPipeline {
        &self.0
    }
}
