//! `finite`: whether every value of up to 8 buffers is finite; a NaN or ±inf anywhere sets a
//! sticky status word (`[flag, first step]`) that state-updating kernels read (SGD, batch norm's
//! running statistics) to skip their writes, so a step that went non-finite changes nothing.
//! One dispatch per 8 buffers; the step recorded is the recorder's [`crate::record::StepState`]
//! step (0 outside a plan). Bindings: 0 params, 1..8 the buffers, 9 status, 10 step.
//! Reference: [`crate::reference::finite`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// Buffers one dispatch checks.
pub const PER_DISPATCH: usize = 8;

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct FiniteParams {
    len: [u32; 8],
}
const _: () = assert!(std::mem::size_of::<FiniteParams>() == 32);

/// The value a clear status holds: no flag, no step.
pub const CLEAR: [u32; 2] = [0, u32::MAX];

/// The finiteness check.
pub struct Finite {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    dummy: GpuBuffer<f32>,
}

impl Finite {
    /// Builds the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let mut slots = vec![Slot::Uniform];
        slots.extend([Slot::Read; PER_DISPATCH]);
        slots.push(Slot::Write);
        slots.push(Slot::Uniform);
        let (bgl, pl) = layouts(gpu, "finite", &slots);
        Ok(Finite {
            pipeline: pipeline(gpu, "finite", "main", &pl, &[])?,
            bgl,
            dummy: GpuBuffer::zeros(gpu, "finite dummy", 4)?,
        })
    }

    /// Records the check of `xs` (any number: one dispatch per 8) into `status` (`[flag, first
    /// step]`, see [`CLEAR`]).
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        xs: &[&GpuBuffer<f32>],
        status: &GpuBuffer<u32>,
    ) -> Result<()> {
        check_len("finite", "status", status.len(), 2)?;
        if xs.is_empty() {
            return Err(Error::Empty("finite"));
        }
        for group in xs.chunks(PER_DISPATCH) {
            let mut p = FiniteParams { len: [0; 8] };
            let mut bufs = Vec::with_capacity(PER_DISPATCH + 2);
            for (j, x) in group.iter().enumerate() {
                p.len[j] = u32::try_from(x.len()).map_err(|_| {
                    Error::InvalidArgument(format!("finite: {} values exceed the index range", x.len()))
                })?;
            }
            let longest = p.len.iter().copied().max().unwrap_or(0);
            let params = uniform(gpu, "finite", &p);
            let step = enc.step_state(gpu).clone();
            bufs.push(&params);
            bufs.extend(group.iter().map(|x| x.buffer()));
            bufs.extend(std::iter::repeat_n(self.dummy.buffer(), PER_DISPATCH - group.len()));
            bufs.push(status.buffer());
            bufs.push(&step);
            dispatch(gpu, enc, "finite", &self.pipeline, &self.bgl, &bufs, longest.div_ceil(WG))?;
        }
        Ok(())
    }
}
