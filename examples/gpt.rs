//! Train a character-level GPT on Shakespeare (embedded in the crate) with quantized weights,
//! activations and gradients, then sample from it.
//!
//! cargo run --release --example gpt -- [--data FILE] [--scheme S | --schemes S1,S2,...]
//!     [--layers L] [--width C] [--heads H] [--context T] [--batch B] [--steps N] [--lr LR]
//!     [--optimizer adamw|sgd] [--eval-every N] [--val-windows N] [--sample N] [--seed S] [--json]
//!
//! Without `--data` it trains on the embedded corpus (seven tragedies, 993,263 characters);
//! `--data FILE` takes any text file (its vocabulary is the bytes it uses). The last 10% of the
//! text is the validation set: loss is in nats per character, over `--val-windows` fixed
//! windows of it. `--schemes` trains each scheme from the same seed on the same batches and
//! prints one table (validation loss, its ratio to the first scheme's, ms per step, tokens per
//! second). AdamW (β = 0.9, 0.99; decoupled weight decay 0.1 on the projections) with a
//! cosine schedule from `--lr` (3e-3; SGD: 0.3, momentum 0.9). The defaults finish in a few
//! minutes on a 2-core software rasterizer.

#[path = "shared/cli.rs"]
#[allow(dead_code)] // the helpers the other examples take
mod cli;

use lowbit::data::text::{Text, Tokens};
use lowbit::nn::{cosine_lr, GptConfig, OptimConfig, Optimizer, TrainScheme, Trainer};
use lowbit::{rng, Gpu};
use std::time::Instant;

const USAGE: &str = "gpt [--data FILE] [--scheme S | --schemes S1,S2,...] [--layers L] [--width C] [--heads H] [--context T] [--batch B] [--steps N] [--lr LR] [--optimizer adamw|sgd] [--eval-every N] [--val-windows N] [--sample N] [--seed S] [--json]";

struct Args {
    data: Option<String>,
    schemes: Vec<String>,
    cfg: GptConfig,
    batch: usize,
    steps: usize,
    lr: Option<f32>,
    optimizer: Optimizer,
    eval_every: usize,
    val_windows: usize,
    sample: usize,
    seed: u32,
    json: bool,
}

fn parse() -> Args {
    let mut a = Args {
        data: None,
        schemes: vec!["fp32".into()],
        cfg: GptConfig { vocab: 0, context: 64, width: 64, heads: 4, layers: 2 },
        batch: 16,
        steps: 600,
        lr: None,
        optimizer: Optimizer::ADAMW,
        eval_every: 200,
        val_windows: 128,
        sample: 300,
        seed: 1,
        json: false,
    };
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--data" => a.data = Some(f.value("--data")),
            "--scheme" => a.schemes = vec![f.value("--scheme")],
            "--schemes" => a.schemes = f.value("--schemes").split(',').map(str::to_string).collect(),
            "--layers" => a.cfg.layers = f.whole("--layers"),
            "--width" => a.cfg.width = f.whole("--width"),
            "--heads" => a.cfg.heads = f.whole("--heads"),
            "--context" => a.cfg.context = f.whole("--context"),
            "--batch" => a.batch = f.whole("--batch"),
            "--steps" => a.steps = f.whole("--steps"),
            "--lr" => a.lr = Some(f.number("--lr") as f32),
            "--optimizer" => {
                a.optimizer = match f.value("--optimizer").as_str() {
                    "adamw" => Optimizer::ADAMW,
                    "sgd" => Optimizer::Sgd,
                    other => cli::fail(USAGE, &format!("unknown optimizer {other} (adamw, sgd)")),
                }
            }
            "--eval-every" => a.eval_every = f.whole("--eval-every"),
            "--val-windows" => a.val_windows = f.whole("--val-windows"),
            "--sample" => a.sample = f.whole("--sample"),
            "--seed" => a.seed = f.whole_u32("--seed"),
            "--json" => a.json = true,
            "-h" | "--help" => cli::fail(USAGE, "Train a character-level GPT with lowbit."),
            other => cli::fail(USAGE, &format!("unknown argument {other}")),
        }
    }
    if a.steps == 0 || a.batch == 0 || a.val_windows == 0 || a.schemes.iter().any(|s| s.is_empty()) {
        cli::fail(USAGE, "--steps, --batch and --val-windows must be at least 1, and schemes non-empty");
    }
    a
}

