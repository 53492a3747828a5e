//! The profiler: every dispatch is timed under its kernel's name while a profile is active, and
//! only then. Its own test binary, so that no other test's dispatches run during the profile.

mod common;
use common::{buf, data, gpu, submit_with as run};
use lowbit::kernels::col_sum::ColSum;
use lowbit::GpuBuffer;

#[test]
fn profile_times_every_dispatch_by_kernel_name() {
    use lowbit::profile::Profile;
    let g = gpu();
    if !g.report().timestamps {
        // Only reachable on an adapter without timestamp queries; CI's lavapipe has them, so
        // the assertions below run there.
        assert!(Profile::start(g, 8).is_err());
        return;
    }
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
    let (times, dropped) = p.finish(g).unwrap();
    assert_eq!(dropped, 0);
    assert_eq!(times.len(), 1, "{times:?}");
    assert_eq!((times[0].name.as_str(), times[0].dispatches), ("col_sum", 6), "two passes per col_sum");
    assert!(times[0].seconds > 0.0 && times[0].seconds < 10.0);
    // A new profile sees only what is recorded while it is active.
    run(|e| k.encode(g, e, &x, 4096, 8, &s).unwrap());
    let p = Profile::start(g, 64).unwrap();
    let (times, _) = p.finish(g).unwrap();
    assert!(times.is_empty(), "{times:?}");
    // Workgroups per dispatch, whatever the adapter's speed: quantize_transpose launches
    // ceil(rows of L / 256) × words per row of them (L = 300 × 40 int8: 2 × 10; L = 10 × 8: 1 × 2).
    use lowbit::format::Format;
    use lowbit::kernels::quantize_transpose::QuantizeTranspose;
    use lowbit::scheme::{Granularity, QuantLayout, Rounding};
    let qt = QuantizeTranspose::new(g, Format::Int8).unwrap();
    let p = Profile::start(g, 64).unwrap();
    run(|e| {
        for (rows, cols) in [(300, 40), (10, 8)] {
            let l = QuantLayout::new(rows, cols, Format::Int8, Granularity::PerRow).unwrap();
            let x = GpuBuffer::<f32>::zeros(g, "x", rows * cols).unwrap();
            let amax = GpuBuffer::<u32>::zeros(g, "amax", l.amax_len()).unwrap();
            let codes = GpuBuffer::<u32>::zeros(g, "codes", l.words()).unwrap();
            let scales = GpuBuffer::<f32>::zeros(g, "scales", rows).unwrap();
            qt.encode(g, e, &x, &amax, &l, Rounding::Nearest, 1, &codes, &scales).unwrap();
        }
    });
    let (times, _) = p.finish(g).unwrap();
    assert_eq!(times.len(), 1, "{times:?}");
    let t = &times[0];
    assert_eq!((t.name.as_str(), t.dispatches, t.workgroups, t.min_workgroups), ("quantize_transpose", 2, 22, 2));
}
