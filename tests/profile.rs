//! The profiler: every dispatch is timed under its kernel's name while a profile is active, and
//! only then. Its own test binary, so that no other binary's dispatches run during the profile; the
//! tests here take `ONE_AT_A_TIME` for the same reason (the harness runs them on parallel threads,
//! and a device holds one profile, which times whatever any thread records while it is active).

mod common;
use common::{buf, data, gpu, submit_with as run};
use lowbit::format::Format;
use lowbit::kernels::col_sum::ColSum;
use lowbit::kernels::quantize_transpose::QuantizeTranspose;
use lowbit::profile::{Profile, MAX_PASSES};
use lowbit::scheme::{Granularity, QuantLayout, Rounding};
use lowbit::{Gpu, GpuBuffer};

/// Held by each test for its whole run: see the file's note.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The test adapter where it has timestamp queries. Elsewhere (only reachable on such an adapter:
/// CI's lavapipe has them, so the tests' assertions run there) a profile must be refused: `None`.
fn timestamped() -> Option<&'static Gpu> {
    let g = gpu();
    if !g.report().timestamps {
        assert!(Profile::start(g, 8).is_err());
        return None;
    }
    Some(g)
}

/// Records quantize_transpose's launches for L = 301 × 40 and 10 × 8 int8 (per row): ceil(rows of
/// L / 256) × words per row of workgroups each, 2 × 10 and 1 × 2 (rows not in fours: entry `main`
/// on every adapter).
fn record_transposes(g: &Gpu, e: &mut wgpu::CommandEncoder, qt: &QuantizeTranspose) {
    for (rows, cols) in [(301, 40), (10, 8)] {
        let l = QuantLayout::new(rows, cols, Format::Int8, Granularity::PerRow).unwrap();
        let x = GpuBuffer::<f32>::zeros(g, "x", rows * cols).unwrap();
        let amax = GpuBuffer::<u32>::zeros(g, "amax", l.amax_len()).unwrap();
        let codes = GpuBuffer::<u32>::zeros(g, "codes", l.words()).unwrap();
        let scales = GpuBuffer::<f32>::zeros(g, "scales", rows).unwrap();
        qt.encode(g, e, &x, &amax, &l, Rounding::Nearest, 1, &codes, &scales).unwrap();
    }
}

#[test]
fn profile_times_every_dispatch_by_kernel_name() {
    // A panic in the other test poisons the lock; its profile, dropped in the unwinding, has ended.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(g) = timestamped() else { return };
    let k = ColSum::new(g).unwrap();
    let x = buf(&data(4096 * 8, 5, false));
    let s = GpuBuffer::<f32>::zeros(g, "s", 8).unwrap();
    let p = Profile::start(g, 64).unwrap();
    assert!(Profile::start(g, 8).is_err(), "one profile at a time");
    run(|e| {
        for _ in 0..3 {
            k.encode(g, e, &x, 4096, 8, &s).unwrap();
        }
    });
    let (times, dropped) = p.finish().unwrap();
    assert_eq!(dropped, 0);
    assert_eq!(times.len(), 1, "{times:?}");
    assert_eq!((times[0].name.as_str(), times[0].dispatches), ("col_sum", 6), "two passes per col_sum");
    assert!(times[0].seconds > 0.0 && times[0].seconds < 10.0);
    // A new profile sees only what is recorded while it is active.
    run(|e| k.encode(g, e, &x, 4096, 8, &s).unwrap());
    let p = Profile::start(g, 64).unwrap();
    let (times, _) = p.finish().unwrap();
    assert!(times.is_empty(), "{times:?}");
    // One dropped unfinished (as by an error between start and finish) has ended: dispatches after
    // it are not timed, and the device can be profiled again.
    drop(Profile::start(g, 64).unwrap());
    run(|e| k.encode(g, e, &x, 4096, 8, &s).unwrap());
    let p = Profile::start(g, 64).expect("a dropped profile has ended");
    let (times, dropped) = p.finish().unwrap();
    assert!(times.is_empty() && dropped == 0, "{times:?}");
    // Workgroups per dispatch, whatever the adapter's speed (record_transposes: 20 and 1, tiles
    // of L's rows rounded up to a power of two times the words that fill a workgroup: 2 × 10 words
    // of 256 rows, and one tile of 16 rows × 16 words for L's 10 rows of 2 words).
    let qt = QuantizeTranspose::new(g, Format::Int8).unwrap();
    let p = Profile::start(g, 64).unwrap();
    run(|e| record_transposes(g, e, &qt));
    let (times, _) = p.finish().unwrap();
    assert_eq!(times.len(), 1, "{times:?}");
    let t = &times[0];
    assert_eq!((t.name.as_str(), t.dispatches, t.workgroups, t.min_workgroups), ("quantize_transpose", 2, 21, 1));
}

