//! The command line shared by the `mnist` and `cifar` examples: argument parsing, the dataset,
//! and the training loop with a progress bar per epoch.

use indicatif::{ProgressBar, ProgressStyle};
use lowbit::data::cifar::Cifar10;
use lowbit::data::mnist::Mnist;
use lowbit::data::Dataset;
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::Gpu;
use std::time::Instant;

struct Args {
    data: Option<String>,
    scheme: String,
    epochs: u32,
    model: String,
    batch: usize,
    lr: Option<f32>,
    seed: u32,
    limit: Option<usize>,
    save: Option<String>,
    json: bool,
}

fn usage(dataset: &str, msg: &str) -> ! {
    eprintln!("{msg}\nusage: {dataset} [--data DIR] [--scheme fp32|int8|fp8|luq4[+smpK][+rotB][+nearest][+all4]] [--epochs N] [--model mlp|cnn] [--batch B] [--lr LR] [--seed S] [--limit N] [--save FILE.safetensors] [--json]");
    std::process::exit(2)
}

fn parse(dataset: &str) -> Args {
    let model = if dataset == "cifar" { "cnn" } else { "mlp" };
    let mut a = Args {
        data: None,
        scheme: "fp32".into(),
        epochs: 5,
        model: model.into(),
        batch: 128,
        lr: None,
        seed: 1,
        limit: None,
        save: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(s) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| usage(dataset, &format!("{name} needs a value")));
        let num = |v: String, name: &str| -> f64 {
            v.parse().unwrap_or_else(|_| usage(dataset, &format!("{name} takes a number, got {v}")))
        };
        match s.as_str() {
            "--data" => a.data = Some(val("--data")),
            "--scheme" => a.scheme = val("--scheme"),
            "--epochs" => a.epochs = num(val("--epochs"), "--epochs") as u32,
            "--model" => a.model = val("--model"),
            "--batch" => a.batch = num(val("--batch"), "--batch") as usize,
            "--lr" => a.lr = Some(num(val("--lr"), "--lr") as f32),
            "--seed" => a.seed = num(val("--seed"), "--seed") as u32,
            "--limit" => a.limit = Some(num(val("--limit"), "--limit") as usize),
            "--save" => a.save = Some(val("--save")),
            "--json" => a.json = true,
            "-h" | "--help" => usage(dataset, &format!("Train a {dataset} classifier with lowbit.")),
            other => usage(dataset, &format!("unknown argument {other}")),
        }
    }
    a
}

/// Loads `(train, test)` of `dataset` from `dir`, or the embedded MNIST subset.
pub fn load(dataset: &str, dir: Option<&str>) -> lowbit::Result<(Dataset, Dataset)> {
    Ok(match (dataset, dir) {
        ("mnist", Some(d)) => {
            let m = Mnist::load(d)?;
            (m.train, m.test)
        }
        ("mnist", None) => {
            let m = Mnist::embedded()?;
            (m.train, m.test)
        }
        (_, Some(d)) => {
            let c = Cifar10::load(d)?;
            (c.train, c.test)
        }
        (_, None) => usage(dataset, "CIFAR-10 is not embedded: pass --data DIR with the official binary batches (cifar-10-binary.tar.gz, unpacked)"),
    })
}

/// Runs the example for `dataset` ("mnist" or "cifar"), exiting non-zero with the error.
pub fn main(dataset: &str) {
    if let Err(e) = run(dataset) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(dataset: &str) -> lowbit::Result<()> {
    let a = parse(dataset);
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let (train, test) = load(dataset, a.data.as_deref())?;
    let train = match a.limit {
        Some(n) => train.take(n),
        None => train,
    };
    let embedded = dataset == "mnist" && a.data.is_none();
    eprintln!(
        "data: {} training / {} test images{}",
        train.len(),
        test.len(),
        if embedded { " (embedded subset; --data DIR for the full set)" } else { "" }
    );
    let spec = ModelSpec::by_name(&a.model, train.shape, train.classes)?;
    let scheme = TrainScheme::preset(&a.scheme)?;
    let default_lr = if a.model == "cnn" { 0.02 } else { 0.05 };
    let opt = OptimConfig { lr: a.lr.unwrap_or(default_lr), batch: a.batch, ..Default::default() };
    let mut trainer = Trainer::new(&gpu, spec, scheme, opt, a.seed)?;
    let steps_per_epoch = train.len() / a.batch;
    let total = steps_per_epoch * a.epochs as usize;
    eprintln!("model {} | scheme {} | {} epochs x {steps_per_epoch} steps of {}", a.model, a.scheme, a.epochs, a.batch);
    let (mut test_acc, mut final_loss, mut step_secs) = (0.0, 0.0, 0.0);
    for epoch in 0..a.epochs {
        let bar = ProgressBar::new(steps_per_epoch as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, a.epochs));
        let t0 = Instant::now();
        let (loss, train_acc) = trainer.train_epoch(&train, epoch, total, |_, s| {
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", s.loss));
        })?;
        step_secs += t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let (acc, _) = trainer.evaluate(&test)?;
        test_acc = acc;
        final_loss = loss;
        eprintln!(
            "epoch {}/{}: train loss {loss:.4}, train acc {:.2}%, test acc {:.2}%",
            epoch + 1,
            a.epochs,
            train_acc * 100.0,
            acc * 100.0
        );
    }
    if let Some(path) = &a.save {
        trainer.save(path)?;
        eprintln!("saved {path}");
    }
    let ab = trainer.activation_bytes();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "dataset": dataset, "model": a.model, "scheme": a.scheme, "epochs": a.epochs,
                "train_images": train.len(), "test_acc": test_acc, "final_loss": final_loss,
                "ms_per_step": step_secs * 1e3 / total.max(1) as f64,
                "activation_bytes": ab.stored, "activation_bytes_fp32": ab.fp32,
                "adapter": gpu.report().name, "seed": a.seed,
            })
        );
    }
    Ok(())
}
