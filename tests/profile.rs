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
}
