//! `batchnorm_commit`: the running statistics of up to [`COMMIT_SLOTS`] batch-norm layers
//! updated in one dispatch from the batch statistics their training forwards left
//! ([`super::batchnorm`]'s `stats`: mean, 1/std, unbiased variance):
//! `running = (1 − momentum)·running + momentum·(mean, variance)`, skipped while the recorder's
//! status is set (a step that went non-finite changes no state, see [`super::finite`]). A
//! training step records it once for all its layers after checking its gradients (resnet20's
//! 21 layers: 3 launches, not 21); on an adapter that binds fewer than 17 storage buffers a stage,
//! one layer a launch. Bindings: 0 params, 1 status, then per slot running (read-write), stats
//! (read). Reference: [`crate::reference::batchnorm_commit::commit`].

use super::batchnorm::{stats_len, MOMENTUM};
use super::{check_len, dispatch, layouts, pipeline, slot_starts, uniform, Slot, OPTIM_SLOTS};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// Layers one dispatch updates (the shader's slots, common/slots.wgsl's as the optimizers').
pub const COMMIT_SLOTS: usize = OPTIM_SLOTS;

/// Storage bindings a stage needs for the 8-slot entry: two per slot and the status.
const COMMIT_STORAGE: u32 = 2 * COMMIT_SLOTS as u32 + 1;

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct CommitParams {
    start: [u32; COMMIT_SLOTS],
    channels: [u32; COMMIT_SLOTS],
    momentum: f32,
    pad: [f32; 3],
}
const _: () = assert!(std::mem::size_of::<CommitParams>() == 80);

/// One layer's buffers: its batch statistics (`stats`, [`stats_len`] values, as its training
/// forward wrote them) and its running statistics (`running`, mean then variance, `[2C]`).
pub struct NormCommit<'a> {
    /// The batch statistics.
    pub stats: &'a GpuBuffer<f32>,
    /// The running statistics, updated in place.
    pub running: &'a GpuBuffer<f32>,
    /// Channels C.
    pub channels: usize,
}

/// The running-statistics update.
pub struct BatchNormCommit {
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Whether the pipeline is the 8-slot entry (else slot 0's).
    multi: bool,
    /// Bound to unused slots.
    dummy_rw: GpuBuffer<f32>,
    dummy_r: GpuBuffer<f32>,
}

impl BatchNormCommit {
    /// Builds the 8-slot entry where the adapter binds its storage buffers, else slot 0's.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let multi = gpu.limits().max_storage_buffers_per_shader_stage >= COMMIT_STORAGE;
        let mut slots = vec![Slot::Uniform, Slot::Read];
        for _ in 0..if multi { COMMIT_SLOTS } else { 1 } {
            slots.extend([Slot::Write, Slot::Read]);
        }
        let (bgl, pl) = layouts(gpu, "batchnorm_commit", &slots);
        Ok(BatchNormCommit {
            pipeline: pipeline(gpu, "batchnorm_commit", if multi { "main_multi" } else { "main" }, &pl, &[])?,
            multi,
            bgl,
            dummy_rw: GpuBuffer::zeros(gpu, "batchnorm_commit dummy", 4)?,
            dummy_r: GpuBuffer::zeros(gpu, "batchnorm_commit dummy", 4)?,
        })
    }

    /// Layers a dispatch updates on this adapter.
    pub fn per_dispatch(&self) -> usize {
        if self.multi {
            COMMIT_SLOTS
        } else {
            1
        }
    }

    /// Records the update of every layer in `layers`, [`BatchNormCommit::per_dispatch`] a launch.
    /// Refuses, before recording anything, a layer without channels, buffers of the wrong length,
    /// and a running buffer given twice or also given as statistics (the result would depend on
    /// the threads' order).
    pub fn encode(&self, gpu: &Gpu, enc: &mut impl crate::Record, layers: &[NormCommit]) -> Result<()> {
        if layers.is_empty() {
            return Err(Error::Empty("batchnorm_commit"));
        }
        let mut written: Vec<&wgpu::Buffer> = Vec::with_capacity(layers.len());
        for (j, l) in layers.iter().enumerate() {
            if l.channels == 0 || l.channels > u32::MAX as usize / 4 {
                return Err(Error::InvalidArgument(format!("batchnorm_commit: layer {j} has {} channels", l.channels)));
            }
            check_len("batchnorm_commit", &format!("layer {j}'s stats"), l.stats.len(), stats_len(l.channels))?;
            check_len("batchnorm_commit", &format!("layer {j}'s running"), l.running.len(), 2 * l.channels)?;
            if written.contains(&l.running.buffer()) {
                return Err(Error::InvalidArgument(format!(
                    "batchnorm_commit: layer {j}'s running statistics share a buffer with another layer's"
                )));
            }
            written.push(l.running.buffer());
        }
        if let Some(j) = layers.iter().position(|l| written.contains(&l.stats.buffer())) {
            return Err(Error::InvalidArgument(format!(
                "batchnorm_commit: layer {j}'s statistics are a buffer this update writes"
            )));
        }
        let status = enc.status(gpu).clone();
        for group in layers.chunks(self.per_dispatch()) {
            let (start, total) = slot_starts("batchnorm_commit", group.iter().map(|l| l.channels))?;
            let mut p = CommitParams { start, channels: [0; COMMIT_SLOTS], momentum: MOMENTUM, pad: [0.0; 3] };
            let mut bufs: Vec<&wgpu::Buffer> = Vec::with_capacity(2 * COMMIT_SLOTS);
            for (s, l) in group.iter().enumerate() {
                p.channels[s] = l.channels as u32;
                bufs.extend([l.running.buffer(), l.stats.buffer()]);
            }
            if self.multi {
                for _ in group.len()..COMMIT_SLOTS {
                    bufs.extend([self.dummy_rw.buffer(), self.dummy_r.buffer()]);
                }
            }
            let params = uniform(gpu, "batchnorm_commit", &p);
            let mut all: Vec<&wgpu::Buffer> = vec![&params, &status];
            all.extend(bufs);
            dispatch(gpu, enc, "batchnorm_commit", &self.pipeline, &self.bgl, &all, total)?;
        }
        Ok(())
    }
}
