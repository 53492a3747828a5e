//! The command line shared by the examples: `mnist` and `cifar` run entirely from here
//! (argument parsing, the dataset, the training loop with a progress bar per epoch); the others
//! take the pieces they need (flag reading, data loading, progress bars, the error exit).

use indicatif::{ProgressBar, ProgressStyle};
use lowbit::data::cifar::Cifar10;
use lowbit::data::mnist::Mnist;
use lowbit::data::Dataset;
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::Gpu;
use std::time::Instant;

/// Prints `msg` and the usage line `line`, and exits with status 2.
pub fn fail(line: &str, msg: &str) -> ! {
    eprintln!("{msg}\nusage: {line}");
    std::process::exit(2)
}

/// Reads an example's flags; a malformed one ends the program through [`fail`].
pub struct Flags {
    it: std::iter::Skip<std::env::Args>,
    line: String,
}

impl Flags {
    /// The process's arguments after the program name; `line` is the usage line.
    pub fn new(line: impl Into<String>) -> Self {
        Flags { it: std::env::args().skip(1), line: line.into() }
    }

    /// The next flag.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<String> {
        self.it.next()
    }

    /// The value after `flag`.
    pub fn value(&mut self, flag: &str) -> String {
        match self.it.next() {
            Some(v) => v,
            None => fail(&self.line, &format!("{flag} needs a value")),
        }
    }

    /// The whole number after `flag`.
    pub fn whole(&mut self, flag: &str) -> usize {
        let v = self.value(flag);
        v.parse().unwrap_or_else(|_| fail(&self.line, &format!("{flag} takes a whole number, got {v}")))
    }

    /// The whole number after `flag` that fits a u32 (a seed, a count of epochs).
    pub fn whole_u32(&mut self, flag: &str) -> u32 {
        let v = self.value(flag);
        v.parse()
            .unwrap_or_else(|_| fail(&self.line, &format!("{flag} takes a whole number up to {}, got {v}", u32::MAX)))
    }

    /// The whole number of at least 1 after `flag` that fits a u32 (epochs: a run of none would
    /// report figures it never measured).
    pub fn count(&mut self, flag: &str) -> u32 {
        let n = self.whole_u32(flag);
        if n == 0 {
            fail(&self.line, &format!("{flag} must be at least 1"));
        }
        n
    }

    /// The number after `flag`.
    pub fn number(&mut self, flag: &str) -> f64 {
        let v = self.value(flag);
        v.parse().unwrap_or_else(|_| fail(&self.line, &format!("{flag} takes a number, got {v}")))
    }
}

/// Runs an example's body; on an error prints it and exits non-zero.
pub fn exit_on_error(r: lowbit::Result<()>) {
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A progress bar of `len` steps named `prefix`, in the examples' one style.
pub fn bar(len: usize, prefix: String) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
        .expect("valid template")
        .progress_chars("=> ");
    ProgressBar::new(len as u64).with_style(style).with_prefix(prefix)
}

/// The learning rate the presets train with: 0.02 for the CNN, 0.05 for the MLP and the ResNets.
pub fn default_lr(model: &str) -> f32 {
    if model == "cnn" {
        0.02
    } else {
        0.05
    }
}

/// MNIST `(train, test)` from `dir` (or the embedded subset), the training set cut to `limit`.
pub fn mnist(dir: Option<&str>, limit: Option<usize>) -> lowbit::Result<(Dataset, Dataset)> {
    let (train, test) = load("mnist", dir)?;
    Ok((limit_to(train, limit), test))
}

/// `data` cut to its first `limit` images.
pub fn limit_to(data: Dataset, limit: Option<usize>) -> Dataset {
    match limit {
        Some(n) => data.take(n),
        None => data,
    }
}

/// Steps the examples let the GPU run ahead of the loss read-back ([`Trainer::set_read_every`]).
pub const READ_EVERY: usize = 16;

/// Trains `t` for `epochs` epochs (cosine schedule over them), a progress bar per epoch; losses
/// are read every [`READ_EVERY`] steps.
pub fn train_epochs(t: &mut Trainer, data: &Dataset, epochs: u32, name: &str) -> lowbit::Result<()> {
    t.set_read_every(READ_EVERY)?;
    let steps = data.len() / t.optim().batch;
    for e in 0..epochs {
        let b = bar(steps, format!("{name} {}/{epochs}", e + 1));
        t.train_epoch(data, e, steps * epochs as usize, |_, s| {
            b.inc(1);
            b.set_message(format!("loss {:.4}", s.loss));
        })?;
        b.finish_and_clear();
    }
    Ok(())
}

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
    hidden: Option<usize>,
}

