//! `finite`: whether every value of a list of buffers is finite; a NaN or ±inf anywhere sets a
//! sticky status word (`[flag, first step]`) that state-updating kernels read (SGD, batch norm's
//! running statistics) to skip their writes, so a step that went non-finite changes nothing.
//! One dispatch per [`WIDE`] buffers where the adapter binds [`WIDE_STORAGE`] storage buffers a
//! stage, else per [`NARROW`], over the sum of their lengths (a thread per value; on a CPU
//! adapter, [`ReducePath::PerThread`], a thread per 16 vec4s, each buffer in workgroups of its
//! own, and no barriers); the step recorded is the recorder's [`crate::record::StepState`] step (0
//! outside a plan). Bindings: 0 params, 1..8 the first eight buffers, 9 status, 10 step, and with
//! [`WIDE`] buffers a dispatch 11..26 the further sixteen.
//! Reference: [`crate::reference::finite`].

use super::quantize_fused::ReducePath;
use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// Buffers one dispatch checks on an adapter that binds fewer than [`WIDE_STORAGE`] storage
/// buffers a stage (entries `main`, `main_flat`, `main_flat_v4`).
pub const NARROW: usize = 8;

/// Buffers one dispatch checks where the adapter binds [`WIDE_STORAGE`] (the `_wide` entries): a
/// `resnet20` step's batch, weights and gradients in 4 launches where [`NARROW`] takes 12.
pub const WIDE: usize = 24;

/// Storage buffers a stage that the [`WIDE`] entries bind (the buffers and the status; the
/// multi-tensor optimizers' count too).
pub const WIDE_STORAGE: u32 = WIDE as u32 + 1;

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct FiniteParams {
    len: [u32; WIDE],
}
const _: () = assert!(std::mem::size_of::<FiniteParams>() == 96);

/// Values a thread of the per-thread entry checks (`FLAT_PER_THREAD` in the shader).
const FLAT_PER_THREAD: u32 = 16;

/// Vec4s a thread of the vec4 entry checks (`V4_PER_THREAD` in the shader).
const V4_PER_THREAD: u32 = 16;

/// The value a clear status holds: no flag, no step.
pub const CLEAR: [u32; 2] = [0, u32::MAX];

/// The finiteness check.
pub struct Finite {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// `main_flat_v4` (the per-thread path only): for groups whose buffers all hold whole vec4s.
    v4: Option<wgpu::ComputePipeline>,
    path: ReducePath,
    /// Buffers a dispatch checks: [`NARROW`] or [`WIDE`].
    per: usize,
    dummy: GpuBuffer<f32>,
}