/// One scheme's run.
struct Run {
    scheme: String,
    /// (step, validation loss) at each evaluation.
    curve: Vec<(usize, f64)>,
    val_loss: f64,
    val_acc: f64,
    train_loss: f64,
    ms_per_step: f64,
    tokens_per_s: f64,
    sample: String,
}

/// Mean loss and accuracy over the fixed validation windows.
fn validate(t: &Trainer, val: &Tokens, starts: &[usize], batch: usize, context: usize) -> lowbit::Result<(f64, f64)> {
    let (mut loss, mut acc, mut n) = (0.0, 0.0, 0usize);
    for chunk in starts.chunks(batch) {
        let (x, y) = val.batch(chunk, context)?;
        let (a, l) = t.evaluate_batch(&x, &y)?;
        loss += l * y.len() as f64;
        acc += a * y.len() as f64;
        n += y.len();
    }
    Ok((loss / n as f64, acc / n as f64))
}

/// `n` characters sampled (temperature 0.8) after the validation text's first window.
fn sample(t: &Trainer, text: &Text, val: &Tokens, context: usize, n: usize, seed: u32) -> lowbit::Result<String> {
    let mut window: Vec<u32> = val.ids()[..context].to_vec();
    let mut out = Vec::with_capacity(n);
    let key = rng::key(seed, rng::streams::USER);
    let vocab = text.vocab();
    for i in 0..n as u32 {
        let x: Vec<f32> = window.iter().map(|&v| v as f32).collect();
        let logits = t.logits(&x, 1)?;
        let last = &logits[(context - 1) * vocab..context * vocab];
        let m = last.iter().cloned().fold(f32::MIN, f32::max);
        let w: Vec<f64> = last.iter().map(|&l| (((l - m) / 0.8) as f64).exp()).collect();
        let mut u = rng::uniform(key, i) as f64 * w.iter().sum::<f64>();
        let mut next = vocab - 1;
        for (j, &p) in w.iter().enumerate() {
            if u < p {
                next = j;
                break;
            }
            u -= p;
        }
        out.push(next as u32);
        window.remove(0);
        window.push(next as u32);
    }
    Ok(text.decode(&out))
}

/// The peak learning rate: `--lr`, or the optimizer's default.
fn lr(a: &Args) -> f32 {
    a.lr.unwrap_or(if a.optimizer == Optimizer::Sgd { 0.3 } else { 3e-3 })
}

fn train(gpu: &Gpu, a: &Args, text: &Text, train: &Tokens, val: &Tokens, scheme: &str) -> lowbit::Result<Run> {
    let cfg = GptConfig { vocab: text.vocab(), ..a.cfg };
    let wd = if a.optimizer == Optimizer::Sgd { 0.0 } else { 0.1 };
    let opt = OptimConfig { lr: lr(a), momentum: 0.9, weight_decay: wd, batch: a.batch, optimizer: a.optimizer };
    let mut t = Trainer::from_graph(gpu, cfg.graph()?, TrainScheme::preset(scheme)?, opt, a.seed)?;
    t.set_read_every(cli::READ_EVERY)?;
    let starts = val.tiled_starts(cfg.context, a.val_windows);
    let bar = cli::bar(a.steps, scheme.to_string());
    let (mut curve, mut train_loss, mut secs) = (Vec::new(), 0.0, 0.0);
    for step in 0..a.steps {
        let (x, y) = train.batch(&train.random_starts(a.seed, step as u32, a.batch, cfg.context), cfg.context)?;
        let t0 = Instant::now();
        let s = t.step(&x, &y, cosine_lr(lr(a), step, a.steps))?;
        secs += t0.elapsed().as_secs_f64();
        bar.inc(1);
        if s.read {
            train_loss = s.loss as f64;
            bar.set_message(format!("loss {:.3}", s.loss));
        }
        if (step + 1) % a.eval_every.max(1) == 0 || step + 1 == a.steps {
            let t0 = Instant::now();
            // The flush reads the steps' losses still pending: the last of them is this step's.
            if let Some(s) = t.flush()? {
                train_loss = s.loss as f64;
            }
            secs += t0.elapsed().as_secs_f64();
            let (l, _) = validate(&t, val, &starts, a.batch, cfg.context)?;
            bar.println(format!("{scheme}: step {} validation loss {l:.4}", step + 1));
            curve.push((step + 1, l));
        }
    }
    bar.finish_and_clear();
    if let Some(s) = t.flush()? {
        train_loss = s.loss as f64;
    }
    let (val_loss, val_acc) = validate(&t, val, &starts, a.batch, cfg.context)?;
    let sample = sample(&t, text, val, cfg.context, a.sample, a.seed)?;
    let tokens = (a.steps * a.batch * cfg.context) as f64;
    Ok(Run {
        scheme: scheme.into(),
        curve,
        val_loss,
        val_acc,
        train_loss,
        ms_per_step: secs * 1e3 / a.steps as f64,
        tokens_per_s: tokens / secs,
        sample,
    })
}

