//! `gemm_f32_lanes`: the f32 GEMM for CPU adapters whose subgroup is one 8-lane SIMD vector
//! (lavapipe on x86 with AVX2: `subgroup_sizes` 8..8).
//!
//! Math: as [`super::gemm_f32`], `C = epilogue(op(A)·op(B)ᵀ)` with A stored `[M, K]` or `[K, M]`
//! and B stored `[N, K]` or `[K, N]`, products in a batch one after another. Layout: a workgroup
//! is one subgroup of 8 invocations and owns 16 rows × 32 columns of C; K runs in steps of 4, each
//! lane loading vec4s of both operands and receiving A's values from the other lanes by
//! `subgroupBroadcast`, so no value goes through workgroup memory (on llvmpipe every workgroup or
//! buffer load runs lane by lane, which is what held the tiled kernel there to ~0.1 of the FMA
//! rate). The vec4s are loaded as such where each stays within a row of its operand (`K`, and `M`
//! where A is stored `[K, M]` or `N` where B is stored `[K, N]`, multiples of 4:
//! [`GemmF32Lanes::vectorized`]), else assembled from scalar loads (the `main_scalar` entry).
//! A product of few tiles over a long K (a convolution's weight gradient, whose K is the batch's
//! pixels: one tile, one of a CPU's threads) is split along K as [`super::gemm::split_plan`] cuts
//! it, planned from this kernel's 16×32 tiles: each split's partial sums into scratch, which
//! `col_sum` adds in split order (one launch more; no epilogue, one product). A product narrower
//! than the tile and taller than it is wide (N ≤ 16: a first convolution's 16 output channels, a
//! classifier's 10 classes) runs as `Cᵀ = B·Aᵀ`, stored as C, where its tiles idle less (the same
//! products added in the same order, so the same bits). [`super::gemm_f32::GemmF32`] takes this
//! kernel for every shape where the adapter has it (a CPU adapter). Bindings: as gemm_f32's.
//! Reference: [`crate::reference::gemm_f32_lanes`].

use super::gemm::{Dummies, Epilogue, F32_SLOTS};
use super::gemm_f32::{encode_f32, GemmShape};
use super::{layouts, pipeline};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// Rows of C per workgroup.
pub const TILE_M: u32 = 16;
/// Columns of C per workgroup.
pub const TILE_N: u32 = 32;
/// Invocations per workgroup, which must be the adapter's one subgroup size.
pub const LANES: u32 = 8;

/// The f32 GEMM for 8-lane CPU subgroups.
pub struct GemmF32Lanes {
    bgl: wgpu::BindGroupLayout,
    /// Indexed by `4·scalar + 2·trans_a + trans_b`.
    pipelines: Vec<wgpu::ComputePipeline>,
    /// Shared with the [`super::gemm_f32::GemmF32`] that owns this kernel, if one does.
    dummies: Arc<Dummies>,
}

impl GemmF32Lanes {
    /// Whether `gpu` can run this kernel: subgroups enabled and every subgroup exactly
    /// [`LANES`] wide (so a workgroup of 8 is one subgroup).
    pub fn available(gpu: &Gpu) -> bool {
        gpu.device.features().contains(wgpu::Features::SUBGROUP) && gpu.report().subgroup_sizes == Some((LANES, LANES))
    }

    /// Whether the dispatchers take the lanes kernels on `gpu`: a CPU adapter where they are
    /// [`available`](GemmF32Lanes::available) (on a GPU the tiled kernels are the faster ones).
    pub(crate) fn chosen(gpu: &Gpu) -> bool {
        gpu.cpu_layouts() && Self::available(gpu)
    }

    /// `Ok` where [`GemmF32Lanes::available`], else the error naming lanes kernel `name` and what
    /// the adapter has.
    pub(crate) fn require(gpu: &Gpu, name: &str) -> Result<()> {
        if Self::available(gpu) {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "{name} needs subgroups of exactly {LANES} invocations; this adapter has subgroups {} of sizes {:?}",
            gpu.report().subgroups,
            gpu.report().subgroup_sizes
        )))
    }

    /// Whether shape `s` runs on vec4 loads (the faster entry): K a multiple of 4, and M (A stored
    /// `[K, M]`) or N (B stored `[K, N]`) too. Other shapes assemble their vec4s from scalars.
    pub fn vectorized(s: GemmShape) -> bool {
        s.k.is_multiple_of(4) && (!s.trans_a || s.m.is_multiple_of(4)) && (!s.trans_b || s.n.is_multiple_of(4))
    }

    /// Builds both entries' pipelines for the four layouts; an error on an adapter without 8-lane
    /// subgroups.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_dummies(gpu, Arc::new(Dummies::new(gpu)?))
    }

    /// [`GemmF32Lanes::new`] binding `dummies` where an epilogue binds nothing.
    pub(crate) fn with_dummies(gpu: &Gpu, dummies: Arc<Dummies>) -> Result<Self> {
        Self::require(gpu, "gemm_f32_lanes")?;
        let (bgl, pl) = layouts(gpu, "gemm_f32_lanes", F32_SLOTS);
        let mut pipelines = Vec::new();
        for entry in ["main", "main_scalar"] {
            for (ta, tb) in [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)] {
                pipelines.push(pipeline(gpu, "gemm_f32_lanes", entry, &pl, &[("TRANS_A", ta), ("TRANS_B", tb)])?);
            }
        }
        Ok(GemmF32Lanes { bgl, pipelines, dummies })
    }

    /// Records `c ← epilogue(op(a)·op(b)ᵀ)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        s: GemmShape,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_batched(gpu, enc, a, b, s, 1, epi, c)
    }

    /// Records `batches` products of shape `s`, as [`super::gemm_f32::GemmF32::encode_batched`].
    #[allow(clippy::too_many_arguments)]
    pub fn encode_batched(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        s: GemmShape,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        // Cᵀ = B·Aᵀ where its tiles cover less padding and it loads as many vec4s (one product:
        // a batch's outputs are not transposed as a whole).
        let t = GemmShape { m: s.n, n: s.m, k: s.k, trans_a: s.trans_b, trans_b: s.trans_a };
        let swap = batches == 1 && super::gemm::lanes_swaps(s.m, s.n) && Self::vectorized(t) >= Self::vectorized(s);
        let (a, b, s) = if swap { (b, a, t) } else { (a, b, s) };
        let scalar = !Self::vectorized(s) as usize;
        let p = &self.pipelines[4 * scalar + 2 * s.trans_a as usize + s.trans_b as usize];
        let tile = (TILE_M, TILE_N);
        encode_f32(gpu, enc, "gemm_f32_lanes", &self.bgl, p, &self.dummies, tile, a, b, s, epi, c, true, batches, swap)
    }
}
