//! Wall-clock timing of recorded GPU work, for reports and benchmarks: record `iters`
//! repetitions into one encoder (or one [`Recorder`]'s shared pass), submit, wait; the best of
//! `reps` such runs, per iteration.

use crate::{Gpu, Recorder, Result};
use std::time::Instant;

/// Seconds per iteration of the work `record` records (one warm-up run first).
pub fn gpu_seconds(
    gpu: &Gpu,
    iters: u32,
    reps: u32,
    record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<f64> {
    let new = || gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("lowbit timing") });
    best_seconds(gpu, iters, reps, new, |e| e.finish(), record)
}

/// [`gpu_seconds`] with the work recorded into one [`Recorder`]: consecutive dispatches share a
/// compute pass, as a step plan replays them.
pub fn pass_seconds(gpu: &Gpu, iters: u32, reps: u32, record: impl FnMut(&mut Recorder) -> Result<()>) -> Result<f64> {
    best_seconds(gpu, iters, reps, || Recorder::new(gpu, "lowbit timing"), Recorder::finish, record)
}

/// The timing loop of both: record `n` repetitions into a fresh `R`, finish, submit, wait.
fn best_seconds<R>(
    gpu: &Gpu,
    iters: u32,
    reps: u32,
    new: impl Fn() -> R,
    finish: impl Fn(R) -> wgpu::CommandBuffer,
    mut record: impl FnMut(&mut R) -> Result<()>,
) -> Result<f64> {
    let mut run = |n: u32| -> Result<f64> {
        let mut rec = new();
        for _ in 0..n {
            record(&mut rec)?;
        }
        let cmd = finish(rec);
        gpu.wait()?;
        let t0 = Instant::now();
        gpu.submit([cmd]);
        gpu.wait()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    run(1)?;
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        best = best.min(run(iters.max(1))? / iters.max(1) as f64);
    }
    Ok(best)
}
