//! Where launchers record their work: a `wgpu::CommandEncoder` (one compute pass per dispatch,
//! as wgpu users expect) or a [`Recorder`], which keeps one compute pass open across
//! consecutive dispatches.
//!
//! A pass per dispatch is expensive where a step has many small kernels: on the H100 (Vulkan,
//! driver 580) `CommandEncoder::finish` took ~21 µs per pass and the GPU ~16 µs per tiny pass,
//! against ~2 µs and ~5 µs per dispatch inside one pass. Within a pass wgpu still synchronizes
//! every dispatch with the ones before it (each dispatch is its own usage scope), so results are
//! the same.

/// A target that launchers record into (see the module docs).
pub trait Record {
    /// Records one dispatch of `pipeline` with bind group 0 = `group` on an `x × y` grid.
    fn dispatch(&mut self, name: &str, pipeline: &wgpu::ComputePipeline, group: &wgpu::BindGroup, x: u32, y: u32);
    /// The encoder itself, for copies and clears (a [`Recorder`] first ends its open pass).
    fn encoder(&mut self) -> &mut wgpu::CommandEncoder;
}

/// One compute pass per dispatch; a dispatch the profiler times gets its timestamps.
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
    fn dispatch(&mut self, name: &str, pipeline: &wgpu::ComputePipeline, group: &wgpu::BindGroup, x: u32, y: u32) {
        single_pass(self, name, pipeline, group, x, y, crate::profile::next_pass(name));
    }

    fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self
    }
}

/// A command encoder that records consecutive dispatches into one compute pass, ending it only
/// for copies and clears ([`Record::encoder`]), for dispatches the profiler times (those keep a
/// pass each, with timestamps), and at [`Recorder::finish`]. Lowbit's trainer records its steps
/// with one.
pub struct Recorder {
    // Declared first: dropped (ended) before the encoder it records into.
    pass: Option<wgpu::ComputePass<'static>>,
    enc: wgpu::CommandEncoder,
}

impl Recorder {
    /// A new command encoder labelled `label`.
    pub fn new(gpu: &crate::Gpu, label: &str) -> Self {
        let enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Recorder { pass: None, enc }
    }

    /// Ends the open pass and finishes the command buffer.
    pub fn finish(mut self) -> wgpu::CommandBuffer {
        self.pass = None;
        self.enc.finish()
    }
}

impl Record for Recorder {
    fn dispatch(&mut self, name: &str, pipeline: &wgpu::ComputePipeline, group: &wgpu::BindGroup, x: u32, y: u32) {
        if let Some(timed) = crate::profile::next_pass(name) {
            self.pass = None;
            single_pass(&mut self.enc, name, pipeline, group, x, y, Some(timed));
            return;
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

    fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        &mut self.enc
    }
}
