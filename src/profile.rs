//! Per-kernel GPU time from timestamp queries. While a [`Profile`] is active, every compute pass
//! lowbit records (one per dispatch) writes a GPU timestamp at its start and end;
//! [`Profile::finish`] resolves them and sums the time per kernel name
//! ([`Profile::finish_dispatches`]: each dispatch's own time, in the order recorded). Needs the
//! adapter's `TIMESTAMP_QUERY` feature ([`crate::AdapterReport::timestamps`]). One profile at a
//! time per device (each [`Gpu`] has its own slot, so two devices in one process profile
//! independently); passes recorded beyond its capacity are not timed (and counted as dropped). A
//! profile dropped without being finished (an error between start and finish) ends there, its
//! times discarded, so the device can be profiled again.
//! While no profile is active, recording a dispatch reads one atomic flag and takes no lock.

use crate::{Error, Gpu, Result};

/// The state of an active profile (kept in its [`Gpu`]).
pub(crate) struct Active {
    set: wgpu::QuerySet,
    /// Each timed pass's kernel and workgroups.
    passes: Vec<(String, u64)>,
    capacity: u32,
    dropped: u64,
}

/// Time spent in one kernel while the profile was active.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The kernel's name (its shader's).
    pub name: String,
    /// Dispatches recorded.
    pub dispatches: u64,
    /// GPU seconds between the starts and ends of those passes.
    pub seconds: f64,
    /// Workgroups those dispatches launched, in all.
    pub workgroups: u64,
    /// The fewest workgroups one of them launched: a count that does not depend on the adapter's
    /// speed, and a dispatch of fewer workgroups than a GPU has multiprocessors (132 on an H100 or
    /// H200) leaves most of it idle however fast each runs (`profile_step` prints it; under
    /// `LOWBIT_LAYOUTS=gpu` lavapipe shows a GPU's).
    pub min_workgroups: u64,
}

/// One dispatch timed while a profile was active ([`Profile::finish_dispatches`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchTime {
    /// Its kernel's name (its shader's).
    pub name: String,
    /// Workgroups it launched.
    pub workgroups: u64,
    /// GPU seconds between its pass's start and end.
    pub seconds: f64,
}

impl KernelTime {
    /// `dispatches` summed per kernel name, longest total first (what [`Profile::finish`] returns).
    pub fn by_kernel(dispatches: &[DispatchTime]) -> Vec<KernelTime> {
        let mut out: Vec<KernelTime> = Vec::new();
        for d in dispatches {
            match out.iter_mut().find(|k| k.name == d.name) {
                Some(k) => {
                    k.dispatches += 1;
                    k.seconds += d.seconds;
                    k.workgroups += d.workgroups;
                    k.min_workgroups = k.min_workgroups.min(d.workgroups);
                }
                None => out.push(KernelTime {
                    name: d.name.clone(),
                    dispatches: 1,
                    seconds: d.seconds,
                    workgroups: d.workgroups,
                    min_workgroups: d.workgroups,
                }),
            }
        }
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        out
    }
}

/// The most passes one profile times (two timestamps each: 4096 queries, the most a query set
/// holds); [`Profile::start`] takes no more.
pub const MAX_PASSES: u32 = 2048;

/// An active profile on the device it borrows; see the module docs.
pub struct Profile<'g> {
    gpu: &'g Gpu,
}

impl<'g> Profile<'g> {
    /// Starts timing, for at most `max_passes` passes (1 to [`MAX_PASSES`]; outside, the nearest).
    pub fn start(gpu: &'g Gpu, max_passes: u32) -> Result<Profile<'g>> {
        if !gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::InvalidArgument(format!("{} has no timestamp queries", gpu.report().name)));
        }
        let capacity = max_passes.clamp(1, MAX_PASSES);
        gpu.with_profile(|active| {
            if active.is_some() {
                return Err(Error::InvalidArgument("a profile is already active on this device".into()));
            }
            let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("lowbit profile"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * capacity,
            });
            *active = Some(Active { set, passes: Vec::new(), capacity, dropped: 0 });
            Ok(Profile { gpu })
        })
    }

    /// Stops timing (waiting for submitted work) and returns the time per kernel, longest first,
    /// with the number of passes that did not fit.
    pub fn finish(self) -> Result<(Vec<KernelTime>, u64)> {
        let (dispatches, dropped) = self.finish_dispatches()?;
        Ok((KernelTime::by_kernel(&dispatches), dropped))
    }

    /// Stops timing (waiting for submitted work) and returns every timed dispatch in the order it
    /// was recorded, with the number of passes that did not fit (recorded after the timed ones).
    pub fn finish_dispatches(self) -> Result<(Vec<DispatchTime>, u64)> {
        let gpu = self.gpu;
        let active = gpu.with_profile(|a| a.take());
        // Ended here: dropping `self` must not end a profile another thread starts from now on.
        std::mem::forget(self);
        let active = active.ok_or_else(|| Error::InvalidArgument("no profile is active on this device".into()))?;
        let n = active.passes.len() as u32;
        if n == 0 {
            return Ok((Vec::new(), active.dropped));
        }
        let size = 16 * n as u64;
        let resolve = gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("lowbit profile resolve"),
            size,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = crate::tensor::staging(gpu, size);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.resolve_query_set(&active.set, 0..2 * n, &resolve, 0);
        enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, size);
        gpu.submit([enc.finish()]);
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&crate::tensor::map_read(gpu, &staging)?);
        let period = gpu.queue.get_timestamp_period() as f64 * 1e-9;
        let out = active
            .passes
            .into_iter()
            .enumerate()
            .map(|(i, (name, workgroups))| DispatchTime {
                name,
                workgroups,
                seconds: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period,
            })
            .collect();
        Ok((out, active.dropped))
    }
}

impl Drop for Profile<'_> {
    /// Ends an unfinished profile, discarding its times (see the module docs).
    fn drop(&mut self) {
        self.gpu.with_profile(|a| a.take());
    }
}

/// For a pass about to be recorded for kernel `name` launching `workgroups` on `gpu`: the query
/// set and the index of its first timestamp, while a profile with room is active there.
pub(crate) fn next_pass(gpu: &Gpu, name: &str, workgroups: u64) -> Option<(wgpu::QuerySet, u32)> {
    if !gpu.profiling() {
        return None;
    }
    gpu.with_profile(|slot| {
        let a = slot.as_mut()?;
        if a.passes.len() as u32 >= a.capacity {
            a.dropped += 1;
            return None;
        }
        a.passes.push((name.to_string(), workgroups));
        Some((a.set.clone(), 2 * (a.passes.len() as u32 - 1)))
    })
}
