//! Bit-Mixer: train one network whose per-layer bit-widths are chosen at run time, then evaluate
//! it at uniform and mixed configurations beside dedicated fixed-bit models of the same size
//! and training budget.
//!
//! cargo run --release --example bitmixer -- [--data DIR] [--model mlp|cnn|resnet8|resnet20] [--epochs N]
//!     [--high-epochs E] [--network-epochs E] [--ramp-epochs E] [--choices 2,3,4,8]
//!     [--weights 2,1,1,1] [--mixes N] [--limit N] [--seed S] [--json] [--no-dedicated]
//!
//! Training is staged as in the paper (`lowbit::nn::bitmixer::MixSchedule`; stage lengths in
//! epochs, fractions allowed): `--high-epochs` (default 0.5) at the highest choice everywhere,
//! then `--network-epochs` (default 1) with one bit-width from `--choices` (default
//! {2, 3, 4, 8}) drawn for the whole network per step, then the rest of `--epochs` with
//! per-layer draws, phased in over its first `--ramp-epochs` (default: all of it). `--weights`
//! (one per choice) sets how often each bit-width is drawn; by default the lowest, the one with
//! the least slack, is drawn twice as often as each of the others. The CNN's batch norms are
//! transitional (a state per pair of neighbouring bit-widths). Gradients are int8; forward
//! operands intB with one scale per row. `--no-dedicated` skips the dedicated models.

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::nn::bitmixer::{sample_bits, train_epoch_mixed, MixSchedule};
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::Gpu;
use serde_json::json;

struct Args {
    data: Option<String>,
    model: String,
    epochs: u32,
    high_epochs: f64,
    network_epochs: f64,
    ramp_epochs: Option<f64>,
    choices: Vec<u32>,
    weights: Option<Vec<usize>>,
    /// The choices as drawn in training: each repeated by its weight.
    drawn: Vec<u32>,
    mixes: usize,
    limit: Option<usize>,
    seed: u32,
    json: bool,
    dedicated: bool,
}

const USAGE: &str = "bitmixer [--data DIR] [--model mlp|cnn|resnet8|resnet20] [--epochs N] [--high-epochs E] [--network-epochs E] [--ramp-epochs E] [--choices 2,3,4,8] [--weights 2,1,1,1] [--mixes N] [--limit N] [--seed S] [--json] [--no-dedicated]";

fn usage(msg: &str) -> ! {
    cli::fail(USAGE, msg)
}

fn args() -> Args {
    let mut a = Args {
        data: None,
        model: "mlp".into(),
        epochs: 3,
        high_epochs: 0.5,
        network_epochs: 1.0,
        ramp_epochs: None,
        choices: vec![2, 3, 4, 8],
        weights: None,
        drawn: Vec::new(),
        mixes: 4,
        limit: None,
        seed: 1,
        json: false,
        dedicated: true,
    };
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--data" => a.data = Some(f.value("--data")),
            "--model" => a.model = f.value("--model"),
            "--epochs" => a.epochs = f.whole_u32("--epochs"),
            "--high-epochs" => a.high_epochs = f.number("--high-epochs"),
            "--network-epochs" => a.network_epochs = f.number("--network-epochs"),
            "--ramp-epochs" => a.ramp_epochs = Some(f.number("--ramp-epochs")),
            "--weights" => {
                let v = f.value("--weights");
                a.weights = Some(
                    v.split(',')
                        .map(|w| w.parse().unwrap_or_else(|_| usage(&format!("--weights {v}: whole numbers"))))
                        .collect(),
                );
            }
            "--choices" => {
                let v = f.value("--choices");
                a.choices = v
                    .split(',')
                    .map(|b| match b.trim().parse() {
                        Ok(b @ (2 | 3 | 4 | 8)) => b,
                        _ => usage(&format!("--choices {v}: bit-widths from 2, 3, 4, 8, comma-separated")),
                    })
                    .collect();
            }
            "--mixes" => a.mixes = f.whole("--mixes"),
            "--limit" => a.limit = Some(f.whole("--limit")),
            "--seed" => a.seed = f.whole_u32("--seed"),
            "--json" => a.json = true,
            "--no-dedicated" => a.dedicated = false,
            "-h" | "--help" => usage("Train once, run at any per-layer bit-width (Bit-Mixer)."),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let stages = [a.high_epochs, a.network_epochs, a.ramp_epochs.unwrap_or(0.0)];
    if stages.iter().any(|e| !(e.is_finite() && *e >= 0.0)) {
        usage("stage lengths are epochs, 0 or more");
    }
    if a.high_epochs + a.network_epochs > a.epochs as f64 {
        usage("--high-epochs and --network-epochs together cannot exceed --epochs");
    }
    // Weights: by default the lowest bit-width, the one with the least slack, twice the others.
    let low = a.choices.iter().copied().min().unwrap_or(2);
    let weights = a.weights.take().unwrap_or_else(|| a.choices.iter().map(|&b| if b == low { 2 } else { 1 }).collect());
    if weights.len() != a.choices.len() || weights.contains(&0) {
        usage("--weights: one whole number of at least 1 per choice, in the order of --choices");
    }
    let mut pairs: Vec<(u32, usize)> = a.choices.iter().copied().zip(weights).collect();
    pairs.sort_unstable();
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        usage("--choices: each bit-width once (--weights sets how often one is drawn)");
    }
    a.choices = pairs.iter().map(|p| p.0).collect();
    a.drawn = pairs.iter().flat_map(|&(b, n)| std::iter::repeat_n(b, n)).collect();
    a
}

