//! A convolution's input gradient, fused against unfused: for each shape and precision, the
//! product into dcols followed by col2im (`gemm_f32_lanes` / `gemm_int_lanes` / `gemm_fp8_lanes`,
//! then `col2im`: the baseline, timed in the same run) against the one launch that gathers dY per
//! tap (`gemm_f32_col2im`, `gemm_int_col2im`, `gemm_fp8_col2im`), alternating, `--rounds` times
//! (ms per launch chain, best of 2 runs of 2 iterations each).
//!
//! cargo run --release --example conv_dx -- [--rounds N] [--shapes cnn,r16,r32,r64,r32s2,r64s2]
//!
//! Shapes: `cnn` the MNIST CNN's conv2 at batch 32 (14×14, 16 → 32 channels, 5×5, pad 2), `r16`,
//! `r32`, `r64` `resnet20`'s stage convolutions at batch 16 (32×32, 16×16, 8×8; c → c channels,
//! 3×3, pad 1), `r32s2`, `r64s2` its stride-2 ones (32×32 16 → 32, 16×16 32 → 64). The fused
//! kernels need a CPU adapter with 8-lane subgroups (lavapipe); elsewhere this says so and exits
//! with an error.

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::format::Format;
use lowbit::kernels::gemm::Epilogue;
use lowbit::kernels::gemm_f32::{GemmF32, GemmShape};
use lowbit::kernels::gemm_f32_col2im::GemmF32Col2im;
use lowbit::kernels::gemm_fp8::GemmFp8;
use lowbit::kernels::gemm_fp8_col2im::GemmFp8Col2im;
use lowbit::kernels::gemm_int::GemmInt;
use lowbit::kernels::gemm_int_col2im::GemmIntCol2im;
use lowbit::kernels::im2col::{ConvGeom, Im2col};
use lowbit::quant::{QuantizedTensor, Quantizer};
use lowbit::scheme::QuantScheme;
use lowbit::timing::gpu_seconds;
use lowbit::{Error, Gpu, GpuBuffer, GpuTensor};

const USAGE: &str = "conv_dx [--rounds N] [--shapes cnn,r16,r32,r64,r32s2,r64s2]";

fn main() {
    cli::exit_on_error(run());
}

fn shape(name: &str) -> Option<(ConvGeom, usize)> {
    let g = |batch, h, c, k, stride, pad| ConvGeom { batch, h, w: h, c, kh: k, kw: k, stride, pad };
    Some(match name {
        "cnn" => (g(32, 14, 16, 5, 1, 2), 32),
        "r16" => (g(16, 32, 16, 3, 1, 1), 16),
        "r32" => (g(16, 16, 32, 3, 1, 1), 32),
        "r64" => (g(16, 8, 64, 3, 1, 1), 64),
        "r32s2" => (g(16, 32, 16, 3, 2, 1), 32),
        "r64s2" => (g(16, 16, 32, 3, 2, 1), 64),
        _ => return None,
    })
}

