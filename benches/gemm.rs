//! Criterion benches of the GEMM family per size, each group with lowbit's tiled f32 GEMM (and
//! the naive kernel) as same-run baselines. Throughput is labelled in elements = 2·M·N·K ops.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lowbit::format::Format;
use lowbit::kernels::gemm::Epilogue;
use lowbit::kernels::gemm_f32::{GemmF32, GemmShape};
use lowbit::kernels::gemm_f32_naive::GemmF32Naive;
use lowbit::kernels::gemm_fp8::GemmFp8;
use lowbit::kernels::gemm_int::GemmInt;
use lowbit::quant::Quantizer;
use lowbit::scheme::QuantScheme;
use lowbit::{Gpu, GpuBuffer, GpuTensor};

fn run(gpu: &Gpu, f: impl Fn(&mut wgpu::CommandEncoder)) {
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    f(&mut enc);
    gpu.queue.submit([enc.finish()]);
    gpu.wait().unwrap();
}

fn gemms(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    eprintln!("adapter: {}", gpu.report());
    let sizes: &[usize] = if gpu.is_cpu() { &[256, 512] } else { &[256, 512, 1024, 2048] };
    let f32k = GemmF32::new(&gpu).unwrap();
    let naive = GemmF32Naive::new(&gpu).unwrap();
    let qz = Quantizer::new(&gpu).unwrap();
    let i8k = GemmInt::new(&gpu, Format::Int8, Format::Int8).unwrap();
    let l4k = GemmInt::new(&gpu, Format::Log4, Format::Int8).unwrap();
    let f8k = GemmFp8::new(&gpu, Format::Fp8E4M3, Format::Fp8E4M3).unwrap();
    let mut g = c.benchmark_group("gemm");
    g.sample_size(10);
    for &s in sizes {
        let v: Vec<f32> = (0..(s * s) as u32).map(|i| lowbit::rng::uniform(5, i) - 0.5).collect();
        let t = GpuTensor::from_slice(&gpu, &v, &[s, s]).unwrap();
        let out = GpuBuffer::<f32>::zeros(&gpu, "c", s * s).unwrap();
        let shape = GemmShape::nt(s, s, s);
        let epi = Epilogue::default();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let q8 = qz.quantize(&gpu, &mut enc, &t, QuantScheme::per_row(Format::Int8)).unwrap();
        let ql = qz.quantize(&gpu, &mut enc, &t, QuantScheme::per_row(Format::Log4)).unwrap();
        let qf = qz.quantize(&gpu, &mut enc, &t, QuantScheme::per_row(Format::Fp8E4M3)).unwrap();
        gpu.queue.submit([enc.finish()]);
        g.throughput(Throughput::Elements(2 * (s * s * s) as u64));
        g.bench_with_input(BenchmarkId::new("f32_tiled (baseline)", s), &s, |b, _| {
            b.iter(|| run(&gpu, |e| f32k.encode(&gpu, e, t.buffer(), t.buffer(), shape, &epi, &out).unwrap()))
        });
        if s <= 512 {
            g.bench_with_input(BenchmarkId::new("f32_naive", s), &s, |b, _| {
                b.iter(|| run(&gpu, |e| naive.encode(&gpu, e, t.buffer(), t.buffer(), shape, &epi, &out).unwrap()))
            });
        }
        g.bench_with_input(BenchmarkId::new("int8xint8", s), &s, |b, _| {
            b.iter(|| run(&gpu, |e| i8k.encode(&gpu, e, &q8, &q8, &epi, &out).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("log4xint8", s), &s, |b, _| {
            b.iter(|| run(&gpu, |e| l4k.encode(&gpu, e, &ql, &q8, &epi, &out).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("fp8_e4m3", s), &s, |b, _| {
            b.iter(|| run(&gpu, |e| f8k.encode(&gpu, e, &qf, &qf, &epi, &out).unwrap()))
        });
    }
    g.finish();

    // Layer shapes: MNIST MLP (784-256-256-10, batch 128: forward, dX, dW) and a small CIFAR
    // CNN's 3x3 convolution as an im2col GEMM (batch 32, 16x16 maps, 32 -> 64 channels).
    let mut g = c.benchmark_group("gemm_layers");
    g.sample_size(10);
    for (label, m, n, k) in [
        ("mlp_fc1_fwd", 128, 256, 784),
        ("mlp_fc1_dx", 128, 784, 256),
        ("mlp_fc1_dw", 256, 784, 128),
        ("cnn_conv2_fwd", 8192, 64, 288),
    ] {
        let a: Vec<f32> = (0..(m * k) as u32).map(|i| lowbit::rng::uniform(6, i) - 0.5).collect();
        let b: Vec<f32> = (0..(n * k) as u32).map(|i| lowbit::rng::uniform(7, i) - 0.5).collect();
        let at = GpuTensor::from_slice(&gpu, &a, &[m, k]).unwrap();
        let bt = GpuTensor::from_slice(&gpu, &b, &[n, k]).unwrap();
        let out = GpuBuffer::<f32>::zeros(&gpu, "c", m * n).unwrap();
        let shape = GemmShape::nt(m, n, k);
        let epi = Epilogue::default();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let qa = qz.quantize(&gpu, &mut enc, &at, QuantScheme::per_row(Format::Int8)).unwrap();
        let qb = qz.quantize(&gpu, &mut enc, &bt, QuantScheme::per_row(Format::Int8)).unwrap();
        gpu.queue.submit([enc.finish()]);
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        g.bench_function(format!("{label}/f32 (baseline)"), |bch| {
            bch.iter(|| run(&gpu, |e| f32k.encode(&gpu, e, at.buffer(), bt.buffer(), shape, &epi, &out).unwrap()))
        });
        g.bench_function(format!("{label}/int8xint8"), |bch| {
            bch.iter(|| run(&gpu, |e| i8k.encode(&gpu, e, &qa, &qb, &epi, &out).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, gemms);
criterion_main!(benches);