fn usage_line(dataset: &str) -> String {
    format!("{dataset} [--data DIR] [--scheme fp32|int8|fp8|luq4|int4|int3|int2|mxfp8|mxfp4|nvfp4|tinyscriptB|levelsB[+smpK][+rotB][+nearest][+all][+fwd32]] [--epochs N] [--model mlp|cnn|resnet8|resnet20] [--hidden N] [--batch B] [--lr LR] [--seed S] [--limit N] [--save FILE.safetensors] [--json]")
}

fn usage(dataset: &str, msg: &str) -> ! {
    fail(&usage_line(dataset), msg)
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
        hidden: None,
    };
    let mut f = Flags::new(usage_line(dataset));
    while let Some(s) = f.next() {
        match s.as_str() {
            "--data" => a.data = Some(f.value("--data")),
            "--scheme" => a.scheme = f.value("--scheme"),
            "--epochs" => a.epochs = f.count("--epochs"),
            "--model" => a.model = f.value("--model"),
            "--batch" => a.batch = f.whole("--batch"),
            "--lr" => a.lr = Some(f.number("--lr") as f32),
            "--seed" => a.seed = f.whole_u32("--seed"),
            "--limit" => a.limit = Some(f.whole("--limit")),
            "--save" => a.save = Some(f.value("--save")),
            "--json" => a.json = true,
            "--hidden" => a.hidden = Some(f.whole("--hidden")),
            "-h" | "--help" => usage(dataset, &format!("Train a {dataset} classifier with lowbit.")),
            other => usage(dataset, &format!("unknown argument {other}")),
        }
    }
    if a.hidden.is_some() && a.model != "mlp" {
        usage(dataset, "--hidden sets the MLP's two hidden widths: --model mlp only");
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
    exit_on_error(run(dataset));
}

fn run(dataset: &str) -> lowbit::Result<()> {
    let a = parse(dataset);
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let (train, test) = load(dataset, a.data.as_deref())?;
    let train = limit_to(train, a.limit);
    let embedded = dataset == "mnist" && a.data.is_none();
    eprintln!(
        "data: {} training / {} test images{}",
        train.len(),
        test.len(),
        if embedded { " (embedded subset; --data DIR for the full set)" } else { "" }
    );
    // `--hidden N`: the MLP with two hidden layers of N (784-4096-4096-10: `--hidden 4096`).
    let spec = match a.hidden {
        Some(h) => ModelSpec::mlp(train.shape(), &[h, h], train.classes()),
        None => ModelSpec::by_name(&a.model, train.shape(), train.classes())?,
    };
    let scheme = TrainScheme::preset(&a.scheme)?;
    let opt = OptimConfig { lr: a.lr.unwrap_or(default_lr(&a.model)), batch: a.batch, ..Default::default() };
    let mut trainer = Trainer::new(&gpu, spec, scheme, opt, a.seed)?;
    trainer.set_read_every(READ_EVERY)?;
    let steps_per_epoch = train.len() / a.batch;
    let total = steps_per_epoch * a.epochs as usize;
    // (Named as profile_step names it.)
    let model = a.hidden.map_or(a.model.clone(), |h| format!("mlp-{h}"));
    eprintln!("model {model} | scheme {} | {} epochs x {steps_per_epoch} steps of {}", a.scheme, a.epochs, a.batch);
    let (mut test_acc, mut final_loss, mut step_secs) = (0.0, 0.0, 0.0);
    for epoch in 0..a.epochs {
        let bar = bar(steps_per_epoch, format!("epoch {}/{}", epoch + 1, a.epochs));
        let t0 = Instant::now();
        let (loss, train_acc) = trainer.train_epoch(&train, epoch, total, |_, s| {
            bar.inc(1);
            if s.read {
                bar.set_message(format!("loss {:.4}", s.loss));
            }
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
                "dataset": dataset, "model": model, "scheme": a.scheme, "epochs": a.epochs,
                "train_images": train.len(), "test_acc": test_acc, "final_loss": final_loss,
                "ms_per_step": step_secs * 1e3 / total.max(1) as f64,
                "activation_bytes": ab.stored, "activation_bytes_fp32": ab.fp32,
                "adapter": gpu.report().name, "seed": a.seed,
            })
        );
    }
    Ok(())
}