fn run() -> lowbit::Result<()> {
    let (mut rounds, mut shapes) = (3usize, "cnn,r16,r32,r64".to_string());
    let mut f = cli::Flags::new(USAGE);
    while let Some(a) = f.next() {
        match a.as_str() {
            "--rounds" => rounds = f.whole("--rounds"),
            "--shapes" => shapes = f.value("--shapes"),
            "-h" | "--help" => cli::fail(USAGE, "A convolution's input gradient, fused against unfused."),
            other => cli::fail(USAGE, &format!("unknown argument {other}")),
        }
    }
    let shapes: Vec<(String, (ConvGeom, usize))> = shapes
        .split(',')
        .map(|s| {
            shape(s).map(|v| (s.to_string(), v)).unwrap_or_else(|| cli::fail(USAGE, &format!("unknown shape {s}")))
        })
        .collect();
    if rounds == 0 {
        cli::fail(USAGE, "--rounds must be at least 1");
    }
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    if !GemmF32Col2im::available(&gpu) {
        return Err(Error::InvalidArgument(
            "the fused input gradients need a CPU adapter with 8-lane subgroups (lavapipe); this one has none".into(),
        ));
    }
    let g = &gpu;
    let (f32g, f32c, fold, qz) = (GemmF32::new(g)?, GemmF32Col2im::new(g)?, Im2col::new(g)?, Quantizer::new(g)?);
    let (int8, int8c) =
        (GemmInt::new(g, Format::Int8, Format::Int8)?, GemmIntCol2im::new(g, Format::Int8, Format::Int8)?);
    let fp8 = (Format::Fp8E4M3, Format::Fp8E4M3);
    let (fp8g, fp8c) = (GemmFp8::new(g, fp8.0, fp8.1)?, GemmFp8Col2im::new(g, fp8.0, fp8.1)?);
    let time = |record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> lowbit::Result<()>| {
        gpu_seconds(g, 2, 2, record).map(|s| s * 1e3)
    };
    for (name, (geo, k)) in &shapes {
        let (m, n) = (geo.rows(), geo.kdim());
        // dY [m, k] and W [k, n] (f32), their quantized forms dY and Wᵀ [n, k] packed along k.
        let value = |i: usize, p: usize| ((i * p) % 1000) as f32 / 500.0 - 1.0;
        let dy: Vec<f32> = (0..m * *k).map(|i| value(i, 7919)).collect();
        let w: Vec<f32> = (0..*k * n).map(|i| value(i, 104_729)).collect();
        let wt: Vec<f32> = (0..n * *k).map(|i| w[(i % *k) * n + i / *k]).collect();
        let (dyb, wb) = (GpuBuffer::from_slice(g, "dy", &dy)?, GpuBuffer::from_slice(g, "w", &w)?);
        let quantize = |x: &[f32], rows: usize, f: Format| -> lowbit::Result<QuantizedTensor> {
            let mut enc = g.device.create_command_encoder(&Default::default());
            let q = qz.quantize(g, &mut enc, &GpuTensor::from_slice(g, x, &[rows, *k])?, QuantScheme::per_row(f))?;
            g.queue.submit([enc.finish()]);
            Ok(q)
        };
        let (qa, qb) = (quantize(&dy, m, Format::Int8)?, quantize(&wt, n, Format::Int8)?);
        let (fa, fb) = (quantize(&dy, m, fp8.0)?, quantize(&wt, n, fp8.1)?);
        let dcols = GpuBuffer::<f32>::zeros(g, "dcols", m * n)?;
        let dx = GpuBuffer::<f32>::zeros(g, "dx", geo.input_len())?;
        let none = Epilogue::default();
        let s = GemmShape { m, n, k: *k, trans_a: false, trans_b: true };
        println!(
            "{name}: {} pixels, {} → {k} channels, {}x{} taps, stride {}",
            geo.batch * geo.h * geo.w,
            geo.c,
            geo.kh,
            geo.kw,
            geo.stride
        );
        for round in 0..rounds {
            let f32_unfused = time(&mut |e| {
                f32g.encode(g, e, &dyb, &wb, s, &none, &dcols)?;
                fold.encode_fold(g, e, geo, &dcols, &dx)
            })?;
            let f32_fused = time(&mut |e| f32c.encode(g, e, geo, *k, &dyb, &wb, &dx))?;
            let int_unfused = time(&mut |e| {
                int8.encode(g, e, &qa, &qb, &none, &dcols)?;
                fold.encode_fold(g, e, geo, &dcols, &dx)
            })?;
            let int_fused = time(&mut |e| int8c.encode(g, e, geo, &qa, &qb, &dx))?;
            let fp8_unfused = time(&mut |e| {
                fp8g.encode(g, e, &fa, &fb, &none, &dcols)?;
                fold.encode_fold(g, e, geo, &dcols, &dx)
            })?;
            let fp8_fused = time(&mut |e| fp8c.encode(g, e, geo, &fa, &fb, &dx))?;
            let line = |u: f64, fu: f64| format!("{u:.1} → {fu:.1} ms ({:.2}×)", u / fu);
            println!(
                "  round {round}: f32 {}, int8 {}, fp8 {}",
                line(f32_unfused, f32_fused),
                line(int_unfused, int_fused),
                line(fp8_unfused, fp8_fused)
            );
        }
    }
    Ok(())
}
