//! `copy`: the bandwidth baseline every quantizer is reported against.
//!
//! `dst[i] = src[i]` over 16-byte vectors (buffers are padded to 16 bytes): entry `main` a vec4
//! per thread; on a CPU adapter entry `main_teams` ([`CopyPath::Teams`]), about twice the rate
//! there. Bindings: 0 params, 1 src (read), 2 dst (read-write). Reference:
//! [`crate::reference::copy`].

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

/// How the threads share the vectors (same bytes either way).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CopyPath {
    /// A vec4 per thread (entry `main`): what a GPU runs well.
    PerThread,
    /// Teams of 8 consecutive threads, each team a run of [`TEAM_RUN`] vec4s, its threads on
    /// consecutive vec4s (entry `main_teams`). On lavapipe, which runs 8 threads at a time in SIMD
    /// lanes, about twice `PerThread`'s rate over 16M values (`kernel_report`'s copy).
    Teams,
}

/// Vec4s a team of `main_teams` copies.
pub const TEAM_RUN: u32 = 256;
/// Teams in a workgroup of `main_teams` (256 threads, teams of 8).
const TEAMS_PER_GROUP: u32 = 32;

impl CopyPath {
    /// `Teams` on a CPU adapter, `PerThread` elsewhere.
    pub fn for_adapter(gpu: &Gpu) -> Self {
        if gpu.is_cpu() {
            CopyPath::Teams
        } else {
            CopyPath::PerThread
        }
    }
}

/// The copy kernel.
pub struct Copy {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    path: CopyPath,
}

impl Copy {
    /// Builds the pipeline the adapter runs best ([`CopyPath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_path(gpu, CopyPath::for_adapter(gpu))
    }

    /// Builds the pipeline of `path`.
    pub fn with_path(gpu: &Gpu, path: CopyPath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "copy", &[Slot::Uniform, Slot::Read, Slot::Write]);
        let pipeline = match path {
            CopyPath::PerThread => pipeline(gpu, "copy", "main", &pl, &[])?,
            CopyPath::Teams => pipeline(gpu, "copy", "main_teams", &pl, &[("RUN", TEAM_RUN as f64)])?,
        };
        Ok(Copy { pipeline, bgl, path })
    }

    /// The path this kernel runs.
    pub fn path(&self) -> CopyPath {
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
            match self.path {
                CopyPath::PerThread => n_vec4.div_ceil(WG),
                CopyPath::Teams => n_vec4.div_ceil(TEAM_RUN * TEAMS_PER_GROUP),
            },
        )
    }
}
