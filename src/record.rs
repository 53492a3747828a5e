//! Where launchers record their work.
//!
//! A launcher never creates a bind group or submits: it hands each dispatch (pipeline, layout and
//! the buffers to bind, in binding order), each copy and each clear to a [`Record`], and asks it
//! for scratch storage and for the per-step state its kernel reads. Three recorders exist:
//! - a `wgpu::CommandEncoder`: one compute pass per dispatch, as wgpu users expect;
//! - a [`Recorder`], which keeps consecutive dispatches in one compute pass;
//! - a step plan's tape ([`crate::plan::Tape`]), which records nothing on the GPU: it keeps the
//!   list, so a training step can be built once and replayed with no bind group, buffer or
//!   uniform created per step.
//!
//! A pass per dispatch is expensive where a step has many small kernels: on the H100 (Vulkan,
//! driver 580) `CommandEncoder::finish` took ~21 µs per pass and the GPU ~16 µs per tiny pass,
//! against ~2 µs and ~5 µs per dispatch inside one pass. Within a pass wgpu still synchronizes
//! every dispatch with the ones before it (each dispatch is its own usage scope), so results are
//! the same.

use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// What changes from one training step to the next, in one small uniform block that every kernel
/// with a per-step input binds (mirrored by `StepState` in `shaders/common/step.wgsl`).
///
/// - `stream_base` is added to the stream of every stochastic rounding: a kernel with
///   `Rounding::Stochastic { seed, stream }` draws with `rng::key(seed, stream + stream_base)`.
///   Outside a step plan it is 0, so a launcher's draws are exactly those its `Rounding` names;
///   a plan numbers its random uses `0..U` and sets `stream_base` to the step's first stream
///   (see [`crate::rng`] for the construction).
/// - `lr` multiplies the learning rate of the optimizer kernels' parameters (SGD, AdamW): 1
///   outside a plan; a plan builds its optimizer dispatches with rate 1 and writes the step's
///   rate here.
/// - `bias` is AdamW's bias correction of step `t` (counting from 1),
///   `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`, computed by the host in f64 (1 outside a plan and for SGD).
/// - `step` is the step's number (for kernels that need it; informational otherwise).
/// - `slot` says where per-step outputs go in a ring: the loss kernels write a step's losses and
///   correct counts at row block `slot % ring` of their outputs, so a plan's losses accumulate
///   on the GPU and the host reads them every few steps. 0 outside a plan.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Pod, Zeroable)]
pub struct StepState {
    /// Added to every stochastic stream.
    pub stream_base: u32,
    /// Learning-rate factor.
    pub lr: f32,
    /// The step's number (low 32 bits).
    pub step: u32,
    /// Ring slot of the step's per-step outputs.
    pub slot: u32,
    /// AdamW's bias correction (see above).
    pub bias: f32,
    /// Padding to the uniform block's 16-byte multiple.
    pub pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<StepState>() == 32);

impl StepState {
    /// The state of work recorded outside a plan: stream base 0, rate factor 1, bias 1.
    pub const UNIT: StepState = StepState { stream_base: 0, lr: 1.0, step: 0, slot: 0, bias: 1.0, pad: [0; 3] };
}

/// One dispatch as a launcher asks for it: bind group 0 binds `buffers` whole, in binding order,
/// in `layout`; the grid is `x × y` workgroups.
pub struct Dispatch<'a> {
    /// The kernel's name (its shader's), for profiles and labels.
    pub name: &'a str,
    /// The pipeline.
    pub pipeline: &'a wgpu::ComputePipeline,
    /// Its bind group layout.
    pub layout: &'a wgpu::BindGroupLayout,
    /// The buffers, binding 0 first.
    pub buffers: &'a [&'a wgpu::Buffer],
    /// Workgroups along x.
    pub x: u32,
    /// Workgroups along y.
    pub y: u32,
}

