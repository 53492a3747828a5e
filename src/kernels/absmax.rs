//! `absmax`: the largest finite, normal `|x|` of every scale group.
//!
//! Math: `amax[g] = max { |x[r][c]| : group(r, c) = g, x finite and normal }`, written as f32 bits
//! (non-negative floats order like their bits, so `atomicMax` on `u32` is a float max).
//! Layout: 256 threads per workgroup, each owning one packed word (`per_word` elements) of a row;
//! a tree reduction over segments of `seg` words (one scale group, or the whole tile), then one
//! `atomicMax` per segment. `transposed` reads the logical tensor from storage `[cols, rows]`.
//! One group over the whole tensor (per-tensor scales) is reduced flat, 4096 elements per
//! workgroup, in either orientation. On a CPU adapter ([`ReducePath::PerThread`]) the grouped
//! layouts take entries `main_thread` / `main_thread_v4` instead: a thread per block (or per
//! [`THREAD_SPAN`] columns of a row), no workgroup memory or barriers, vec4 loads where the rows
//! split into vec4s; the same bits (a maximum does not depend on order). Whole-tensor groups
//! take them too, as one row of all of x.
//! [`Absmax::encode_masked`] reduces x read as 0 wherever a mask (ReLU's output Y) is not above 0:
//! the maximum of a ReLU layer's gradient without a `relu_backward` launch (same bits).
//! Bindings: 0 `QuantParams`, 1 x (read f32), 2 amax (read-write u32, `n_groups`), 3 mask (read
//! f32, x's layout; x itself when unmasked).
//! Reference: [`crate::reference::absmax`].

use super::quantize_fused::ReducePath;
use super::{check_len, dispatch, layouts, pipeline, uniform, QuantParams, Slot};
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The absmax kernel.
pub struct Absmax {
    bgl: wgpu::BindGroupLayout,
    entries: Entries,
}

/// The pipelines of one reduce path (the other path's are never dispatched, so not built).
enum Entries {
    /// `main`, `main_t` and `main_flat`.
    Tree { grouped: wgpu::ComputePipeline, transposed: wgpu::ComputePipeline, flat: wgpu::ComputePipeline },
    /// `main_thread` and `main_thread_v4`.
    PerThread { scalar: wgpu::ComputePipeline, v4: wgpu::ComputePipeline },
}

/// Columns of a row each thread of the per-thread entries reduces, where the group is a whole
/// row (or the tensor); a block-scaled group is one thread's.
pub const THREAD_SPAN: u32 = 256;

/// Elements each workgroup of the whole-tensor entry reduces (`FLAT_PER`·256 in the shader).
const FLAT_CHUNK: usize = 16 * 256;

impl Absmax {
    /// Builds the pipelines, grouped layouts reduced as suits the adapter
    /// ([`ReducePath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_reduce_path(gpu, ReducePath::for_adapter(gpu))
    }

    /// Builds the pipelines with layouts reduced by `path`: workgroup trees (`main`, `main_t`;
    /// whole-tensor groups `main_flat`) or a thread per span (`main_thread`, `main_thread_v4`,
    /// whole-tensor groups included).
    pub fn with_reduce_path(gpu: &Gpu, path: ReducePath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "absmax", &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Read]);
        let p = |e| pipeline(gpu, "absmax", e, &pl, &[]);
        let entries = match path {
            ReducePath::Tree => Entries::Tree { grouped: p("main")?, transposed: p("main_t")?, flat: p("main_flat")? },
            ReducePath::PerThread => Entries::PerThread { scalar: p("main_thread")?, v4: p("main_thread_v4")? },
        };
        Ok(Absmax { bgl, entries })
    }

    /// Records: zero `amax`, then reduce `x` (the logical tensor of `l`, or its transpose stored
    /// `[cols, rows]` when `transposed`) into it.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        l: &QuantLayout,
        transposed: bool,
        amax: &GpuBuffer<u32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, None, l, transposed, amax)
    }

    /// [`Absmax::encode`] of `x` read as 0 wherever `mask` (the same layout) is not above 0: bit
    /// for bit the maxima of what `relu_backward` writes from `mask` (Y) and `x` (dY).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_masked(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: &GpuBuffer<f32>,
        l: &QuantLayout,
        transposed: bool,
        amax: &GpuBuffer<u32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, Some(mask), l, transposed, amax)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: Option<&GpuBuffer<f32>>,
        l: &QuantLayout,
        transposed: bool,
        amax: &GpuBuffer<u32>,
    ) -> Result<()> {
        check_len("absmax", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("absmax", "amax", amax.len(), l.amax_len())?;
        if let Some(m) = mask {
            check_len("absmax", "mask", m.len(), x.len())?;
        }
        let mut p = QuantParams::row_tiles(l, Rounding::Nearest);
        p.transposed = transposed as u32;
        p.masked = mask.is_some() as u32;
        let mask = mask.unwrap_or(x);
        enc.clear(amax.buffer());
        let (grouped, transposed_entry, flat) = match &self.entries {
            Entries::Tree { grouped, transposed, flat } => (grouped, transposed, flat),
            Entries::PerThread { scalar, v4 } => {
                if l.granularity == Granularity::PerTensor && p.tensor_slot == 0 {
                    // One group over everything: one row of all of x, in x's own order.
                    (p.rows, p.cols, p.transposed) = (1, l.rows * l.cols, 0);
                }
                let span = if p.block_div == u32::MAX { THREAD_SPAN } else { p.block_div };
                let spans = p.cols.div_ceil(span).max(1);
                p.aux = [span, spans];
                let threads = p.rows as usize * spans as usize;
                let vec4 = p.transposed == 0 && p.cols.is_multiple_of(4) && span.is_multiple_of(4);
                let params = uniform(gpu, "absmax params", &p);
                let k = if vec4 { v4 } else { scalar };
                let groups = threads.div_ceil(super::WG as usize) as u32;
                let buffers = [&params, x.buffer(), amax.buffer(), mask.buffer()];
                return dispatch(gpu, enc, "absmax", k, &self.bgl, &buffers, groups);
            }
        };
        if l.granularity == Granularity::PerTensor && p.tensor_slot == 0 {
            // One group over everything: read x flat, whatever the orientation.
            let params = uniform(gpu, "absmax params", &p);
            let n = l.rows as usize * l.cols as usize;
            let groups = n.div_ceil(FLAT_CHUNK) as u32;
            let buffers = [&params, x.buffer(), amax.buffer(), mask.buffer()];
            return dispatch(gpu, enc, "absmax", flat, &self.bgl, &buffers, groups);
        }
        // Transposed with whole-row groups: read along x's rows (see the shader).
        let along = transposed && p.block_div == u32::MAX;
        let (chunk, chunks) = super::reduce_chunks(l.cols as usize);
        if along {
            p.aux = [chunk as u32, chunks as u32];
            // main_t's rows a workgroup (the rest of its 256 threads are lanes along the rows):
            // L's rows rounded up to a power of two, 8 to 32.
            p.seg = super::row_team(l.rows).clamp(8, 32);
        }
        let params = uniform(gpu, "absmax params", &p);
        let buffers = [&params, x.buffer(), amax.buffer(), mask.buffer()];
        if along {
            let tiles = (l.rows as usize).div_ceil(p.seg as usize);
            dispatch(gpu, enc, "absmax", transposed_entry, &self.bgl, &buffers, (tiles * chunks) as u32)
        } else {
            dispatch(gpu, enc, "absmax", grouped, &self.bgl, &buffers, p.total_tiles)
        }
    }
}
