//! `copy`: the bandwidth baseline every quantizer is reported against.
//!
//! `dst[i] = src[i]` over 16-byte vectors (buffers are padded to 16 bytes): entry `main` a vec4
//! per thread; on a CPU adapter entry `main_teams` ([`VecPath::Teams`]), about twice the rate
//! there. Bindings: 0 params, 1 src (read), 2 dst (read-write). Reference:
//! [`crate::reference::copy`].

use super::{dispatch, layouts, pipeline, uniform, Slot, VecPath};
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
    path: VecPath,
}

impl Copy {
    /// Builds the pipeline the adapter runs best ([`VecPath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_path(gpu, VecPath::for_adapter(gpu))
    }

    /// Builds the pipeline of `path`.
    pub fn with_path(gpu: &Gpu, path: VecPath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "copy", &[Slot::Uniform, Slot::Read, Slot::Write]);
        let (entry, constants) = path.entry("main");
        Ok(Copy { pipeline: pipeline(gpu, "copy", entry, &pl, constants)?, bgl, path })
    }

    /// The path this kernel runs.
    pub fn path(&self) -> VecPath {
        self.path
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
            self.path.workgroups(n_vec4),
        )
    }
}