#[test]
fn profile_lists_each_dispatch_in_the_order_recorded() {
    use lowbit::profile::KernelTime;
    // A panic in the other test poisons the lock; its profile, dropped in the unwinding, has ended.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(g) = timestamped() else { return };
    let k = ColSum::new(g).unwrap();
    let qt = QuantizeTranspose::new(g, Format::Int8).unwrap();
    let x = buf(&data(4096 * 8, 5, false));
    let s = GpuBuffer::<f32>::zeros(g, "s", 8).unwrap();
    // Room for four passes: the fifth and sixth are dropped, not listed.
    let p = Profile::start(g, 4).unwrap();
    run(|e| {
        record_transposes(g, e, &qt);
        k.encode(g, e, &x, 4096, 8, &s).unwrap();
        k.encode(g, e, &x, 4096, 8, &s).unwrap();
    });
    let (list, dropped) = p.finish_dispatches().unwrap();
    assert_eq!(dropped, 2);
    let got: Vec<(&str, u64)> = list.iter().map(|d| (d.name.as_str(), d.workgroups)).collect();
    assert_eq!(got[..2], [("quantize_transpose", 20), ("quantize_transpose", 1)], "{list:?}");
    assert_eq!(got[2..].iter().map(|d| d.0).collect::<Vec<_>>(), ["col_sum", "col_sum"], "{list:?}");
    assert!(list.iter().all(|d| d.seconds > 0.0 && d.seconds < 10.0), "{list:?}");
    // Summed per kernel: what finish returns.
    let by = KernelTime::by_kernel(&list);
    assert_eq!(by.len(), 2, "{by:?}");
    for kt in &by {
        let mine: Vec<_> = list.iter().filter(|d| d.name == kt.name).collect();
        assert_eq!(kt.dispatches, mine.len() as u64);
        assert_eq!(kt.workgroups, mine.iter().map(|d| d.workgroups).sum::<u64>());
        assert_eq!(kt.min_workgroups, mine.iter().map(|d| d.workgroups).min().unwrap());
        assert_eq!(kt.seconds, mine.iter().map(|d| d.seconds).sum::<f64>());
    }
    assert!(by[0].seconds >= by[1].seconds, "longest first: {by:?}");
}

#[test]
fn profile_times_at_most_max_passes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(g) = timestamped() else { return };
    let k = ColSum::new(g).unwrap();
    let x = buf(&data(64 * 8, 6, false));
    let s = GpuBuffer::<f32>::zeros(g, "s", 8).unwrap();
    // Asked for more than a profile holds: MAX_PASSES are timed, the two after them dropped.
    let p = Profile::start(g, MAX_PASSES + 5).unwrap();
    run(|e| {
        for _ in 0..MAX_PASSES + 2 {
            k.encode(g, e, &x, 64, 8, &s).unwrap();
        }
    });
    let (list, dropped) = p.finish_dispatches().unwrap();
    assert_eq!((list.len(), dropped), (MAX_PASSES as usize, 2));
    assert!(list.iter().all(|d| d.name == "col_sum"), "{:?}", &list[..4]);
}
