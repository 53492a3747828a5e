//! Where a training step's time goes. Per scheme, two runs of `--steps` steps after a warm-up:
//! 1. unprofiled, as training runs them: wall time per step, the host's split (recording, which
//!    includes uploading the batch; submitting; waiting for the loss read-back), and what a step
//!    records and creates (dispatches, compute passes, buffers / uniform buffers / bind groups
//!    created — none once the step's plan exists), and the scratch arena its plan lays the step's
//!    temporaries out in (`Trainer::arena_bytes`); with `--rounds R` (R > 1) these steps run R
//!    times, the schemes taking turns (each round starting one scheme later), so a machine whose
//!    speed drifts (lavapipe's spread reaches 2× between runs) slows every scheme alike: the
//!    wall time is the median of the rounds', and each scheme's time over the first scheme's is
//!    the median of the rounds' ratios, with their range;
//! 2. profiled (timestamp queries around every dispatch, so each gets a compute pass of its own,
//!    see `lowbit::profile`; the steps in runs of as many as one profile's `MAX_PASSES` passes
//!    hold, so every step is timed): GPU time per kernel, and with `--dispatches` every dispatch
//!    of the step in the order the step records it (kernel, workgroups, GPU time: the mean over
//!    the profiled steps, which replay one plan, so the same dispatches in the same order).
//!
//! Where the `Gpu` tunes (`LOWBIT_TUNE`, on by default on a GPU), the warm-up's plan build tunes
//! the integer GEMMs' shape classes the step meets; the line says how many each scheme's trainer
//! tuned (the schemes share the kernels, so a class tuned for one scheme is not tuned again), and
//! `--tunings` lists each class's paths with their times and the one kept.
//!
//! cargo run --release --example profile_step -- [--model mlp|cnn|resnet8|resnet20|gpt] [--schemes a,b,...] [--steps N]
//!     [--rounds R] [--read-every K] [--batch B] [--hidden N] [--layers L --width C --heads H --context T] [--dispatches]
//!     [--tunings] [--json]
//!
//! The image models run on the embedded MNIST (batch 128 by default); `gpt` on the embedded
//! Shakespeare (16 sequences by default, the gpt example's model: `--layers`, `--width`,
//! `--heads`, `--context`).

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::data::mnist::Mnist;
use lowbit::data::text::Text;
use lowbit::nn::{GptConfig, ModelSpec, OptimConfig, StepStats, TrainScheme, Trainer};
use lowbit::profile::{DispatchTime, KernelTime, Profile, MAX_PASSES};
use lowbit::Gpu;
use serde_json::json;
use std::time::Instant;

const USAGE: &str = "profile_step [--model mlp|cnn|resnet8|resnet20|gpt] [--schemes a,b,...] [--steps N] [--rounds R] [--read-every K] [--batch B] [--hidden N] [--layers L --width C --heads H --context T (gpt)] [--dispatches] [--tunings] [--json]";

fn main() {
    cli::exit_on_error(run());
}

