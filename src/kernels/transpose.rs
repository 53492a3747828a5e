//! `transpose`: batched matrix transpose, `[batches, rows, cols]` → `[batches, cols, rows]`
//! (attention's quantized products pack operands along the other dimension per batch and
//! head). 16×16 tiles through workgroup memory, one element per thread. Bindings: 0 params,
//! 1 src, 2 dst. Reference: [`crate::reference::transpose`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct TransposeParams {
    batches: u32,
    rows: u32,
    cols: u32,
    tiles_r: u32,
    tiles_c: u32,
    pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<TransposeParams>() == 32);

/// The batched transpose kernel.
pub struct Transpose {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Transpose {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "transpose", &[Slot::Uniform, Slot::Read, Slot::Write]);
        Ok(Transpose { pipeline: pipeline(gpu, "transpose", "main", &pl, &[])?, bgl })
    }

    /// Records `dst[b] ← src[b]ᵀ` for `batches` `[rows, cols]` matrices stored one after the other.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        src: &GpuBuffer<f32>,
        dst: &GpuBuffer<f32>,
        (batches, rows, cols): (usize, usize, usize),
    ) -> Result<()> {
        let n = [batches, rows, cols].iter().try_fold(1usize, |n, &v| n.checked_mul(v));
        let Some(n) = n.filter(|&n| n > 0 && n <= u32::MAX as usize) else {
            return Err(Error::InvalidArgument(format!(
                "transpose: {batches} × [{rows}, {cols}] is empty or too large"
            )));
        };
        check_len("transpose", "src", src.len(), n)?;
        check_len("transpose", "dst", dst.len(), n)?;
        let (tiles_r, tiles_c) = (rows.div_ceil(16) as u32, cols.div_ceil(16) as u32);
        let groups = (tiles_r as u64 * tiles_c as u64 * batches as u64).try_into().map_err(|_| {
            Error::InvalidArgument(format!("transpose: {batches} × [{rows}, {cols}] has too many tiles"))
        })?;
        let p = TransposeParams {
            batches: batches as u32,
            rows: rows as u32,
            cols: cols as u32,
            tiles_r,
            tiles_c,
            pad: [0; 3],
        };
        let params = uniform(gpu, "transpose", &p);
        dispatch(gpu, enc, "transpose", &self.pipeline, &self.bgl, &[&params, src.buffer(), dst.buffer()], groups)
    }
}
