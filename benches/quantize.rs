//! Criterion benches of the quantizers, each group with the copy kernel as its same-run baseline.
//! Throughput is bytes read + written. On lavapipe use `-- --quick` style options; sizes are
//! kept moderate so a software adapter finishes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lowbit::format::Format;
use lowbit::kernels::col_sum::ColSum;
use lowbit::kernels::hadamard::{Axis, Hadamard, RotateExtras, RANDOM_SIGNS};
use lowbit::kernels::hadamard_quantize_transpose::{HadamardQuantizeTranspose, RotatedExtras};
use lowbit::kernels::quantize_both::{BothExtras, QuantizeBoth, Side};
use lowbit::kernels::quantize_transpose_fused::QuantizeTransposeFused;
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
        // The block-scaled formats carry their own blocks (any other grouping is refused).
        let grans = match f.block() {
            Some(_) => vec![Granularity::native(f)],
            None => vec![Granularity::PerRow, Granularity::PerBlock(32)],
        };
        for gran in grans {
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

/// A block-scaled weight-gradient operand (dY `[batch, c]` masked by ReLU's Y, stochastic
/// rounding, with the bias gradient): `hadamard_quantize_transpose` (after NVFP4's maxima pass,
/// with `col_sum`'s second level) against the same run's chain, `hadamard`, the transposing
/// quantizer and `col_sum`, which training ran before (and runs for NVFP4 on CPU adapters).
fn rotated_operand(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    let (h, cs) = (Hadamard::new(&gpu).unwrap(), ColSum::new(&gpu).unwrap());
    let mut g = c.benchmark_group("rotated_operand");
    g.sample_size(10);
    for f in [Format::Mxfp8, Format::Nvfp4] {
        let (k, qtf) =
            (HadamardQuantizeTranspose::new(&gpu, f).unwrap(), QuantizeTransposeFused::new(&gpu, f).unwrap());
        // resnet20's first stage at batch 16, and its third.
        for (rows, cols) in [(16384usize, 16usize), (1024, 64)] {
            let n = rows * cols;
            let x: Vec<f32> = (0..n as u32).map(|i| lowbit::rng::uniform(5, i) - 0.5).collect();
            let y: Vec<f32> = (0..n as u32).map(|i| lowbit::rng::uniform(6, i) - 0.5).collect();
            let (xb, yb) =
                (GpuBuffer::from_slice(&gpu, "dy", &x).unwrap(), GpuBuffer::from_slice(&gpu, "y", &y).unwrap());
            let l = QuantLayout::new(cols, rows, f, Granularity::native(f)).unwrap();
            let codes = GpuBuffer::<u32>::zeros(&gpu, "codes", l.words()).unwrap();
            let scales = GpuBuffer::<f32>::zeros(&gpu, "scales", l.n_groups as usize).unwrap();
            let sums = GpuBuffer::<f32>::zeros(&gpu, "sums", cols).unwrap();
            let chunks = HadamardQuantizeTranspose::sum_chunks(rows);
            let partial = GpuBuffer::<f32>::zeros(&gpu, "partial", chunks * cols).unwrap();
            let rotated = GpuBuffer::<f32>::zeros(&gpu, "rotated", n).unwrap();
            let amax = GpuBuffer::<u32>::zeros(&gpu, "amax", 1).unwrap();
            let r = Rounding::Stochastic { seed: 1, stream: 0 };
            let nv = f.needs_tensor_amax();
            g.throughput(Throughput::Bytes((4 * n) as u64));
            g.bench_function(format!("chain_{f}_{rows}x{cols} (baseline)"), |b| {
                b.iter(|| {
                    run(&gpu, |e| {
                        let ex =
                            RotateExtras { mask: Some(&yb), amax: nv.then_some(&amax), input_amax: None, sums: None };
                        h.encode_with(&gpu, e, &xb, &rotated, (rows, cols), 16, Axis::Rows, RANDOM_SIGNS, ex).unwrap();
                        match nv {
                            true => qtf.encode_with_tensor_amax(&gpu, e, &rotated, &l, r, &amax, &codes, &scales),
                            false => qtf.encode(&gpu, e, &rotated, &l, r, &codes, &scales),
                        }
                        .unwrap();
                        cs.encode_masked(&gpu, e, &xb, &yb, rows, cols, &sums).unwrap();
                    })
                })
            });
            g.bench_function(format!("one_launch_{f}_{rows}x{cols}"), |b| {
                b.iter(|| {
                    run(&gpu, |e| {
                        if nv {
                            let (s, m) = ((rows, cols), Some(&yb));
                            h.encode_maxima(&gpu, e, &xb, s, 16, Axis::Rows, RANDOM_SIGNS, m, &amax, None).unwrap();
                        }
                        let ex =
                            RotatedExtras { mask: Some(&yb), tensor_amax: nv.then_some(&amax), sums: Some(&partial) };
                        k.encode(&gpu, e, &xb, &l, RANDOM_SIGNS, r, 1, ex, &codes, &scales).unwrap();
                        cs.encode_finish(&gpu, e, &partial, rows, cols, &sums).unwrap();
                    })
                })
            });
        }
    }
    g.finish();
}

/// A weight W `[n, k]` for the forward and its Wᵀ for the input gradient (round to nearest):
/// `quantize_both` in one launch against the same run's two quantizers,
/// `quantize_fused` and `quantize_transpose_fused`, which training ran before.
fn weight_both(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    let mut g = c.benchmark_group("weight_both");
    g.sample_size(10);
    for f in [Format::Int8, Format::Mxfp8] {
        let (k, qtf) = (QuantizeFused::new(&gpu, f).unwrap(), QuantizeTransposeFused::new(&gpu, f).unwrap());
        let both = QuantizeBoth::new(&gpu, f).unwrap();
        // resnet20's first stage's 3x3 convolution, its third's, and a GPT block's 64x256.
        for (n, kk) in [(16usize, 144usize), (64, 576), (256, 64)] {
            let x: Vec<f32> = (0..(n * kk) as u32).map(|i| lowbit::rng::uniform(7, i) - 0.5).collect();
            let xb = GpuBuffer::from_slice(&gpu, "w", &x).unwrap();
            let gran = Granularity::native(f);
            let (l, lt) = (QuantLayout::new(n, kk, f, gran).unwrap(), QuantLayout::new(kk, n, f, gran).unwrap());
            let out = |l: &QuantLayout| {
                let codes = GpuBuffer::<u32>::zeros(&gpu, "codes", l.words()).unwrap();
                (codes, GpuBuffer::<f32>::zeros(&gpu, "scales", l.n_groups as usize).unwrap())
            };
            let (o, ot) = (out(&l), out(&lt));
            g.throughput(Throughput::Bytes((4 * n * kk) as u64));
            g.bench_function(format!("apart_{f}_{n}x{kk} (baseline)"), |b| {
                b.iter(|| {
                    run(&gpu, |e| {
                        k.encode(&gpu, e, &xb, &l, Rounding::Nearest, &o.0, &o.1).unwrap();
                        qtf.encode(&gpu, e, &xb, &lt, Rounding::Nearest, &ot.0, &ot.1).unwrap();
                    })
                })
            });
            g.bench_function(format!("one_launch_{f}_{n}x{kk}"), |b| {
                b.iter(|| {
                    run(&gpu, |e| {
                        let near = Rounding::Nearest;
                        let sides = (
                            Side { layout: &l, rounding: near, codes: &o.0, scales: &o.1 },
                            Side { layout: &lt, rounding: near, codes: &ot.0, scales: &ot.1 },
                        );
                        both.encode(&gpu, e, &xb, sides, &BothExtras::default()).unwrap()
                    })
                })
            });
        }
    }
    g.finish();
}

/// A ReLU layer's gradient dY `[rows, n]` for dX and dYᵀ for dW with the bias gradient, the mask
/// read inside, stochastic rounding each way (its own stream): `quantize_both` in one launch
/// against the same run's two quantizers (`quantize_fused` masked, `quantize_transpose_fused`
/// masked with sums), which training ran before.
fn grad_both(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    let mut g = c.benchmark_group("grad_both");
    g.sample_size(10);
    let f = Format::Int8;
    let (k, qtf) = (QuantizeFused::new(&gpu, f).unwrap(), QuantizeTransposeFused::new(&gpu, f).unwrap());
    let both = QuantizeBoth::new(&gpu, f).unwrap();
    let (rd, rt) = (Rounding::Stochastic { seed: 1, stream: 2 }, Rounding::Stochastic { seed: 1, stream: 3 });
    // The MLP's hidden layer at batch 128, a GPT block's 512x64 (8 sequences of 64), the CNN's
    // dense layer at batch 16.
    for (rows, n) in [(128usize, 256usize), (512, 64), (16, 100)] {
        let vals = |seed| (0..(rows * n) as u32).map(|i| lowbit::rng::uniform(seed, i) - 0.5).collect::<Vec<f32>>();
        let (dy, y) =
            (GpuBuffer::from_slice(&gpu, "dy", &vals(7)).unwrap(), GpuBuffer::from_slice(&gpu, "y", &vals(8)).unwrap());
        let (l, lt) = (
            QuantLayout::new(rows, n, f, Granularity::PerRow).unwrap(),
            QuantLayout::new(n, rows, f, Granularity::PerRow).unwrap(),
        );
        let out = |l: &QuantLayout| {
            let codes = GpuBuffer::<u32>::zeros(&gpu, "codes", l.words()).unwrap();
            (codes, GpuBuffer::<f32>::zeros(&gpu, "scales", l.n_groups as usize).unwrap())
        };
        let (o, ot, sums) = (out(&l), out(&lt), GpuBuffer::<f32>::zeros(&gpu, "sums", n).unwrap());
        g.throughput(Throughput::Bytes((8 * rows * n) as u64));
        g.bench_function(format!("apart_{f}_{rows}x{n} (baseline)"), |b| {
            b.iter(|| {
                run(&gpu, |e| {
                    k.encode_masked(&gpu, e, &dy, &y, &l, rd, &o.0, &o.1).unwrap();
                    qtf.encode_with_sums_masked(&gpu, e, &dy, &y, &lt, rt, &ot.0, &ot.1, Some(&sums)).unwrap();
                })
            })
        });
        g.bench_function(format!("one_launch_{f}_{rows}x{n}"), |b| {
            b.iter(|| {
                run(&gpu, |e| {
                    let sides = (
                        Side { layout: &l, rounding: rd, codes: &o.0, scales: &o.1 },
                        Side { layout: &lt, rounding: rt, codes: &ot.0, scales: &ot.1 },
                    );
                    let extras = BothExtras { mask: Some(&y), sums: Some(&sums), samples: 1 };
                    both.encode(&gpu, e, &dy, sides, &extras).unwrap()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, quantizers, rotated_operand, weight_both, grad_both);
criterion_main!(benches);
