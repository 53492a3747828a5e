//! Where a training step's GPU time goes: per-kernel GPU time (timestamp queries, see
//! `lowbit::profile`) of a few training steps, per scheme, beside the step's wall time.
//!
//! cargo run --release --example profile_step -- [--model mlp|cnn] [--schemes a,b,...] [--steps N] [--json]

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::data::mnist::Mnist;
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::profile::Profile;
use lowbit::Gpu;
use serde_json::json;
use std::time::Instant;

const USAGE: &str = "profile_step [--model mlp|cnn] [--schemes a,b,...] [--steps N] [--json]";

fn main() {
    cli::exit_on_error(run());
}

fn run() -> lowbit::Result<()> {
    let (mut model, mut schemes, mut steps, mut json_out) =
        ("mlp".to_string(), "fp32,int8,luq4".to_string(), 10usize, false);
    let mut f = cli::Flags::new(USAGE);
    while let Some(a) = f.next() {
        match a.as_str() {
            "--model" => model = f.value("--model"),
            "--schemes" => schemes = f.value("--schemes"),
            "--steps" => steps = f.whole("--steps"),
            "--json" => json_out = true,
            "-h" | "--help" => cli::fail(USAGE, "Per-kernel GPU time of training steps."),
            other => cli::fail(USAGE, &format!("unknown argument {other}")),
        }
    }
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let mnist = Mnist::embedded()?;
    let spec = ModelSpec::by_name(&model, mnist.train.shape, mnist.train.classes)?;
    let opt = OptimConfig::default();
    let order = mnist.train.order(1, 0);
    let batches: Vec<_> = order.chunks_exact(opt.batch).take(steps.max(1) + 3).map(|b| mnist.train.gather(b)).collect();
    for scheme in schemes.split(',') {
        let mut t = Trainer::new(&gpu, spec.clone(), TrainScheme::preset(scheme)?, opt, 1)?;
        // Warm-up: three steps, and on a GPU at least 1.5 s of them — a freshly built pipeline ran
        // 2–5× below its steady speed for its first half-second or so on the H100's driver.
        let warm_for = if gpu.report().device_type == "cpu" { 0.0 } else { 1.5 };
        let start = Instant::now();
        let mut i = 0;
        while i < 3 || start.elapsed().as_secs_f64() < warm_for {
            let (x, l) = &batches[i % 3];
            t.step(x, l, 0.01)?;
            i += 1;
        }
        let profile = Profile::start(&gpu, 2048)?;
        let t0 = Instant::now();
        let mut host = [0f64; 3];
        for (x, l) in &batches[3..] {
            let h = t.step(x, l, 0.01)?.host;
            for (sum, v) in host.iter_mut().zip([h.record, h.submit, h.wait]) {
                *sum += v;
            }
        }
        let wall = t0.elapsed().as_secs_f64() / (batches.len() - 3) as f64;
        let host = host.map(|v| v / (batches.len() - 3) as f64);
        let (kernels, dropped) = profile.finish(&gpu)?;
        let n = (batches.len() - 3) as f64;
        let total: f64 = kernels.iter().map(|k| k.seconds).sum();
        println!(
            "{model} {scheme}: wall {:.2} ms/step, GPU (sum of passes) {:.2} ms/step{}",
            1e3 * wall,
            1e3 * total / n,
            if dropped > 0 {
                format!(" ({dropped} passes did not fit the profile and are not counted: use fewer --steps)")
            } else {
                String::new()
            }
        );
        println!(
            "  host: record {:.2} ms, submit {:.2} ms, wait for the loss {:.2} ms, rest {:.2} ms (freeing the step's buffers)",
            1e3 * host[0],
            1e3 * host[1],
            1e3 * host[2],
            1e3 * (wall - host.iter().sum::<f64>())
        );
        for k in &kernels {
            println!(
                "  {:<20} {:>8.3} ms/step {:>6.1} dispatches/step {:>5.1}%",
                k.name,
                1e3 * k.seconds / n,
                k.dispatches as f64 / n,
                100.0 * k.seconds / total.max(1e-12)
            );
            if json_out {
                println!(
                    "{}",
                    json!({"model": model, "scheme": scheme, "kernel": k.name, "ms_per_step": 1e3 * k.seconds / n,
                           "dispatches_per_step": k.dispatches as f64 / n, "wall_ms_per_step": 1e3 * wall,
                           "host_record_ms": 1e3 * host[0], "host_submit_ms": 1e3 * host[1], "host_wait_ms": 1e3 * host[2],
                           "adapter": gpu.report().name})
                );
            }
        }
    }
    Ok(())
}