fn set_all(t: &mut Trainer, bits: &[u32]) -> lowbit::Result<()> {
    for (l, &b) in bits.iter().enumerate() {
        t.set_bits(l, b)?;
    }
    Ok(())
}

fn main() {
    cli::exit_on_error(run());
}

fn run() -> lowbit::Result<()> {
    let a = args();
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let (train, test) = cli::mnist(a.data.as_deref(), a.limit)?;
    let spec = ModelSpec::by_name(&a.model, train.shape(), train.classes())?;
    let opt = OptimConfig { lr: cli::default_lr(&a.model), ..Default::default() };
    let steps = train.len() / opt.batch;
    let total = steps * a.epochs as usize;
    let scheme = TrainScheme::preset("int8")?;
    // The Bit-Mixer model, trained in stages.
    let to_steps = |e: f64| (e * steps as f64).round() as u64;
    let (high, network) = (to_steps(a.high_epochs), to_steps(a.network_epochs));
    let ramp = a.ramp_epochs.map_or((total as u64).saturating_sub(high + network), to_steps);
    let schedule = MixSchedule { high, network, ramp };
    eprintln!(
        "stages: {high} steps at {} bits, {network} network-wide, then per-layer (phased in over {ramp} steps); drawn from {:?}",
        a.choices.iter().max().unwrap_or(&8),
        a.drawn
    );
    let mut mixer = Trainer::new(&gpu, spec.clone(), scheme.clone(), opt, a.seed)?;
    mixer.enable_transitional_bn()?;
    let layers = mixer.bits().len();
    for e in 0..a.epochs {
        let b = cli::bar(steps, format!("Bit-Mixer {}/{}", e + 1, a.epochs));
        let on = |_: usize, s: lowbit::nn::StepStats| {
            b.inc(1);
            if s.read {
                b.set_message(format!("loss {:.4}", s.loss));
            }
        };
        train_epoch_mixed(&mut mixer, &train, e, total, &a.drawn, schedule, on)?;
        b.finish_and_clear();
    }
    // Dedicated models, trained at one bit-width for the same epochs.
    let mut dedicated = Vec::new();
    for &bits in a.choices.iter().filter(|_| a.dedicated) {
        let mut t = Trainer::new(&gpu, spec.clone(), scheme.clone(), opt, a.seed)?;
        set_all(&mut t, &vec![bits; layers])?;
        cli::train_epochs(&mut t, &train, a.epochs, &format!("dedicated {bits}-bit"))?;
        dedicated.push((bits, t.evaluate(&test)?.0));
    }
    // Evaluate the one model at uniform and random configurations.
    let mut configs: Vec<Vec<u32>> = a.choices.iter().map(|&b| vec![b; layers]).collect();
    // Distinct mixed configurations (as many as exist, up to --mixes).
    let mut m = 0u64;
    while configs.len() < a.choices.len() + a.mixes && m < 1000 {
        let c = sample_bits(&a.choices, a.seed ^ 0x5eed, m, layers)?;
        if !configs.contains(&c) {
            configs.push(c);
        }
        m += 1;
    }
    println!("{:<16} {:>12} {:>12} {:>8}", "bits per layer", "Bit-Mixer", "dedicated", "Δ");
    let mut rows = Vec::new();
    for c in &configs {
        set_all(&mut mixer, c)?;
        let acc = mixer.evaluate(&test)?.0;
        let uniform = c.iter().all(|&b| b == c[0]);
        let ded = if uniform { dedicated.iter().find(|d| d.0 == c[0]).map(|d| d.1) } else { None };
        let name = c.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("-");
        match ded {
            Some(d) => println!("{name:<16} {:>11.2}% {:>11.2}% {:>+7.2}pt", 100.0 * acc, 100.0 * d, 100.0 * (acc - d)),
            None => println!("{name:<16} {:>11.2}% {:>12} {:>8}", 100.0 * acc, "-", "-"),
        }
        rows.push((c.clone(), acc, ded));
    }
    if a.json {
        for (c, acc, ded) in &rows {
            println!(
                "{}",
                json!({"dataset": "mnist", "model": a.model, "bits": c, "bitmixer_acc": acc, "dedicated_acc": ded,
                       "epochs": a.epochs, "train_images": train.len(), "adapter": gpu.report().name,
                       "schedule": {"high_steps": high, "network_steps": network, "ramp_steps": ramp}, "drawn": a.drawn})
            );
        }
    }
    Ok(())
}