fn run() -> lowbit::Result<()> {
    let (mut model, mut schemes, mut steps, mut json_out) =
        ("mlp".to_string(), "fp32,int8,luq4".to_string(), 10usize, false);
    let (mut read_every, mut batch, mut hidden, mut list, mut rounds) = (1usize, None, None, false, 1usize);
    let mut tunings = false;
    let mut gpt = GptConfig { vocab: 0, context: 64, width: 64, heads: 4, layers: 2 };
    let mut f = cli::Flags::new(USAGE);
    while let Some(a) = f.next() {
        match a.as_str() {
            "--model" => model = f.value("--model"),
            "--schemes" => schemes = f.value("--schemes"),
            "--steps" => steps = f.whole("--steps"),
            "--rounds" => rounds = f.whole("--rounds"),
            "--read-every" => read_every = f.whole("--read-every"),
            "--batch" => batch = Some(f.whole("--batch")),
            "--layers" => gpt.layers = f.whole("--layers"),
            "--width" => gpt.width = f.whole("--width"),
            "--heads" => gpt.heads = f.whole("--heads"),
            "--context" => gpt.context = f.whole("--context"),
            "--hidden" => hidden = Some(f.whole("--hidden")),
            "--json" => json_out = true,
            "--dispatches" => list = true,
            "--tunings" => tunings = true,
            "-h" | "--help" => cli::fail(USAGE, "Where a training step's time goes."),
            other => cli::fail(USAGE, &format!("unknown argument {other}")),
        }
    }
    // The GPT trains on 16 sequences by default (as the gpt example), the rest on 128 images.
    let batch = batch.unwrap_or(if model == "gpt" { 16 } else { 128 });
    if steps == 0 || batch == 0 || rounds == 0 {
        cli::fail(USAGE, "--steps, --rounds and --batch must be at least 1");
    }
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let opt = OptimConfig { batch, ..Default::default() };
    let (name, graph, batches) = if model == "gpt" {
        let text = Text::shakespeare()?;
        let (train, _) = text.split(0.1, gpt.context + 1)?;
        let cfg = GptConfig { vocab: text.vocab(), ..gpt };
        let batches: Vec<_> = (0..steps as u32 + 3)
            .map(|i| train.batch(&train.random_starts(1, i, batch, cfg.context), cfg.context))
            .collect::<lowbit::Result<_>>()?;
        let name = format!("gpt-{}x{}-ctx{}", cfg.layers, cfg.width, cfg.context);
        (name, cfg.graph()?, batches)
    } else {
        let mnist = Mnist::embedded()?;
        let spec = match hidden {
            Some(h) => ModelSpec::mlp(mnist.train.shape(), &[h, h], mnist.train.classes()),
            None => ModelSpec::by_name(&model, mnist.train.shape(), mnist.train.classes())?,
        };
        let order = mnist.train.order(1, 0);
        let batches: Vec<_> =
            order.chunks_exact(batch).take(steps + 3).map(|b| mnist.train.gather(b)).collect::<lowbit::Result<_>>()?;
        if batches.len() < steps + 3 {
            cli::fail(
                USAGE,
                &format!("the embedded MNIST has {} batches of {batch}: use fewer --steps", batches.len()),
            );
        }
        (hidden.map_or(model.clone(), |h| format!("mlp-{h}")), spec.to_graph()?, batches)
    };
    let schemes: Vec<&str> = schemes.split(',').collect();
    // Every scheme's trainer built and warmed up first, then the unprofiled rounds, the schemes
    // taking turns.
    let mut trainers = Vec::with_capacity(schemes.len());
    for &scheme in &schemes {
        let mut t = Trainer::from_graph(&gpu, graph.clone(), TrainScheme::preset(scheme)?, opt, 1)?;
        t.set_read_every(read_every)?;
        // Warm-up: the plan is built and three steps run, and on a GPU at least 1.5 s of them — a
        // freshly built pipeline ran 2–5× below its steady speed for its first half-second or so
        // on the H100's driver.
        let warm_for = if gpu.is_cpu() { 0.0 } else { 1.5 };
        let start = Instant::now();
        let mut i = 0;
        while i < 3 || start.elapsed().as_secs_f64() < warm_for {
            let (x, l) = &batches[i % 3];
            t.step(x, l, 0.01)?;
            i += 1;
        }
        t.flush()?;
        trainers.push(t);
    }
    // 1. As training runs: per scheme, the wall seconds per step of each round, and the host's
    // split and counts summed over every round's steps.
    let mut walls = vec![Vec::with_capacity(rounds); schemes.len()];
    let mut sums = vec![(StepStats::default(), lowbit::gpu::Creations::default()); schemes.len()];
    // Each scheme's most dispatches in one step: how many steps one profile holds (below).
    let mut most = vec![0u64; schemes.len()];
    for round in 0..rounds {
        for k in 0..schemes.len() {
            let i = (round + k) % schemes.len();
            let (t, (sum, created), most) = (&mut trainers[i], &mut sums[i], &mut most[i]);
            let t0 = Instant::now();
            for (x, l) in &batches[3..] {
                let s = t.step(x, l, 0.01)?;
                sum.host.record += s.host.record;
                sum.host.submit += s.host.submit;
                sum.host.wait += s.host.wait;
                sum.counts.dispatches += s.counts.dispatches;
                *most = (*most).max(s.counts.dispatches);
                sum.counts.passes += s.counts.passes;
                created.buffers += s.counts.created.buffers;
                created.uniforms += s.counts.created.uniforms;
                created.bind_groups += s.counts.created.bind_groups;
            }
            t.flush()?;
            walls[i].push(t0.elapsed().as_secs_f64() / steps as f64);
        }
    }
    for (i, (&scheme, t)) in schemes.iter().zip(&mut trainers).enumerate() {
        let (sum, created) = &sums[i];
        // Per step, over every round's steps.
        let n_all = (steps * rounds) as f64;
        let n = steps as f64;
        let wall = median(&walls[i]);
        // The rounds' ratios to the first scheme's time in the same round.
        let ratios: Vec<f64> = walls[i].iter().zip(&walls[0]).map(|(w, w0)| w / w0).collect();
        let (record, submit, wait) = (sum.host.record / n_all, sum.host.submit / n_all, sum.host.wait / n_all);
        let dispatches = sum.counts.dispatches as f64 / n_all;
        let arena = t.arena_bytes();
        let passes = sum.counts.passes as f64 / n_all;
        // 2. Profiled: GPU time per kernel.
        let (timed, dropped) = if gpu.report().timestamps {
            // A profile holds MAX_PASSES passes, a pass per dispatch: the steps are profiled in
            // runs of as many as one holds, so every step is timed (one profile of 2048 left the
            // GPT's 20 steps of 112–160 dispatches 8–36% short, its per-step times too low).
            let run = (MAX_PASSES as u64 / most[i].max(1)).max(1) as usize;
            let (mut timed, mut dropped) = (Vec::new(), 0);
            for chunk in batches[3..].chunks(run) {
                let profile = Profile::start(&gpu, MAX_PASSES)?;
                for (x, l) in chunk {
                    t.step(x, l, 0.01)?;
                }
                t.flush()?;
                let (d, n) = profile.finish_dispatches()?;
                timed.extend(d);
                dropped += n;
            }
            if dropped > 0 {
                eprintln!(
                    "({dropped} passes did not fit the profile and are not counted: a step of more than \
                     {MAX_PASSES} dispatches; the GPU times below leave them out)"
                );
            }
            (timed, dropped)
        } else {
            (Vec::new(), 0)
        };
        let kernels = KernelTime::by_kernel(&timed);
        let gpu_total: f64 = kernels.iter().map(|k| k.seconds).sum::<f64>() / n;
        println!(
            "{name} {scheme}: wall {:.3} ms/step; host record {:.1} µs ({:.2} µs per dispatch), submit {:.1} µs, wait {:.3} ms; \
             {dispatches:.0} dispatches in {passes:.1} passes; created per step: {:.1} buffers, {:.1} uniforms, {:.1} bind groups; \
             scratch arena {:.1} MiB; GPU (sum of profiled kernels) {:.3} ms/step{}",
            1e3 * wall,
            1e6 * record,
            1e6 * record / dispatches.max(1.0),
            1e6 * submit,
            1e3 * wait,
            created.buffers as f64 / n_all,
            created.uniforms as f64 / n_all,
            created.bind_groups as f64 / n_all,
            arena as f64 / (1u64 << 20) as f64,
            1e3 * gpu_total,
            match gpu.tunes() {
                true => format!("; integer GEMM shape classes tuned: {}", t.tuned_classes()),
                false => String::new(),
            },
        );
        if rounds > 1 {
            let (lo, hi) = range(&walls[i]);
            let mut line = format!(
                "  wall over {rounds} rounds: median {:.3} ms/step ({:.3}–{:.3})",
                1e3 * wall,
                1e3 * lo,
                1e3 * hi
            );
            if i > 0 {
                let (rlo, rhi) = range(&ratios);
                line += &format!(
                    "; {:.3}× {}'s time in the same round (median of the rounds' ratios; {rlo:.3}–{rhi:.3})",
                    median(&ratios),
                    schemes[0]
                );
            }
            println!("{line}");
        }
        for k in &kernels {
            println!(
                "  {:<20} {:>9.3} ms/step {:>6.1} dispatches/step {:>5.1}%  workgroups: fewest {}, mean {:.0}",
                k.name,
                1e3 * k.seconds / n,
                k.dispatches as f64 / n,
                100.0 * k.seconds / n / gpu_total.max(1e-12),
                k.min_workgroups,
                k.workgroups as f64 / k.dispatches.max(1) as f64
            );
        }
        // (Only where every pass was timed: a list cut short could line its steps up wrongly.)
        let positions = if list && dropped == 0 { step_positions(&timed, steps) } else { None };
        if list && gpu.report().timestamps {
            match &positions {
                Some(ps) => {
                    println!("  dispatches in step order (GPU time: mean of {steps} profiled steps):");
                    for (i, (kernel, workgroups, secs)) in ps.iter().enumerate() {
                        println!(
                            "    #{i:<4} {kernel:<26} {workgroups:>8} workgroups {:>9.3} ms {:>5.1}%",
                            1e3 * secs,
                            100.0 * secs / gpu_total.max(1e-12)
                        );
                    }
                }
                None => eprintln!(
                    "(the profiled steps did not record the same dispatches, or not all were timed: no per-dispatch list)"
                ),
            }
        }
        if json_out {
            println!(
                "{}",
                json!({"model": name, "scheme": scheme, "batch": batch, "read_every": read_every, "steps": steps,
                       "rounds": rounds, "wall_ms_per_step": 1e3 * wall,
                       "wall_ms_per_step_rounds": walls[i].iter().map(|w| 1e3 * w).collect::<Vec<_>>(),
                       "wall_vs_first_scheme": median(&ratios), "host_record_us": 1e6 * record, "host_submit_us": 1e6 * submit,
                       "host_wait_us": 1e6 * wait, "record_us_per_dispatch": 1e6 * record / dispatches.max(1.0),
                       "dispatches": dispatches, "compute_passes": passes, "tuned_classes": t.tuned_classes(),
                       "buffers_created": created.buffers as f64 / n_all, "uniforms_created": created.uniforms as f64 / n_all,
                       "bind_groups_created": created.bind_groups as f64 / n_all, "arena_bytes": arena,
                       "gpu_ms_per_step": if kernels.is_empty() { serde_json::Value::Null } else { json!(1e3 * gpu_total) },
                       "passes_untimed": dropped,
                       "kernels": kernels.iter().map(|k| json!({"kernel": k.name, "ms_per_step": 1e3 * k.seconds / n,
                                                               "dispatches_per_step": k.dispatches as f64 / n,
                                                               "min_workgroups": k.min_workgroups,
                                                               "mean_workgroups": k.workgroups as f64 / k.dispatches.max(1) as f64})).collect::<Vec<_>>(),
                       "dispatch_list": positions.as_ref().map(|ps| ps.iter().enumerate().map(|(i, (k, w, secs))| json!({
                           "index": i, "kernel": k, "workgroups": w, "ms": 1e3 * secs})).collect::<Vec<_>>()),
                       "adapter": gpu.report().name})
            );
        }
    }
    // 3. With --tunings: what the integer GEMMs' tuning timed for every scheme's plans.
    let timed = trainers.first().map(Trainer::gemm_tunings).unwrap_or_default();
    if tunings && json_out {
        for t in &timed {
            let tiles: Vec<_> =
                t.tiles.iter().map(|(tile, s)| json!({"tile": format!("{tile:?}"), "ms": 1e3 * s})).collect();
            println!(
                "{}",
                json!({"tuning": {"a": t.fmt_a.to_string(), "b": t.fmt_b.to_string(), "m": t.m, "n": t.n, "k": t.k,
                       "tiles": tiles, "unit_ms": t.unit.map(|u| 1e3 * u),
                       "kept": if t.on_unit() { "unit".to_string() } else { format!("{:?}", t.tile()) }}})
            );
        }
    } else if tunings {
        match (gpu.tunes(), timed.is_empty()) {
            (false, _) => println!("integer GEMM tuning: off on this Gpu (LOWBIT_TUNE)"),
            (true, true) => {
                println!("integer GEMM tuning: no shape class timed (no integer GEMM on the tiles or unit)")
            }
            (true, false) => println!("integer GEMM tuning, per shape class (each path's time; the one kept):"),
        }
        for t in &timed {
            println!("  {t}");
        }
    }
    Ok(())
}

