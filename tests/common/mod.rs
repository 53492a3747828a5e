//! Shared test helpers: one GPU per test binary, and exact comparison with readable failures.
#![allow(dead_code)]

use lowbit::Gpu;
use std::sync::OnceLock;

/// The test GPU. A missing adapter is a failure, never a skip: in CI lavapipe must be there.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let g = Gpu::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
        eprintln!("lowbit tests on: {}", g.report());
        g
    })
}

/// Bitwise equality of u32 slices, listing the first mismatches.
pub fn assert_u32_eq(what: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    if !bad.is_empty() {
        let show: Vec<String> =
            bad.iter().take(8).map(|&i| format!("[{i}] gpu {:#010x} ref {:#010x}", got[i], want[i])).collect();
        panic!("{what}: {} of {} differ; first: {}", bad.len(), got.len(), show.join(", "));
    }
}

/// Bitwise equality of f32 slices (any NaN equals any NaN), listing the first mismatches.
pub fn assert_f32_bits_eq(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    let bad: Vec<usize> = (0..got.len()).filter(|&i| !same(got[i], want[i])).collect();
    if !bad.is_empty() {
        let show: Vec<String> = bad
            .iter()
            .take(8)
            .map(|&i| {
                format!("[{i}] gpu {:e} ({:#x}) ref {:e} ({:#x})", got[i], got[i].to_bits(), want[i], want[i].to_bits())
            })
            .collect();
        panic!("{what}: {} of {} differ; first: {}", bad.len(), got.len(), show.join(", "));
    }
}

/// Deterministic test data: normal-ish values of varied magnitude, with the awkward values
/// (zeros, subnormals, tiny, huge, ±inf, NaN) sprinkled in when `specials`.
pub fn data(n: usize, seed: u32, specials: bool) -> Vec<f32> {
    let k = lowbit::rng::key(seed, 99);
    (0..n as u32)
        .map(|i| {
            let u = lowbit::rng::uniform(k, 2 * i);
            let v = lowbit::rng::uniform(k, 2 * i + 1);
            let mag = 2f32.powf(-12.0 * v) * 3.0;
            let x = if u < 0.5 { -mag } else { mag };
            if !specials {
                return x;
            }
            match i % 97 {
                3 => 0.0,
                5 => -0.0,
                7 => f32::from_bits(0x0000_0123),
                11 => -f32::from_bits(0x0040_0000),
                13 => 1e-30,
                17 => f32::INFINITY,
                19 => f32::NEG_INFINITY,
                23 => f32::NAN,
                29 => 1e30,
                31 => -7.5e29,
                _ => x,
            }
        })
        .collect()
}

/// `v` uploaded to the test GPU.
pub fn buf(v: &[f32]) -> lowbit::GpuBuffer<f32> {
    lowbit::GpuBuffer::from_slice(gpu(), "t", v).unwrap()
}

/// Records with `f` into one encoder and submits it.
pub fn submit_with(f: impl FnOnce(&mut wgpu::CommandEncoder)) {
    let g = gpu();
    let mut enc = g.device.create_command_encoder(&Default::default());
    f(&mut enc);
    g.queue.submit([enc.finish()]);
}