/// A target that launchers record into (see the module docs).
pub trait Record {
    /// Records one dispatch.
    fn dispatch(&mut self, gpu: &Gpu, d: &Dispatch);
    /// Records a copy of `size` bytes.
    fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64);
    /// Records a clear (zero fill) of the whole buffer.
    fn clear(&mut self, buffer: &wgpu::Buffer);
    /// Storage of `len` elements for results produced while recording (a launcher's
    /// intermediates, or outputs it allocates). Its contents are undefined until recorded work
    /// writes them: a kernel that accumulates into it must have it cleared first
    /// ([`Record::clear`]). Outside a plan this is a new zero-filled buffer; a plan's tape hands
    /// out storage from its arena, shared with other values whose lifetimes do not overlap.
    fn scratch<T: Pod>(&mut self, gpu: &Gpu, label: &str, len: usize) -> Result<GpuBuffer<T>> {
        GpuBuffer::zeros(gpu, label, len)
    }
    /// The [`StepState`] uniform the recorded kernels bind: the unit state outside a plan, the
    /// plan's own buffer (written once per step) inside one.
    fn step_state<'a>(&'a self, gpu: &'a Gpu) -> &'a wgpu::Buffer {
        gpu.unit_step()
    }
    /// The status word (`[flag, first step]`, see [`crate::kernels::finite`]) that kernels
    /// updating state (SGD, batch norm's running statistics) read: with the flag set they change
    /// nothing. Outside a plan it is always clear; a plan binds the one its checks write.
    fn status<'a>(&'a self, gpu: &'a Gpu) -> &'a wgpu::Buffer {
        gpu.unit_status()
    }
}

/// One compute pass for one dispatch; a dispatch the profiler times gets its timestamps.
fn single_pass(
    enc: &mut wgpu::CommandEncoder,
    name: &str,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    x: u32,
    y: u32,
    timed: Option<(wgpu::QuerySet, u32)>,
) {
    let timestamp_writes = timed.as_ref().map(|(set, i)| wgpu::ComputePassTimestampWrites {
        query_set: set,
        beginning_of_pass_write_index: Some(*i),
        end_of_pass_write_index: Some(*i + 1),
    });
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(name), timestamp_writes });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, group, &[]);
    pass.dispatch_workgroups(x, y, 1);
}

impl Record for wgpu::CommandEncoder {
    fn dispatch(&mut self, gpu: &Gpu, d: &Dispatch) {
        let group = gpu.bind_group(d.name, d.layout, d.buffers);
        single_pass(
            self,
            d.name,
            d.pipeline,
            &group,
            d.x,
            d.y,
            crate::profile::next_pass(gpu, d.name, d.x as u64 * d.y as u64),
        );
    }

    fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        self.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size);
    }

    fn clear(&mut self, buffer: &wgpu::Buffer) {
        self.clear_buffer(buffer, 0, None);
    }
}

/// A command encoder that records consecutive dispatches into one compute pass, ending it only
/// for copies and clears, for dispatches the profiler times (those keep a pass each, with
/// timestamps), and at [`Recorder::finish`]. Step plans replay into one; it counts the passes
/// it began.
pub struct Recorder {
    // Declared first: dropped (ended) before the encoder it records into.
    pass: Option<wgpu::ComputePass<'static>>,
    enc: wgpu::CommandEncoder,
    passes: u64,
    dispatches: u64,
}

impl Recorder {
    /// A new command encoder labelled `label`.
    pub fn new(gpu: &Gpu, label: &str) -> Self {
        let enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Recorder { pass: None, enc, passes: 0, dispatches: 0 }
    }

    /// Ends the open pass and finishes the command buffer.
    pub fn finish(mut self) -> wgpu::CommandBuffer {
        self.pass = None;
        self.enc.finish()
    }

    /// Compute passes begun so far.
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> u64 {
        self.dispatches
    }

    /// The encoder, with the open pass ended (for work a [`Record`] does not express, such as
    /// query resolution).
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        &mut self.enc
    }

    /// Records a dispatch with a bind group made beforehand (a step plan's replay).
    pub fn dispatch_bound(
        &mut self,
        gpu: &Gpu,
        name: &str,
        pipeline: &wgpu::ComputePipeline,
        group: &wgpu::BindGroup,
        x: u32,
        y: u32,
    ) {
        self.dispatches += 1;
        if let Some(timed) = crate::profile::next_pass(gpu, name, x as u64 * y as u64) {
            self.pass = None;
            self.passes += 1;
            single_pass(&mut self.enc, name, pipeline, group, x, y, Some(timed));
            return;
        }
        if self.pass.is_none() {
            self.passes += 1;
        }
        let pass = self.pass.get_or_insert_with(|| {
            self.enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("lowbit"), timestamp_writes: None })
                .forget_lifetime()
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }
}

impl Record for Recorder {
    fn dispatch(&mut self, gpu: &Gpu, d: &Dispatch) {
        let group = gpu.bind_group(d.name, d.layout, d.buffers);
        self.dispatch_bound(gpu, d.name, d.pipeline, &group, d.x, d.y);
    }

    fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        self.encoder().copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size);
    }

    fn clear(&mut self, buffer: &wgpu::Buffer) {
        self.encoder().clear_buffer(buffer, 0, None);
    }
}