/// The median of `xs` (not empty): the middle value, or the mean of the middle two.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let h = v.len() / 2;
    if v.len() % 2 == 1 {
        v[h]
    } else {
        (v[h - 1] + v[h]) / 2.0
    }
}

/// The smallest and largest of `xs`.
fn range(xs: &[f64]) -> (f64, f64) {
    xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// The dispatches of one step, in order, from `timed` (the dispatches of `steps` profiled steps):
/// each position's kernel, workgroups and mean GPU seconds; `None` unless every step recorded the
/// same kernels with the same workgroups (a step plan replayed) and all of them were timed.
fn step_positions(timed: &[DispatchTime], steps: usize) -> Option<Vec<(String, u64, f64)>> {
    if steps == 0 || timed.is_empty() || !timed.len().is_multiple_of(steps) {
        return None;
    }
    let per = timed.len() / steps;
    (0..per)
        .map(|i| {
            let first = &timed[i];
            let at: Vec<&DispatchTime> = (0..steps).map(|s| &timed[s * per + i]).collect();
            at.iter().all(|d| d.name == first.name && d.workgroups == first.workgroups).then(|| {
                (first.name.clone(), first.workgroups, at.iter().map(|d| d.seconds).sum::<f64>() / steps as f64)
            })
        })
        .collect()
}
