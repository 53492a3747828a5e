//! Bit-Mixer: train one network whose per-layer bit-widths are chosen at run time, then evaluate
//! it at uniform and mixed configurations beside dedicated fixed-bit models of the same size
//! and training budget.
//!
//! cargo run --release --example bitmixer -- [--data DIR] [--model mlp|cnn] [--epochs N]
//!     [--high-epochs N] [--choices 2,3,4,8] [--mixes N] [--limit N] [--seed S] [--json]
//!
//! Training is staged as in the paper: `--high-epochs` at 8 bits everywhere, then the rest of
//! `--epochs` with a bit-width from `--choices` (default {2, 3, 4, 8}) drawn for every layer at
//! every step; the CNN's batch norms are transitional (a state per pair of neighbouring
//! bit-widths). Gradients are int8; forward operands intB with one scale per row.

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::nn::bitmixer::{sample_bits, train_epoch_mixed};
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::Gpu;
use serde_json::json;

struct Args {
    data: Option<String>,
    model: String,
    epochs: u32,
    high_epochs: u32,
    choices: Vec<u32>,
    mixes: usize,
    limit: Option<usize>,
    seed: u32,
    json: bool,
}

const USAGE: &str = "bitmixer [--data DIR] [--model mlp|cnn] [--epochs N] [--high-epochs N] [--choices 2,3,4,8] [--mixes N] [--limit N] [--seed S] [--json]";

fn usage(msg: &str) -> ! {
    cli::fail(USAGE, msg)
}

fn args() -> Args {
    let mut a = Args {
        data: None,
        model: "mlp".into(),
        epochs: 3,
        high_epochs: 1,
        choices: vec![2, 3, 4, 8],
        mixes: 4,
        limit: None,
        seed: 1,
        json: false,
    };
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--data" => a.data = Some(f.value("--data")),
            "--model" => a.model = f.value("--model"),
            "--epochs" => a.epochs = f.whole("--epochs") as u32,
            "--high-epochs" => a.high_epochs = f.whole("--high-epochs") as u32,
            "--choices" => {
                let v = f.value("--choices");
                a.choices = v
                    .split(',')
                    .map(|b| match b.trim().parse() {
                        Ok(b @ (2 | 3 | 4 | 8)) => b,
                        _ => usage(&format!("--choices {v}: bit-widths from 2, 3, 4, 8, comma-separated")),
                    })
                    .collect();
                a.choices.sort_unstable();
                a.choices.dedup();
            }
            "--mixes" => a.mixes = f.whole("--mixes"),
            "--limit" => a.limit = Some(f.whole("--limit")),
            "--seed" => a.seed = f.whole("--seed") as u32,
            "--json" => a.json = true,
            "-h" | "--help" => usage("Train once, run at any per-layer bit-width (Bit-Mixer)."),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.high_epochs > a.epochs {
        usage("--high-epochs cannot exceed --epochs");
    }
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
    let spec = ModelSpec::by_name(&a.model, train.shape, train.classes)?;
    let opt = OptimConfig { lr: cli::default_lr(&a.model), ..Default::default() };
    let steps = train.len() / opt.batch;
    let total = steps * a.epochs as usize;
    let scheme = TrainScheme::preset("int8")?;
    // The Bit-Mixer model: staged, then mixed.
    let mut mixer = Trainer::new(&gpu, spec.clone(), scheme.clone(), opt, a.seed)?;
    mixer.enable_transitional_bn()?;
    let layers = mixer.bits().len();
    for e in 0..a.epochs {
        let b = cli::bar(steps, format!("Bit-Mixer {}/{}", e + 1, a.epochs));
        let on = |_: usize, s: lowbit::nn::StepStats| {
            b.inc(1);
            b.set_message(format!("loss {:.4}", s.loss));
        };
        if e < a.high_epochs {
            set_all(&mut mixer, &vec![8; layers])?;
            mixer.train_epoch(&train, e, total, on)?;
        } else {
            train_epoch_mixed(&mut mixer, &train, e, total, &a.choices, on)?;
        }
        b.finish_and_clear();
    }
    // Dedicated models, trained at one bit-width for the same epochs.
    let mut dedicated = Vec::new();
    for &bits in &a.choices {
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
        let c = sample_bits(&a.choices, a.seed ^ 0x5eed, m, layers);
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
                       "epochs": a.epochs, "train_images": train.len(), "adapter": gpu.report().name})
            );
        }
    }
    Ok(())
}
