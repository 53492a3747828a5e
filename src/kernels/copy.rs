//! `copy`: the bandwidth baseline every quantizer is reported against.
//!
//! `dst[i] = src[i]` over 16-byte vectors (buffers are padded to 16 bytes).
//! Bindings: 0 params, 1 src (read), 2 dst (read-write). Reference: [`crate::reference::copy`].

use super::{dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct CopyParams {
    n_vec4: u32,
    pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<CopyParams>() == 16);

/// The copy kernel.
pub struct Copy {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl Copy {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "copy", &[Slot::Uniform, Slot::Read, Slot::Write]);
        Ok(Copy { pipeline: pipeline(gpu, "copy", "main", &pl, &[])?, bgl })
    }

    /// Records `dst ← src`; both must hold the same number of elements.
    pub fn encode<T: Pod>(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        src: &GpuBuffer<T>,
        dst: &GpuBuffer<T>,
    ) -> Result<()> {
        if src.len() != dst.len() {
            return Err(Error::Shape {
                op: "copy",
                detail: format!("src has {} elements, dst {}", src.len(), dst.len()),
            });
        }
        let n_vec4 = src.bytes().div_ceil(16) as u32;
        let params = uniform(gpu, "copy params", &CopyParams { n_vec4, pad: [0; 3] });
        dispatch(
            gpu,
            enc,
            "copy",
            &self.pipeline,
            &self.bgl,
            &[&params, src.buffer(), dst.buffer()],
            n_vec4.div_ceil(WG),
        )
    }
}
