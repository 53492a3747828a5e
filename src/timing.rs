//! Wall-clock timing of recorded GPU work, for reports and benchmarks: record `iters`
//! repetitions into one encoder, submit, wait; the best of `reps` such runs, per iteration.

use crate::{Gpu, Result};
use std::time::Instant;

/// Seconds per iteration of the work `record` records (one warm-up run first).
pub fn gpu_seconds(
    gpu: &Gpu,
    iters: u32,
    reps: u32,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<f64> {
    let mut run = |n: u32| -> Result<f64> {
        let mut enc =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("lowbit timing") });
        for _ in 0..n {
            record(&mut enc)?;
        }
        let cmd = enc.finish();
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