/// Entropy in nats of the text's character frequencies (what a model without context reaches).
fn unigram_entropy(ids: &[u32], vocab: usize) -> f64 {
    let mut counts = vec![0usize; vocab];
    for &i in ids {
        counts[i as usize] += 1;
    }
    let n = ids.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).ln()).sum()
}

fn run() -> lowbit::Result<()> {
    let a = parse();
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let text = match &a.data {
        Some(p) => Text::from_file(std::path::Path::new(p))?,
        None => Text::shakespeare()?,
    };
    let (train_tokens, val) = text.split(0.1, a.cfg.context + 1)?;
    let h0 = unigram_entropy(train_tokens.ids(), text.vocab());
    let cfg = GptConfig { vocab: text.vocab(), ..a.cfg };
    eprintln!(
        "data: {} ({} characters, vocabulary {}; unigram entropy {h0:.3} nats) | gpt {} blocks x width {}, {} heads, context {} ({} GEMM layers) | {} steps of {} sequences, lr {}",
        text.name(),
        text.ids().len(),
        text.vocab(),
        cfg.layers,
        cfg.width,
        cfg.heads,
        cfg.context,
        cfg.gemm_layers(),
        a.steps,
        a.batch,
        lr(&a)
    );
    let mut runs = Vec::new();
    for s in &a.schemes {
        let r = train(&gpu, &a, &text, &train_tokens, &val, s)?;
        eprintln!(
            "{}: validation loss {:.4} nats/char ({:.1}% next-character accuracy), train loss {:.4}, {:.1} ms/step, {:.0} tokens/s",
            r.scheme,
            r.val_loss,
            r.val_acc * 100.0,
            r.train_loss,
            r.ms_per_step,
            r.tokens_per_s
        );
        eprintln!("sample ({}):\n{}\n", r.scheme, r.sample);
        runs.push(r);
    }
    if runs.len() > 1 {
        let base = runs[0].val_loss;
        println!("| scheme | validation loss (nats/char) | vs {} | ms/step | tokens/s |", runs[0].scheme);
        println!("|---|---|---|---|---|");
        for r in &runs {
            println!(
                "| {} | {:.4} | {:+.2}% | {:.1} | {:.0} |",
                r.scheme,
                r.val_loss,
                (r.val_loss / base - 1.0) * 100.0,
                r.ms_per_step,
                r.tokens_per_s
            );
        }
    }
    if a.json {
        let rows: Vec<_> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "scheme": r.scheme, "val_loss": r.val_loss, "val_acc": r.val_acc,
                    "train_loss": r.train_loss, "ms_per_step": r.ms_per_step,
                    "tokens_per_s": r.tokens_per_s, "curve": r.curve,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "model": "gpt", "layers": cfg.layers, "width": cfg.width, "heads": cfg.heads,
                "context": cfg.context, "vocab": cfg.vocab, "batch": a.batch, "steps": a.steps,
                "lr": lr(&a), "optimizer": format!("{:?}", a.optimizer), "seed": a.seed, "data": text.name(), "unigram_entropy": h0,
                "adapter": gpu.report().name, "runs": rows,
            })
        );
    }
    Ok(())
}

fn main() {
    cli::exit_on_error(run());
}
