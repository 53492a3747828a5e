//! Data-parallel training over MPI, two ranks on one machine (lavapipe in CI). Built and run by
//! `cargo test --release --features mpi` (needs Open MPI: `.ci/install-mpi`): this binary starts
//! itself under `mpirun -np 2` for each scenario and checks how that run ended.
//!
//! - `checks`: a mismatched configuration is an error on every rank; two ranks at batch 64 with
//!   the fp32 exchange give the weights of one trainer at batch 128 (within [`FP32_BOUND`]);
//!   with every codec the replicas stay bit-identical over many quantized steps, a CNN's once
//!   its batch-norm statistics are averaged (and a replica changed by hand is caught); a NaN on one rank is an error on both, nothing updated.
//! - `die`: rank 1 exits mid-run without a word; `mpirun` must end the job (no hang), with a
//!   failure status.

mod common;
use common::gpu;
use lowbit::dist::{mpi::Replica, Exchange};
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use mpi::traits::Communicator;
use std::process::Command;
use std::time::{Duration, Instant};

const GLOBAL: usize = 128;
const LR: f32 = 0.1;
/// fp32, two ranks vs one trainer: the batch's gradient is summed as two halves of 64 and
/// averaged instead of one sum over 128, an f32 reassociation of about 2⁻²³ relative per
/// gradient value; after 5 steps at lr 0.1 the weights (|w| < 1) differ by well under 1e-5.
const FP32_BOUND: f32 = 1e-5;

fn trainer(scheme: &str, batch: usize, seed: u32) -> Trainer {
    let opt = OptimConfig { lr: LR, batch, ..Default::default() };
    let spec = ModelSpec::mlp((8, 8, 1), &[32], 10);
    Trainer::new(gpu(), spec, TrainScheme::preset(scheme).unwrap(), opt, seed).unwrap()
}

fn global_batch(step: u32) -> (Vec<f32>, Vec<u32>) {
    let x = common::data(GLOBAL * 64, 1000 + step, false);
    let y = (0..GLOBAL as u32).map(|i| lowbit::rng::draw(lowbit::rng::key(step, 3), i) % 10).collect();
    (x, y)
}

