//! `absmax`: the largest finite, normal `|x|` of every scale group.
//!
//! Math: `amax[g] = max { |x[r][c]| : group(r, c) = g, x finite and normal }`, written as f32 bits
//! (non-negative floats order like their bits, so `atomicMax` on `u32` is a float max).
//! Layout: 256 threads per workgroup, each owning one packed word (`per_word` elements) of a row;
//! a tree reduction over segments of `seg` words (one scale group, or the whole tile), then one
//! `atomicMax` per segment. `transposed` reads the logical tensor from storage `[cols, rows]`.
//! One group over the whole tensor (per-tensor scales) is reduced flat, 4096 elements per
//! workgroup, in either orientation.
//! Bindings: 0 `QuantParams`, 1 x (read f32), 2 amax (read-write u32, `n_groups`).
//! Reference: [`crate::reference::absmax`].

use super::{check_len, dispatch, layouts, pipeline, uniform, QuantParams, Slot};
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The absmax kernel.
pub struct Absmax {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    transposed: wgpu::ComputePipeline,
    flat: wgpu::ComputePipeline,
}

/// Elements each workgroup of the whole-tensor entry reduces (`FLAT_PER`·256 in the shader).
const FLAT_CHUNK: usize = 16 * 256;

impl Absmax {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "absmax", &[Slot::Uniform, Slot::Read, Slot::Write]);
        Ok(Absmax {
            pipeline: pipeline(gpu, "absmax", "main", &pl, &[])?,
            transposed: pipeline(gpu, "absmax", "main_t", &pl, &[])?,
            flat: pipeline(gpu, "absmax", "main_flat", &pl, &[])?,
            bgl,
        })
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
        check_len("absmax", "x", x.len(), (l.rows * l.cols) as usize)?;
        check_len("absmax", "amax", amax.len(), l.amax_len())?;
        let mut p = QuantParams::row_tiles(l, Rounding::Nearest);
        p.transposed = transposed as u32;
        enc.clear(amax.buffer());
        if l.granularity == Granularity::PerTensor && p.tensor_slot == 0 {
            // One group over everything: read x flat, whatever the orientation.
            let params = uniform(gpu, "absmax params", &p);
            let n = l.rows as usize * l.cols as usize;
            let groups = n.div_ceil(FLAT_CHUNK) as u32;
            return dispatch(gpu, enc, "absmax", &self.flat, &self.bgl, &[&params, x.buffer(), amax.buffer()], groups);
        }
        // Transposed with whole-row groups: read along x's rows (see the shader).
        let along = transposed && p.block_div == u32::MAX;
        let (chunk, chunks) = super::reduce_chunks(l.cols as usize);
        if along {
            p.aux = [chunk as u32, chunks as u32];
        }
        let params = uniform(gpu, "absmax params", &p);
        let buffers = [&params, x.buffer(), amax.buffer()];
        if along {
            let tiles = (l.rows as usize).div_ceil(32);
            dispatch(gpu, enc, "absmax", &self.transposed, &self.bgl, &buffers, (tiles * chunks) as u32)
        } else {
            dispatch(gpu, enc, "absmax", &self.pipeline, &self.bgl, &buffers, p.total_tiles)
        }
    }
}
