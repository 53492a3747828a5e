//! `gemm_int_lanes`: [`super::gemm_int`]'s products on a CPU adapter whose subgroups are one
//! 8-wide SIMD vector (lavapipe), bit for bit with gemm_int's `main` tiles (one scale chunk over
//! K, or scale blocks along it folded block by block as `main` folds them; SMP's stacked samples
//! of A through entry `main_samples`, averaged as `main` averages them).
//! gemm_int's tiles read workgroup memory, which llvmpipe loads lane by lane, and its
//! `dot4I8Packed` is emulated there; this kernel runs gemm_f32_lanes' 16×32
//! subgroup tiles (no workgroup memory, values shared by subgroup broadcasts) on the codes widened
//! to int8 lanes and converted to f32, summing 1024 products at a time in f32 (each such sum of
//! values of at most 128 × 128 is an integer of at most 2²⁴, so exact) into i32 accumulators.
//! Narrow products run as `Cᵀ = B·Aᵀ` as in gemm_f32_lanes (with B's format × A's, each output's
//! row scale still applied before its column's: the same bits).
//! Few tiles over a long K (a convolution's weight gradient: 16 output channels by 25 taps over
//! the batch's pixels is one tile, one of a CPU's threads) are split along K as
//! [`super::gemm::split_plan`] cuts them (one sample, one scale chunk over K, not raw: see
//! [`GemmIntLanes::splits`]): each split's exact i32 sums into scratch, then a launch of entry
//! `main_combine` adds them (exact, any order) and forms every output from the total, the same
//! bits in two launches.
//! [`super::gemm_int::GemmInt`]'s untiled entry points run it where it applies.
//! Bindings: as gemm_int's. Reference: [`crate::reference::gemm_int_lanes`].

use super::gemm::{Dummies, Epilogue, ExactCombine, GemmParams, LanesSplit, PackedLanes};
use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_int::check_int_formats;
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::{Error, Gpu, Result};

/// The longest scale block along K that entry `main` folds from f32 sums (`4 · CHUNK_WORDS` in the
/// shader: they must stay exact); longer chunks that do not span K take entry `main_samples`,
/// which sums each in i32 first.
pub const MAX_BLOCK: u32 = 1024;

/// Whether scale chunks of `chunk` elements over a K of `k` are longer than entry `main` folds
/// from f32 sums ([`MAX_BLOCK`]) yet do not span K (the exact i32 run of a longer K: int8 × int8
/// past 131,040): entry `main_samples` takes such a product whole, and never as `Cᵀ`.
pub(crate) fn long_chunks(chunk: u32, k: u32) -> bool {
    chunk < k && chunk > MAX_BLOCK
}

/// The lanes integer GEMM for one pair of operand formats.
pub struct GemmIntLanes(PackedLanes, ExactCombine);

impl GemmIntLanes {
    /// Whether `gpu` can run this kernel ([`GemmF32Lanes::available`]).
    pub fn available(gpu: &Gpu) -> bool {
        GemmF32Lanes::available(gpu)
    }

    /// Whether it computes these operands' product: A with one sample, or SMP's stacked samples
    /// (averaged as gemm_int averages them), and any scale chunks along K: one over all of K,
    /// blocks of at most [`MAX_BLOCK`] elements (folded from exact f32 sums), or longer chunks
    /// (the exact i32 run of a K longer than it, `scheme::exact_chunk`: int8 × int8 past 131,040,
    /// a weight gradient over the pixels of 128 CIFAR images; summed in i32, then folded).
    pub fn fits(a: &QuantizedTensor, _b: &QuantizedTensor) -> bool {
        a.samples >= 1
    }

    /// The K splits of an unbatched, non-raw product of these operands ([`fits`](Self::fits)):
    /// more than 1 where A has one sample, one scale chunk spans K or K holds several chunks of
    /// an exact i32 run (int8 × int8 past 131,040: [`crate::scheme::exact_chunk`]), and its
    /// 16×32 tiles (those of `Cᵀ` where the launch computes that) are few for a long K
    /// ([`super::gemm::split_plan`]'s count, cut at every chunk's end:
    /// [`super::gemm::exact_split_plan`]): then the product takes two launches.
    pub fn splits(a: &QuantizedTensor, b: &QuantizedTensor) -> u32 {
        use super::gemm_f32_lanes::{TILE_M, TILE_N};
        let (m, n, k) = (a.layout.rows, b.layout.rows, a.layout.cols);
        let chunk = a.layout.shared_chunk(&b.layout);
        if a.samples != 1 {
            return 1;
        }
        let (m, n) =
            if !long_chunks(chunk, k) && super::gemm::lanes_swaps(m as usize, n as usize) { (n, m) } else { (m, n) };
        let tiles = m.div_ceil(TILE_M) * n.div_ceil(TILE_N);
        super::gemm::exact_split_plan(tiles, k as usize, chunk as usize, 0).0
    }

    /// Builds the pipeline for A in `fmt_a` and B in `fmt_b` (any of gemm_int's
    /// [`INT_FORMATS`](super::gemm_int::INT_FORMATS)); an error on an adapter without 8-lane
    /// subgroups.
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        check_int_formats("gemm_int_lanes", [fmt_a, fmt_b])?;
        let lanes = PackedLanes::new(gpu, "gemm_int_lanes", fmt_a, fmt_b)?;
        Ok(GemmIntLanes(lanes, ExactCombine::new(gpu, "gemm_int_lanes", fmt_a, fmt_b)))
    }

    /// Records the product of `p` (gemm_int's params for these operands, already checked, one
    /// split) with this kernel's 16×32 tiles; an error if the operands do not [`fits`](Self::fits).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        p: GemmParams,
        dummies: &Dummies,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &wgpu::Buffer,
    ) -> Result<()> {
        if !Self::fits(a, b) {
            return Err(Error::InvalidArgument("gemm_int_lanes: A holds no sample".into()));
        }
        self.0.record(gpu, enc, p, dummies, a, b, epi, c, LanesSplit::Exact(&self.1))
    }
}
