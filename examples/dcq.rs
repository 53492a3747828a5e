//! Divide-and-conquer quantization (DCQ) against direct quantized training, on MNIST.
//!
//! cargo run --release --example dcq -- [--data DIR] [--model mlp|cnn|resnet8|resnet20] [--scheme S]
//!     [--teacher-epochs N] [--section-epochs N] [--finetune-epochs N] [--sections N]
//!     [--limit N] [--seed S] [--json]
//!
//! 1. An fp32 teacher trains for `--teacher-epochs`.
//! 2. Direct: the student scheme fine-tunes the teacher's weights for `--section-epochs` +
//!    `--finetune-epochs` epochs (the same budget DCQ gets).
//! 3. DCQ: the teacher is cut into `--sections` sections; each quantized student section learns
//!    the teacher's section output from its input for `--section-epochs` epochs (squared
//!    error), the sections are stitched, and the student fine-tunes for `--finetune-epochs`.

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::nn::dcq::{split, train_sections};
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::Gpu;
use serde_json::json;

struct Args {
    data: Option<String>,
    model: String,
    scheme: String,
    teacher_epochs: u32,
    section_epochs: u32,
    finetune_epochs: u32,
    sections: Option<usize>,
    limit: Option<usize>,
    seed: u32,
    json: bool,
}

const USAGE: &str = "dcq [--data DIR] [--model mlp|cnn|resnet8|resnet20] [--scheme S] [--teacher-epochs N] [--section-epochs N] [--finetune-epochs N] [--sections N] [--limit N] [--seed S] [--json]";

fn usage(msg: &str) -> ! {
    cli::fail(USAGE, msg)
}

fn args() -> Args {
    let mut a = Args {
        data: None,
        model: "mlp".into(),
        scheme: "luq4+all".into(),
        teacher_epochs: 3,
        section_epochs: 1,
        finetune_epochs: 1,
        sections: None,
        limit: None,
        seed: 1,
        json: false,
    };
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--data" => a.data = Some(f.value("--data")),
            "--model" => a.model = f.value("--model"),
            "--scheme" => a.scheme = f.value("--scheme"),
            "--teacher-epochs" => a.teacher_epochs = f.whole_u32("--teacher-epochs"),
            "--section-epochs" => a.section_epochs = f.whole_u32("--section-epochs"),
            "--finetune-epochs" => a.finetune_epochs = f.whole_u32("--finetune-epochs"),
            "--sections" => a.sections = Some(f.whole("--sections")),
            "--limit" => a.limit = Some(f.whole("--limit")),
            "--seed" => a.seed = f.whole_u32("--seed"),
            "--json" => a.json = true,
            "-h" | "--help" => usage("Divide-and-conquer quantization against direct quantized training."),
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
    let (train_set, test) = cli::mnist(a.data.as_deref(), a.limit)?;
    let spec = ModelSpec::by_name(&a.model, train_set.shape(), train_set.classes())?;
    let opt = OptimConfig { lr: cli::default_lr(&a.model), ..Default::default() };
    let student_scheme = TrainScheme::preset(&a.scheme)?;
    let gemms: usize = spec.layers.iter().map(|l| l.gemm_count()).sum();
    let sections = split(&spec, a.sections.unwrap_or(gemms.min(3)))?;
    eprintln!(
        "{} on {} images; student {}; sections {sections:?}; teacher {} epochs, sections {} + fine-tune {}",
        a.model,
        train_set.len(),
        a.scheme,
        a.teacher_epochs,
        a.section_epochs,
        a.finetune_epochs
    );
    // 1. The fp32 teacher.
    let mut teacher = Trainer::new(&gpu, spec.clone(), TrainScheme::preset("fp32")?, opt, a.seed)?;
    cli::train_epochs(&mut teacher, &train_set, a.teacher_epochs, "fp32 teacher")?;
    let teacher_acc = teacher.evaluate(&test)?.0;
    let tp = teacher.parameters()?;
    let budget = a.section_epochs + a.finetune_epochs;
    // 2. Direct quantized training from the teacher's weights, same budget.
    let fine_opt = OptimConfig { lr: opt.lr * 0.2, ..opt };
    let mut direct = Trainer::new(&gpu, spec.clone(), student_scheme.clone(), fine_opt, a.seed)?;
    for (n, _, v) in &tp {
        direct.set_parameter(n, v)?;
    }
    let direct_start = direct.evaluate(&test)?.0;
    cli::train_epochs(&mut direct, &train_set, budget, "direct")?;
    let direct_acc = direct.evaluate(&test)?.0;
    // 3. DCQ.
    let steps = train_set.len() / opt.batch * a.section_epochs as usize;
    let b = cli::bar(steps * sections.len(), "DCQ sections".into());
    let (params, reports) = train_sections(
        &gpu,
        &spec,
        &tp,
        &student_scheme,
        &sections,
        &train_set,
        steps,
        fine_opt,
        a.seed,
        true,
        |s, _, l| {
            b.inc(1);
            b.set_message(format!("section {s} mse {l:.4}"));
        },
    )?;
    b.finish_and_clear();
    let mut student = Trainer::new(&gpu, spec.clone(), student_scheme, fine_opt, a.seed)?;
    for (n, _, v) in &params {
        student.set_parameter(n, v)?;
    }
    let stitched_acc = student.evaluate(&test)?.0;
    cli::train_epochs(&mut student, &train_set, a.finetune_epochs, "DCQ fine-tune")?;
    let dcq_acc = student.evaluate(&test)?.0;
    for r in &reports {
        eprintln!("section {:?}: feature mse {:.5} -> {:.5}", r.layers, r.first_mse, r.last_mse);
    }
    // Below 0.2 points (20 of MNIST's 10,000 test images) the gap is within run-to-run noise.
    let gap = teacher_acc - direct_acc;
    let closed = if gap >= 0.002 { Some((dcq_acc - direct_acc) / gap) } else { None };
    println!("{:<34} {:>9}", "model", "test acc");
    println!("{:<34} {:>8.2}%", "fp32 teacher", 100.0 * teacher_acc);
    println!("{:<34} {:>8.2}%", format!("{} (teacher weights, no training)", a.scheme), 100.0 * direct_start);
    println!("{:<34} {:>8.2}%", format!("direct {} ({budget} epochs)", a.scheme), 100.0 * direct_acc);
    println!("{:<34} {:>8.2}%", "DCQ stitched", 100.0 * stitched_acc);
    println!("{:<34} {:>8.2}%", format!("DCQ + {} fine-tune epochs", a.finetune_epochs), 100.0 * dcq_acc);
    match closed {
        Some(c) => println!("gap to fp32 closed by DCQ: {:.0}%", 100.0 * c),
        None => println!(
            "direct training left no gap to fp32 to close ({:+.2} points, under the 0.2 a run can move by)",
            100.0 * gap
        ),
    }
    if a.json {
        println!(
            "{}",
            json!({"dataset": "mnist", "model": a.model, "scheme": a.scheme, "teacher_acc": teacher_acc,
                   "direct_acc": direct_acc, "stitched_acc": stitched_acc, "dcq_acc": dcq_acc,
                   "gap_closed": closed, "sections": sections, "train_images": train_set.len(),
                   "adapter": gpu.report().name})
        );
    }
    Ok(())
}