impl Finite {
    /// Builds the pipeline for the adapter ([`ReducePath::for_adapter`]).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_reduce_path(gpu, ReducePath::for_adapter(gpu))
    }

    /// Builds the pipelines of `path`: `Tree`, a thread per value and a workgroup flag behind two
    /// barriers (entry `main`); `PerThread`, no barriers: a thread per 16 vec4s, each workgroup
    /// within one buffer (`main_flat_v4`), or, for a group with a buffer not bound as whole vec4s
    /// (an application's buffer of another size, [`GpuBuffer::from_wgpu`]), a thread per 16
    /// values (`main_flat`).
    pub fn with_reduce_path(gpu: &Gpu, path: ReducePath) -> Result<Self> {
        Self::with_options(gpu, path, path == ReducePath::PerThread)
    }

    /// [`Finite::with_reduce_path`], with the vec4 entry only if `vec4` (for comparisons; it
    /// exists on the per-thread path alone, and asking for it with `Tree` is an error).
    pub fn with_options(gpu: &Gpu, path: ReducePath, vec4: bool) -> Result<Self> {
        let per = if Self::wide_fits(gpu) { WIDE } else { NARROW };
        Self::with_buffers(gpu, path, vec4, per)
    }

    /// Whether `gpu` binds the [`WIDE`] entries' [`WIDE_STORAGE`] storage buffers a stage.
    pub fn wide_fits(gpu: &Gpu) -> bool {
        gpu.limits().max_storage_buffers_per_shader_stage >= WIDE_STORAGE
    }

    /// [`Finite::with_options`] checking `per` buffers a dispatch: [`NARROW`], or [`WIDE`] where
    /// [`Finite::wide_fits`] (for comparisons; any other count, or [`WIDE`] where the adapter
    /// cannot bind it, is an error).
    pub fn with_buffers(gpu: &Gpu, path: ReducePath, vec4: bool, per: usize) -> Result<Self> {
        if vec4 && path == ReducePath::Tree {
            return Err(Error::InvalidArgument(
                "finite: the vec4 entry is the per-thread path's (ReducePath::PerThread)".into(),
            ));
        }
        match per {
            NARROW => {}
            WIDE if Self::wide_fits(gpu) => {}
            WIDE => {
                return Err(Error::InvalidArgument(format!(
                    "finite: {WIDE} buffers a dispatch need {WIDE_STORAGE} storage buffers a stage; this adapter \
                     binds {}",
                    gpu.limits().max_storage_buffers_per_shader_stage
                )))
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "finite: a dispatch checks {NARROW} or {WIDE} buffers, not {per}"
                )))
            }
        }
        let mut slots = vec![Slot::Uniform];
        slots.extend([Slot::Read; NARROW]);
        slots.push(Slot::Write);
        slots.push(Slot::Uniform);
        slots.extend(std::iter::repeat_n(Slot::Read, per - NARROW));
        let (bgl, pl) = layouts(gpu, "finite", &slots);
        let suffix = if per == WIDE { "_wide" } else { "" };
        let entry = |e: &str| pipeline(gpu, "finite", &format!("{e}{suffix}"), &pl, &[]);
        Ok(Finite {
            pipeline: entry(match path {
                ReducePath::Tree => "main",
                ReducePath::PerThread => "main_flat",
            })?,
            v4: if vec4 { Some(entry("main_flat_v4")?) } else { None },
            path,
            per,
            bgl,
            dummy: GpuBuffer::zeros(gpu, "finite dummy", 4)?,
        })
    }

    /// Buffers a dispatch checks: [`NARROW`] or [`WIDE`].
    pub fn per_dispatch(&self) -> usize {
        self.per
    }

    /// Records the check of `xs` (any number: one dispatch per [`Finite::per_dispatch`]) into
    /// `status` (`[flag, first step]`, see [`CLEAR`]).
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
        for group in xs.chunks(self.per) {
            let mut p = FiniteParams { len: [0; WIDE] };
            let mut bufs = Vec::with_capacity(self.per + 3);
            for (j, x) in group.iter().enumerate() {
                p.len[j] = u32::try_from(x.len()).map_err(|_| {
                    Error::InvalidArgument(format!("finite: {} values exceed the index range", x.len()))
                })?;
            }
            // Values past u32's range (or a last thread's 16 past it) cannot be numbered.
            let total = p.len.iter().map(|&l| l as u64).sum::<u64>();
            if total + (FLAT_PER_THREAD * WG) as u64 > u32::MAX as u64 {
                return Err(Error::InvalidArgument(format!("finite: {total} values in one group of buffers")));
            }
            // The vec4 entry reads ceil(len / 4) whole vec4s of each buffer; a scratch value's
            // arena storage is padded like lowbit's own buffers.
            let whole_vec4s =
                |x: &GpuBuffer<f32>| x.is_scratch() || x.buffer().size() >= x.len().div_ceil(4) as u64 * 16;
            let (pipeline, threads) = match (&self.v4, self.path) {
                (Some(v4), _) if group.iter().all(|x| whole_vec4s(x)) => {
                    (v4, p.len.iter().map(|&l| l.div_ceil(4 * V4_PER_THREAD * WG) * WG).sum::<u32>())
                }
                (_, ReducePath::Tree) => (&self.pipeline, total as u32),
                (_, ReducePath::PerThread) => (&self.pipeline, (total as u32).div_ceil(FLAT_PER_THREAD)),
            };
            let params = uniform(gpu, "finite", &p);
            let step = enc.step_state(gpu).clone();
            // Slots 1..8 the first eight buffers, then the status and step, then (wide) the rest.
            let mut xs = group.iter().map(|x| x.buffer()).chain(std::iter::repeat(self.dummy.buffer()));
            bufs.push(&params);
            bufs.extend(xs.by_ref().take(NARROW));
            bufs.push(status.buffer());
            bufs.push(&step);
            bufs.extend(xs.take(self.per - NARROW));
            dispatch(gpu, enc, "finite", pipeline, &self.bgl, &bufs, threads.div_ceil(WG))?;
        }
        Ok(())
    }
}
