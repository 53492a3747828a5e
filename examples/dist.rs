//! Data-parallel training of MNIST over MPI, gradients exchanged in low precision.
//!
//! cargo build --release --features mpi --example dist
//! mpirun -np 2 target/release/examples/dist -- [--data DIR] [--model mlp|cnn] [--scheme S]
//!     [--exchange fp32|int8|log4|int8+ef|log4+ef] [--epochs N] [--batch B] [--seed S]
//!     [--save FILE.safetensors] [--json]
//!
//! Every rank loads the data and builds the same model from the same seed; each step, rank r
//! trains on its contiguous part of the global batch (`--batch`, default 128, split evenly;
//! the global batch and its order do not depend on the number of ranks), the ranks exchange
//! their gradients in the chosen encoding and apply the same update. Rank 0 shows progress,
//! checks at every epoch's end that the replicas are bit-identical (after averaging batch-norm
//! statistics), evaluates, prints the result and (`--save`) writes the checkpoint; an error on any rank ends every rank. Pick
//! each rank's GPU with `LOWBIT_ADAPTER` (for instance through `mpirun -x`); see the README
//! for a two-machine hostfile.

#[path = "shared/cli.rs"]
#[allow(dead_code)] // the helpers the other examples take
mod cli;

use lowbit::dist::{mpi::Replica, Exchange};
use lowbit::nn::{cosine_lr, ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::Gpu;
use mpi::traits::Communicator;
use std::time::Instant;

const USAGE: &str = "mpirun -np N dist [--data DIR] [--model mlp|cnn] [--scheme S] [--exchange fp32|int8|log4|int8+ef|log4+ef] [--epochs N] [--batch B] [--seed S] [--save FILE.safetensors] [--json]";

struct Args {
    data: Option<String>,
    model: String,
    scheme: String,
    exchange: Exchange,
    epochs: u32,
    batch: usize,
    seed: u32,
    save: Option<String>,
    json: bool,
}

fn parse() -> Args {
    let mut a = Args {
        data: None,
        model: "mlp".into(),
        scheme: "fp32".into(),
        exchange: Exchange::FP32,
        epochs: 1,
        batch: 128,
        seed: 1,
        save: None,
        json: false,
    };
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--data" => a.data = Some(f.value("--data")),
            "--model" => a.model = f.value("--model"),
            "--scheme" => a.scheme = f.value("--scheme"),
            "--exchange" => {
                a.exchange =
                    Exchange::parse(&f.value("--exchange")).unwrap_or_else(|e| cli::fail(USAGE, &e.to_string()))
            }
            "--epochs" => a.epochs = f.count("--epochs"),
            "--batch" => a.batch = f.whole("--batch"),
            "--seed" => a.seed = f.whole_u32("--seed"),
            "--save" => a.save = Some(f.value("--save")),
            "--json" => a.json = true,
            // mpirun passes a lone "--" through when the command line has one.
            "--" => {}
            other => cli::fail(USAGE, &format!("unknown flag {other}")),
        }
    }
    a
}

fn main() {
    let universe = mpi::initialize().unwrap_or_else(|| {
        eprintln!("error: MPI was already initialized");
        std::process::exit(1)
    });
    let world = universe.world();
    let (rank, ranks) = (world.rank(), world.size());
    if let Err(e) = run(world, parse()) {
        eprintln!("rank {rank} of {ranks}: error: {e}");
        // The other ranks may be waiting in an exchange: end them all.
        universe.world().abort(1);
    }
}

fn run(world: mpi::topology::SimpleCommunicator, a: Args) -> lowbit::Result<()> {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let lead = rank == 0;
    let gpu = Gpu::new()?;
    eprintln!("rank {rank} of {ranks}: {}", gpu.report());
    let (train, test) = cli::load("mnist", a.data.as_deref())?;
    let spec = ModelSpec::by_name(&a.model, train.shape(), train.classes())?;
    if a.batch == 0 || !a.batch.is_multiple_of(ranks) {
        return Err(lowbit::Error::InvalidArgument(format!("--batch {} does not split over {ranks} ranks", a.batch)));
    }
    let opt = OptimConfig { lr: cli::default_lr(&a.model), batch: a.batch / ranks, ..Default::default() };
    let trainer = Trainer::new(&gpu, spec, TrainScheme::preset(&a.scheme)?, opt, a.seed)?;
    let mut r = Replica::new(world, trainer, a.exchange, a.batch)?;
    let steps = train.len() / a.batch;
    let total = steps * a.epochs as usize;
    let fp32_bytes = 4 * r.codec().values() + 16;
    if lead {
        eprintln!(
            "{} training / {} test images, {} | scheme {} | exchange {} | {ranks} ranks x {} of a global batch of {} | {} bytes sent per rank per step ({:.3} of fp32's {fp32_bytes})",
            train.len(),
            test.len(),
            a.model,
            a.scheme,
            a.exchange,
            a.batch / ranks,
            a.batch,
            r.bytes_per_step(),
            r.bytes_per_step() as f64 / fp32_bytes as f64
        );
    }
    let (mut acc, mut secs, mut last_loss) = (0.0, 0.0, 0.0);
    for epoch in 0..a.epochs {
        let bar = if lead {
            cli::bar(steps, format!("epoch {}/{}", epoch + 1, a.epochs))
        } else {
            indicatif::ProgressBar::hidden()
        };
        let order = train.order(a.seed, epoch);
        let (mut loss_sum, mut right) = (0.0, 0u64);
        let t0 = Instant::now();
        for (i, idx) in order.chunks_exact(a.batch).enumerate() {
            let (x, y) = train.gather(idx)?;
            let s = r.step(&x, &y, cosine_lr(opt.lr, epoch as usize * steps + i, total))?;
            loss_sum += s.loss as f64;
            right += s.correct as u64;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", s.loss));
        }
        secs += t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        r.check_replicas()?;
        last_loss = loss_sum / steps as f64;
        if lead {
            acc = r.trainer().evaluate(&test)?.0;
            eprintln!(
                "epoch {}/{}: train loss {last_loss:.4}, train acc {:.2}%, test acc {:.2}% (replicas bit-identical)",
                epoch + 1,
                a.epochs,
                100.0 * right as f64 / (steps * a.batch) as f64,
                100.0 * acc
            );
        }
    }
    if let (true, Some(path)) = (lead, &a.save) {
        r.trainer().save(path)?;
        eprintln!("saved {path}");
    }
    if lead && a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": a.model, "scheme": a.scheme, "exchange": a.exchange.to_string(), "ranks": ranks,
                "global_batch": a.batch, "epochs": a.epochs, "train_images": train.len(), "test_acc": acc,
                "final_loss": last_loss, "ms_per_step": secs * 1e3 / total.max(1) as f64,
                "bytes_per_step": r.bytes_per_step(), "fp32_bytes_per_step": fp32_bytes,
                "adapter": gpu.report().name, "seed": a.seed,
            })
        );
    }
    Ok(())
}