fn checks(world: impl Fn() -> mpi::topology::SimpleCommunicator) {
    let rank = world().rank() as u32;
    let say = |s: String| eprintln!("rank {rank}: {s}");

    // A rank with another seed: every rank hears of it.
    let e = Replica::new(world(), trainer("fp32", GLOBAL / 2, 1 + rank), Exchange::FP32, GLOBAL).err();
    let msg = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("rank 1's configuration"), "rank {rank}: mismatch not reported: '{msg}'");
    assert!(Replica::new(world(), trainer("fp32", 32, 1), Exchange::FP32, GLOBAL).is_err(), "wrong local batch");
    say("mismatched configurations refused".into());

    // fp32 exchange: two halves make the whole batch.
    let mut r = Replica::new(world(), trainer("fp32", GLOBAL / 2, 1), Exchange::FP32, GLOBAL).unwrap();
    let mut one = trainer("fp32", GLOBAL, 1);
    for s in 0..5 {
        let (x, y) = global_batch(s);
        let st = r.step(&x, &y, LR).unwrap();
        let lone = one.step(&x, &y, LR).unwrap();
        assert!(st.loss.is_finite() && lone.loss.is_finite());
    }
    one.flush().unwrap();
    let mut worst = 0f32;
    for ((n, _, a), (_, _, b)) in r.trainer().parameters().unwrap().iter().zip(one.parameters().unwrap()) {
        for (a, b) in a.iter().zip(&b) {
            worst = worst.max((a - b).abs());
        }
        assert!(worst <= FP32_BOUND, "rank {rank} {n}: two ranks vs one trainer differ by {worst:e}");
    }
    r.check_replicas().unwrap();
    say(format!("fp32 exchange = one trainer at batch {GLOBAL} within {worst:e}"));

    // Every codec, quantized training: replicas stay bit-identical.
    for ex in ["fp32", "int8", "log4", "int8+ef", "log4+ef"] {
        let exchange = Exchange::parse(ex).unwrap();
        let mut r = Replica::new(world(), trainer("luq4", GLOBAL / 2, 5), exchange, GLOBAL).unwrap();
        for s in 0..20 {
            let (x, y) = global_batch(s);
            r.step(&x, &y, LR).unwrap();
        }
        r.check_replicas().unwrap();
        say(format!("{ex}: replicas bit-identical after 20 steps, {} bytes sent per step", r.bytes_per_step()));
    }

    // Batch norm: each rank's running statistics follow its own half of the batch until
    // check_replicas averages them.
    let opt = OptimConfig { lr: LR, batch: 8, ..Default::default() };
    let cnn = Trainer::new(gpu(), common::tiny_cnn(), TrainScheme::preset("int8").unwrap(), opt, 2).unwrap();
    let mut r = Replica::new(world(), cnn, Exchange::parse("log4").unwrap(), 16).unwrap();
    for s in 0..5 {
        let x = common::data(16 * 72, 50 + s, false);
        let y: Vec<u32> = (0..16).map(|i| (i + s) % 3).collect();
        r.step(&x, &y, LR).unwrap();
    }
    r.check_replicas().unwrap();
    say("a CNN's replicas agree once their batch-norm statistics are averaged".into());

    // A replica changed by hand is caught.
    let mut r =
        Replica::new(world(), trainer("int8", GLOBAL / 2, 5), Exchange::parse("int8").unwrap(), GLOBAL).unwrap();
    let (x, y) = global_batch(0);
    r.step(&x, &y, LR).unwrap();
    if rank == 1 {
        let (name, _, mut v) = r.trainer().parameters().unwrap().remove(0);
        v[0] += 1e-3;
        r.trainer_mut().set_parameter(&name, &v).unwrap();
    }
    let e = r.check_replicas().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("diverged"), "rank {rank}: divergence not reported: '{e}'");
    say("a diverged replica is reported".into());

    // A NaN in rank 1's half of the batch: both ranks fail the step, nothing is updated, and
    // the run refuses to go on.
    let mut r =
        Replica::new(world(), trainer("int8", GLOBAL / 2, 5), Exchange::parse("log4").unwrap(), GLOBAL).unwrap();
    let before = r.trainer().parameters().unwrap();
    let (mut x, y) = global_batch(0);
    x[GLOBAL / 2 * 64 + 7] = f32::NAN;
    let e = r.step(&x, &y, LR).err();
    assert!(matches!(e, Some(lowbit::Error::NonFinite { .. })), "rank {rank}: {e:?}");
    assert_eq!(r.trainer().parameters().unwrap(), before, "rank {rank}: a failed step changed parameters");
    let (x, y) = global_batch(1);
    assert!(r.step(&x, &y, LR).is_err(), "rank {rank}: a broken run went on");
    say("a NaN on rank 1 failed the step on every rank".into());
    println!("rank {rank}: all checks passed");
}

fn die(world: mpi::topology::SimpleCommunicator) {
    let rank = world.rank();
    let mut r = Replica::new(world, trainer("fp32", GLOBAL / 2, 1), Exchange::FP32, GLOBAL).unwrap();
    for s in 0..3 {
        if rank == 1 && s == 1 {
            eprintln!("rank 1: exiting without a word");
            std::process::exit(3);
        }
        let (x, y) = global_batch(s);
        r.step(&x, &y, LR).unwrap();
    }
}

/// Runs this binary's `scenario` on two ranks; `(success, seconds, output)`.
fn mpirun(scenario: &str) -> (bool, f64, String) {
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();
    let mut child = Command::new("mpirun")
        .args(["--oversubscribe", "--allow-run-as-root", "-np", "2"])
        .arg(&exe)
        .arg(scenario)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("mpirun could not be started ({e}): install Open MPI (.ci/install-mpi)"));
    // A hang is a failure: give the run 10 minutes.
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            child.kill().ok();
            panic!("mpirun {scenario}: no end after 10 minutes (a hang)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), t0.elapsed().as_secs_f64(), text)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("checks") => {
            let universe = mpi::initialize().expect("MPI initializes");
            checks(|| universe.world());
        }
        Some("die") => {
            let universe = mpi::initialize().expect("MPI initializes");
            die(universe.world());
        }
        // cargo test passes its own flags (or none): run the scenarios under mpirun.
        _ => {
            let (ok, secs, out) = mpirun("checks");
            eprintln!("{out}");
            assert!(ok, "mpirun checks failed after {secs:.0} s");
            assert_eq!(out.matches("all checks passed").count(), 2, "both ranks must pass");
            let (ok, secs, out) = mpirun("die");
            eprintln!("{out}");
            assert!(!ok, "a run with a dead rank ended successfully");
            eprintln!("test dist: checks passed; a dead rank ended the job in {secs:.1} s");
        }
    }
}
