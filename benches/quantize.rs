//! Criterion benches of the quantizers, each group with the copy kernel as its same-run baseline.
//! Throughput is bytes read + written. On lavapipe use `-- --quick` style options; sizes are
//! kept moderate so a software adapter finishes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lowbit::format::Format;
use lowbit::kernels::{copy::Copy, quantize_fused::QuantizeFused};
use lowbit::scheme::{Granularity, QuantLayout, Rounding};
use lowbit::{Gpu, GpuBuffer};

fn run(gpu: &Gpu, f: impl Fn(&mut wgpu::CommandEncoder)) {
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    f(&mut enc);
    gpu.queue.submit([enc.finish()]);
    gpu.wait().unwrap();
}

fn quantizers(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    eprintln!("adapter: {}", gpu.report());
    let (rows, cols) = (256usize, 4096usize);
    let n = rows * cols;
    let x: Vec<f32> = (0..n as u32).map(|i| lowbit::rng::uniform(3, i) - 0.5).collect();
    let xb = GpuBuffer::from_slice(&gpu, "x", &x).unwrap();
    let dst = GpuBuffer::<f32>::zeros(&gpu, "dst", n).unwrap();
    let copy = Copy::new(&gpu).unwrap();
    let mut g = c.benchmark_group("quantize");
    g.sample_size(10);
    g.throughput(Throughput::Bytes((8 * n) as u64));
    g.bench_function("copy_f32 (baseline)", |b| b.iter(|| run(&gpu, |e| copy.encode(&gpu, e, &xb, &dst).unwrap())));
    for f in Format::ALL {
        let k = QuantizeFused::new(&gpu, f).unwrap();
        for gran in [Granularity::PerRow, Granularity::PerBlock(32)] {
            let l = QuantLayout::new(rows, cols, f, gran).unwrap();
            let codes = GpuBuffer::<u32>::zeros(&gpu, "codes", l.words()).unwrap();
            let scales = GpuBuffer::<f32>::zeros(&gpu, "scales", l.n_groups as usize).unwrap();
            g.throughput(Throughput::Bytes((4 * n + 4 * l.words() + 4 * l.n_groups as usize) as u64));
            let r = Rounding::Stochastic { seed: 1, stream: 0 };
            g.bench_function(format!("fused_{f}_{gran}_sr"), |b| {
                b.iter(|| run(&gpu, |e| k.encode(&gpu, e, &xb, &l, r, &codes, &scales).unwrap()))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, quantizers);
criterion_main!(benches);
