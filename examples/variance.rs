//! The variance meter: bias and variance that each gradient quantizer adds to every weight
//! gradient, beside the gradient's own minibatch variance (Chen et al. 2020).
//!
//! cargo run --release --example variance -- [--data DIR] [--model mlp|cnn|resnet8|resnet20] [--bits 4|8]
//!     [--samples N] [--smp K] [--rot B] [--batches N] [--pretrain STEPS] [--seed S] [--json]
//!
//! The model is first trained for `--pretrain` fp32 steps (gradients at initialization are not
//! the ones training spends its time on), then measured on one batch of 128 with `--samples`
//! draws per quantizer; the minibatch variance comes from `--batches` batches.

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::kernels::tinyscript::TinyScript;
use lowbit::nn::variance::{level_quantizer_variance, measure, standard_quantizers, Batch};
use lowbit::nn::{cosine_lr, ForwardPrecision, ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::tinyscript::LevelTable;
use lowbit::Gpu;
use serde_json::json;

struct Args {
    data: Option<String>,
    model: String,
    bits: u32,
    samples: usize,
    smp: u32,
    rot: u32,
    batches: usize,
    pretrain: usize,
    seed: u32,
    json: bool,
}

const USAGE: &str = "variance [--data DIR] [--model mlp|cnn|resnet8|resnet20] [--bits 4|8] [--samples N] [--smp K] [--rot B] [--batches N] [--pretrain STEPS] [--seed S] [--json]";

fn usage(msg: &str) -> ! {
    cli::fail(USAGE, msg)
}

fn args() -> Args {
    let mut a = Args {
        data: None,
        model: "mlp".into(),
        bits: 4,
        samples: 32,
        smp: 4,
        rot: 16,
        batches: 8,
        pretrain: 200,
        seed: 1,
        json: false,
    };
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--data" => a.data = Some(f.value("--data")),
            "--model" => a.model = f.value("--model"),
            "--bits" => a.bits = f.whole_u32("--bits"),
            "--samples" => a.samples = f.whole("--samples"),
            "--smp" => a.smp = f.whole_u32("--smp"),
            "--rot" => a.rot = f.whole_u32("--rot"),
            "--batches" => a.batches = f.whole("--batches"),
            "--pretrain" => a.pretrain = f.whole("--pretrain"),
            "--seed" => a.seed = f.whole_u32("--seed"),
            "--json" => a.json = true,
            "-h" | "--help" => usage("Measure gradient quantizers' bias and variance."),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

fn main() {
    cli::exit_on_error(run());
}

fn run() -> lowbit::Result<()> {
    let a = args();
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let (train, _) = cli::mnist(a.data.as_deref(), None)?;
    let spec = ModelSpec::by_name(&a.model, train.shape(), train.classes())?;
    let batch = 128;
    let opt = OptimConfig { lr: cli::default_lr(&a.model), batch, ..Default::default() };
    let mut t = Trainer::new(&gpu, spec.clone(), TrainScheme::preset("fp32")?, opt, a.seed)?;
    let order = train.order(a.seed, 0);
    let mut chunks = order.chunks_exact(batch).cycle();
    let bar = cli::bar(a.pretrain, "fp32 pre-training".into());
    for step in 0..a.pretrain {
        let (x, labels) = train.gather(chunks.next().expect("cycle"))?;
        t.step(&x, &labels, cosine_lr(opt.lr, step, 2 * a.pretrain))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let params = t.parameters()?;
    let batches: Vec<Batch> =
        (0..a.batches.max(2)).map(|_| train.gather(chunks.next().expect("cycle"))).collect::<lowbit::Result<_>>()?;
    let qs = standard_quantizers(a.bits, ForwardPrecision::Int8, a.smp, a.rot)?;
    let total = batches.len() + qs.len() * a.samples;
    let bar = cli::bar(total, "gradients".into());
    let rows = measure(&gpu, &spec, &params, ForwardPrecision::Int8, &batches, &qs, a.samples, |d, _| {
        bar.set_position(d as u64)
    })?;
    bar.finish_and_clear();
    eprintln!(
        "{} after {} fp32 steps; forward int8; {}-bit gradients, {} samples per quantizer on one batch of {batch}; \
         minibatch variance over {} batches",
        a.model,
        a.pretrain,
        a.bits,
        a.samples,
        batches.len()
    );
    println!("{:<18} {:<20} {:>12} {:>12} {:>12}", "layer", "quantizer", "bias", "variance", "rel_variance");
    for r in &rows {
        println!(
            "{:<18} {:<20} {:>12.4e} {:>12.4e} {:>12.4e}",
            r.layer, r.quantizer, r.bias, r.variance, r.rel_variance
        );
    }
    // TinyScript against uniform levels at equal bits and with one bit fewer than uniform, on
    // the real weight-gradient tensors of the measured batch, one scale per row in every case.
    let ts = TinyScript::new(&gpu)?;
    let grads = t.gradients(&batches[0].0, &batches[0].1)?;
    let mut ts_rows = Vec::new();
    for (name, shape, g) in grads.iter().filter(|p| p.1.len() == 2) {
        let (r, c) = (shape[0], shape[1]);
        let gb = lowbit::GpuBuffer::from_slice(&gpu, "gradient", g)?;
        let mb = rows.iter().find(|x| &x.layer == name).map_or(f64::NAN, |x| x.minibatch_variance);
        // TinyScript at b − 1 and b bits, uniform levels at b and b + 1 (within 2..=8).
        let mut candidates = Vec::new();
        for bits in [a.bits - 1, a.bits].into_iter().filter(|b| (2..=8).contains(b)) {
            candidates.push(("tinyscript", bits, ts.fit(&gpu, &gb, r, c, bits)?.1));
        }
        for bits in [a.bits, a.bits + 1].into_iter().filter(|b| (2..=8).contains(b)) {
            candidates.push(("uniform-levels", bits, LevelTable::uniform(bits)?));
        }
        for (q, bits, table) in candidates {
            let (bias, var) = level_quantizer_variance(&gpu, &ts, g, r, c, &table, a.samples)?;
            ts_rows.push((name.clone(), q, bits, bias, var, var / mb));
        }
    }
    println!();
    println!("weight-gradient tensors quantized directly (one scale per row):");
    println!(
        "{:<18} {:<20} {:>4} {:>12} {:>12} {:>12}",
        "layer", "quantizer", "bits", "bias", "variance", "rel_variance"
    );
    for (l, q, b, bias, var, rel) in &ts_rows {
        println!("{l:<18} {q:<20} {b:>4} {bias:>12.4e} {var:>12.4e} {rel:>12.4e}");
    }
    if a.json {
        for (l, q, b, bias, var, rel) in &ts_rows {
            println!(
                "{}",
                json!({"layer": l, "quantizer": q, "bits": b, "bias": bias, "variance": var, "rel_variance": rel,
                       "target": "weight_gradient_tensor", "model": a.model, "samples": a.samples,
                       "adapter": gpu.report().name})
            );
        }
        for r in &rows {
            println!(
                "{}",
                json!({"layer": r.layer, "quantizer": r.quantizer, "bits": r.bits, "bias": r.bias,
                       "variance": r.variance, "rel_variance": r.rel_variance, "grad_norm2": r.grad_norm2,
                       "minibatch_variance": r.minibatch_variance, "model": a.model, "samples": a.samples,
                       "adapter": gpu.report().name})
            );
        }
    }
    Ok(())
}
