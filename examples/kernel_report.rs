//! Kernel report: one JSON object per line. First the adapter, then for every quantizer its
//! bandwidth beside a plain copy kernel measured in the same run on the same number of elements
//! (bytes counted as read + written: f32 input, packed codes, scales).
//!
//! cargo run --release --example kernel_report -- [--elements N] [--iters K] [--adapter-only]

use lowbit::format::Format;
use lowbit::kernels::{
    absmax::Absmax, copy::Copy, dequantize::Dequantize, quantize::Quantize,
    quantize_fused::QuantizeFused, quantize_transpose::QuantizeTranspose, scale::Scale,
};
use lowbit::scheme::{Granularity, QuantLayout, Rounding};
use lowbit::timing::gpu_seconds;
use lowbit::{Gpu, GpuBuffer, Result};
use serde_json::json;

struct Args {
    elements: usize,
    iters: u32,
    adapter_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        elements: 16 << 20,
        iters: 10,
        adapter_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(s) = it.next() {
        match s.as_str() {
            "--elements" => {
                a.elements = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--elements N")
            }
            "--iters" => a.iters = it.next().and_then(|v| v.parse().ok()).expect("--iters K"),
            "--adapter-only" => a.adapter_only = true,
            other => {
                eprintln!("unknown argument {other}\nusage: kernel_report [--elements N] [--iters K] [--adapter-only]");
                std::process::exit(2);
            }
        }
    }
    a
}

fn main() -> Result<()> {
    let a = args();
    let gpu = Gpu::new()?;
    println!("{}", gpu.report().to_json());
    if a.adapter_only {
        return Ok(());
    }
    let cols = 4096usize;
    let rows = a.elements.div_ceil(cols);
    let n = rows * cols;
    let x: Vec<f32> = (0..n as u32)
        .map(|i| lowbit::rng::uniform(7, i) * 2.0 - 1.0)
        .collect();
    let xb = GpuBuffer::from_slice(&gpu, "x", &x)?;
    let copy_dst = GpuBuffer::<f32>::zeros(&gpu, "copy dst", n)?;
    let copy = Copy::new(&gpu)?;
    let t_copy = gpu_seconds(&gpu, a.iters, 3, |e| copy.encode(&gpu, e, &xb, &copy_dst))?;
    let copy_gbps = (8 * n) as f64 / t_copy / 1e9;
    let absmax = Absmax::new(&gpu)?;
    let sr = Rounding::Stochastic { seed: 1, stream: 0 };
    for f in Format::ALL {
        let scale = Scale::new(&gpu, f)?;
        let quant = Quantize::new(&gpu, f)?;
        let fused = QuantizeFused::new(&gpu, f)?;
        let transpose = QuantizeTranspose::new(&gpu, f)?;
        let deq = Dequantize::new(&gpu, f)?;
        let line = |kernel: &str, gran: Granularity, rounding: &str, bytes: f64, secs: f64| {
            let gbps = bytes / secs / 1e9;
            println!(
                "{}",
                json!({"kernel": kernel, "format": f.name(), "granularity": gran.to_string(), "rounding": rounding, "elements": n,
                       "gbps": (gbps * 100.0).round() / 100.0, "copy_gbps": (copy_gbps * 100.0).round() / 100.0, "ratio": (gbps / copy_gbps * 1000.0).round() / 1000.0})
            );
        };
        for gran in [
            Granularity::PerRow,
            Granularity::PerBlock(32),
            Granularity::PerTensor,
        ] {
            let l = QuantLayout::new(rows, cols, f, gran)?;
            let codes = GpuBuffer::<u32>::zeros(&gpu, "codes", l.words())?;
            let scales = GpuBuffer::<f32>::zeros(&gpu, "scales", l.n_groups as usize)?;
            let inv = GpuBuffer::<f32>::zeros(&gpu, "inv", l.n_groups as usize)?;
            let amax = GpuBuffer::<u32>::zeros(&gpu, "amax", l.n_groups as usize)?;
            let bytes = (4 * n + 4 * l.words() + 4 * l.n_groups as usize) as f64;
            for (rname, r) in [("nearest", Rounding::Nearest), ("stochastic", sr)] {
                if QuantizeFused::supports(&l) {
                    let t = gpu_seconds(&gpu, a.iters, 3, |e| {
                        fused.encode(&gpu, e, &xb, &l, r, &codes, &scales)
                    })?;
                    line("quantize_fused", gran, rname, bytes, t);
                }
                let t = gpu_seconds(&gpu, a.iters, 3, |e| {
                    absmax.encode(&gpu, e, &xb, &l, false, &amax)?;
                    scale.encode(&gpu, e, &amax, &scales, &inv)?;
                    quant.encode(&gpu, e, &xb, &inv, &l, r, &codes)
                })?;
                line("quantize_two_pass", gran, rname, bytes, t);
            }
            if gran == Granularity::PerRow {
                let out = GpuBuffer::<f32>::zeros(&gpu, "out", n)?;
                let t = gpu_seconds(&gpu, a.iters, 3, |e| {
                    deq.encode(&gpu, e, &codes, &scales, &l, &out)
                })?;
                line("dequantize", gran, "-", bytes, t);
            }
            if gran == Granularity::PerTensor {
                // The transposing quantizer: x is [rows, cols], its transpose [cols, rows] is packed.
                let lt = QuantLayout::new(cols, rows, f, gran)?;
                let codes_t = GpuBuffer::<u32>::zeros(&gpu, "codes t", lt.words())?;
                let t = gpu_seconds(&gpu, a.iters, 3, |e| {
                    absmax.encode(&gpu, e, &xb, &l, false, &amax)?;
                    scale.encode(&gpu, e, &amax, &scales, &inv)?;
                    transpose.encode(&gpu, e, &xb, &inv, &lt, sr, &codes_t)
                })?;
                line(
                    "quantize_transpose",
                    gran,
                    "stochastic",
                    (4 * n + 4 * lt.words() + 4) as f64,
                    t,
                );
            }
        }
    }
    Ok(())
}
