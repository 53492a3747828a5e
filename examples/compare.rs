//! Train fp32 and every preset from the same initialization and data order in one run, print a
//! table (accuracy, Δ vs fp32, step time, activation memory) and one JSON line per scheme, and
//! write a PNG of the loss and accuracy curves.
//!
//! cargo run --release --example compare -- --dataset mnist --epochs N [--data DIR] [--model mlp|cnn|resnet8|resnet20]
//!     [--schemes fp32,int8,fp8,luq4] [--limit N] [--seed S] [--out compare.png]

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::Gpu;
use plotters::prelude::*;
use std::time::Instant;

struct Run {
    scheme: String,
    /// Mean training loss per epoch.
    loss: Vec<f64>,
    /// Every step's training loss.
    /// `(step, loss)` of every step read back.
    step_loss: Vec<(u64, f64)>,
    /// Test accuracy per epoch.
    acc: Vec<f64>,
    ms_per_step: f64,
    stored: u64,
    fp32: u64,
}

const USAGE: &str = "compare --dataset mnist|cifar --epochs N [--data DIR] [--model mlp|cnn|resnet8|resnet20] [--schemes a,b,..] [--limit N] [--seed S] [--out FILE.png]";

fn main() {
    cli::exit_on_error(run());
}

fn run() -> lowbit::Result<()> {
    let (mut dataset, mut epochs, mut data, mut model, mut limit, mut seed, mut out) =
        ("mnist".to_string(), 3u32, None, None, None, 1u32, "compare.png".to_string());
    let mut schemes: Vec<String> = TrainScheme::PRESETS.iter().map(|s| s.to_string()).collect();
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--dataset" => dataset = f.value("--dataset"),
            "--epochs" => epochs = f.count("--epochs"),
            "--data" => data = Some(f.value("--data")),
            "--model" => model = Some(f.value("--model")),
            "--limit" => limit = Some(f.whole("--limit")),
            "--seed" => seed = f.whole_u32("--seed"),
            "--schemes" => schemes = f.value("--schemes").split(',').map(str::to_string).collect(),
            "--out" => out = f.value("--out"),
            other => cli::fail(USAGE, &format!("unknown argument {other}")),
        }
    }
    if !schemes.iter().any(|s| s == "fp32") {
        schemes.insert(0, "fp32".into());
    }
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.report());
    let (train, test) = cli::load(&dataset, data.as_deref())?;
    let train = cli::limit_to(train, limit);
    let model = model.unwrap_or_else(|| if dataset == "cifar" { "cnn".into() } else { "mlp".into() });
    let opt = OptimConfig { lr: cli::default_lr(&model), ..Default::default() };
    let steps = train.len() / opt.batch;
    eprintln!(
        "{dataset}: {} training / {} test images, {model}, {epochs} epochs x {steps} steps, seed {seed}",
        train.len(),
        test.len()
    );
    let mut runs = Vec::new();
    for name in &schemes {
        let scheme = TrainScheme::preset(name)?;
        let spec = ModelSpec::by_name(&model, train.shape(), train.classes())?;
        // Same seed: same initial weights and the same batch order for every scheme.
        let mut t = Trainer::new(&gpu, spec, scheme, opt, seed)?;
        // Losses are read back every few steps: the curve gets the steps read.
        t.set_read_every(cli::READ_EVERY)?;
        let mut last_read = None;
        let mut r = Run {
            scheme: name.clone(),
            loss: Vec::new(),
            step_loss: Vec::new(),
            acc: Vec::new(),
            ms_per_step: 0.0,
            stored: 0,
            fp32: 0,
        };
        let mut secs = 0.0;
        for epoch in 0..epochs {
            let t0 = Instant::now();
            let (loss, _) = t.train_epoch(&train, epoch, steps * epochs as usize, |i, s| {
                if s.read && last_read != Some(s.step) {
                    last_read = Some(s.step);
                    r.step_loss.push((s.step, s.loss as f64));
                }
                if i % 10 == 0 && s.read {
                    eprint!("\r{name:>10} epoch {}/{epochs} step {i}/{steps} loss {:.4}   ", epoch + 1, s.loss);
                }
            })?;
            secs += t0.elapsed().as_secs_f64();
            r.loss.push(loss);
            r.acc.push(t.evaluate(&test)?.0);
        }
        eprintln!("\r{name:>10}: test acc {:.2}%{:30}", r.acc.last().unwrap_or(&0.0) * 100.0, "");
        r.ms_per_step = secs * 1e3 / (steps * epochs as usize).max(1) as f64;
        (r.stored, r.fp32) = (t.activation_bytes().stored, t.activation_bytes().fp32);
        runs.push(r);
    }
    let base = runs
        .iter()
        .find(|r| r.scheme == "fp32")
        .map(|r| (*r.acc.last().unwrap_or(&0.0), r.ms_per_step))
        .unwrap_or((0.0, 1.0));
    println!(
        "{:<12} {:>9} {:>10} {:>11} {:>10} {:>16}",
        "scheme", "test acc", "Δ vs fp32", "ms/step", "vs fp32", "activations MiB"
    );
    for r in &runs {
        let acc = *r.acc.last().unwrap_or(&0.0);
        println!(
            "{:<12} {:>8.2}% {:>+9.2}pt {:>11.1} {:>9.2}x {:>7.2} / {:.2}",
            r.scheme,
            acc * 100.0,
            (acc - base.0) * 100.0,
            r.ms_per_step,
            r.ms_per_step / base.1,
            r.stored as f64 / 1048576.0,
            r.fp32 as f64 / 1048576.0
        );
    }
    for r in &runs {
        let acc = *r.acc.last().unwrap_or(&0.0);
        println!(
            "{}",
            serde_json::json!({"dataset": dataset, "model": model, "scheme": r.scheme, "epochs": epochs, "train_images": train.len(),
                "test_acc": acc, "delta_vs_fp32": acc - base.0, "final_loss": r.loss.last(), "ms_per_step": r.ms_per_step,
                "step_time_vs_fp32": r.ms_per_step / base.1, "activation_bytes": r.stored, "activation_bytes_fp32": r.fp32,
                "adapter": gpu.report().name, "seed": seed})
        );
    }
    match plot(
        &runs,
        &out,
        &format!(
            "{dataset} {model}, {} training images, same init and batch order ({})",
            train.len(),
            gpu.report().name
        ),
    ) {
        Ok(()) => eprintln!("wrote {out}"),
        // (After the table and the JSON lines: the runs' figures are not lost, but the file the
        // run was asked for is missing, so the exit status says so.)
        Err(e) => {
            return Err(lowbit::Error::Io {
                path: out,
                source: std::io::Error::other(format!("the plot was not written: {e}")),
            })
        }
    }
    Ok(())
}

/// Curve colours, and their names for a legend printed when the plot has no text.
const COLORS: [RGBColor; 6] = [BLACK, BLUE, RED, GREEN, MAGENTA, CYAN];
const COLOR_NAMES: [&str; 6] = ["black", "blue", "red", "green", "magenta", "cyan"];

/// Registers a sans-serif TrueType font for plot text: `LOWBIT_FONT` if set, else a system font.
fn font() -> Result<(), String> {
    let own = std::env::var("LOWBIT_FONT").ok();
    let candidates = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/Library/Fonts/Arial.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ];
    let path = own
        .as_deref()
        .into_iter()
        .chain(candidates)
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("no TrueType font found (install fonts-dejavu-core or set LOWBIT_FONT=path.ttf)")?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path).map_err(|e| e.to_string())?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path} is not a usable font"))
}

fn plot(runs: &[Run], out: &str, title: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Without a font the curves are still drawn, without text; the legend goes to stderr.
    let text = match font() {
        Ok(()) => true,
        Err(e) => {
            let legend: Vec<String> =
                runs.iter().zip(COLOR_NAMES.iter().cycle()).map(|(r, c)| format!("{} = {c}", r.scheme)).collect();
            eprintln!("plot without labels: {e}; left loss, right test accuracy; {}", legend.join(", "));
            false
        }
    };
    let root = BitMapBackend::new(out, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = if text { root.titled(title, ("sans-serif", 20))? } else { root };
    let (left, right) = root.split_horizontally(600);
    let epochs = runs.iter().map(|r| r.loss.len()).max().unwrap_or(1).max(2);
    let per_epoch = runs
        .iter()
        .map(|r| r.step_loss.last().map_or(1, |s| s.0 + 1) as usize / r.loss.len().max(1))
        .max()
        .unwrap_or(1)
        .max(1);
    // Loss of the steps read back, smoothed over a window of 5 of them, on an epoch axis.
    let smooth = |v: &[(u64, f64)]| -> Vec<(f64, f64)> {
        (0..v.len())
            .map(|i| {
                let lo = i.saturating_sub(4);
                let mean = v[lo..=i].iter().map(|p| p.1).sum::<f64>() / (i + 1 - lo) as f64;
                ((v[i].0 + 1) as f64 / per_epoch as f64, mean)
            })
            .collect()
    };
    let lmax = runs.iter().flat_map(|r| smooth(&r.step_loss)).map(|p| p.1).fold(0.0, f64::max) * 1.05;
    let amin = runs.iter().flat_map(|r| r.acc.iter().cloned()).fold(1.0, f64::min) * 100.0;
    let colors = COLORS;
    let area = |a| if text { a } else { 0 };
    let mut b = ChartBuilder::on(&left);
    if text {
        b.caption("train loss (steps read back, mean of 5)", ("sans-serif", 18));
    }
    let mut c = b
        .margin(15)
        .x_label_area_size(area(35))
        .y_label_area_size(area(50))
        .build_cartesian_2d(0f64..epochs as f64, 0f64..lmax.max(1e-3))?;
    if text {
        c.configure_mesh().x_desc("epoch").y_desc("loss").draw()?;
    } else {
        c.configure_mesh().x_labels(0).y_labels(0).draw()?;
    }
    for (i, r) in runs.iter().enumerate() {
        let col = colors[i % colors.len()];
        c.draw_series(LineSeries::new(smooth(&r.step_loss), col.stroke_width(2)))?
            .label(r.scheme.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
    }
    if text {
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    let mut b = ChartBuilder::on(&right);
    if text {
        b.caption("test accuracy (%)", ("sans-serif", 18));
    }
    let mut c = b
        .margin(15)
        .x_label_area_size(area(35))
        .y_label_area_size(area(50))
        .build_cartesian_2d(1f64..epochs as f64, (amin - 1.0).max(0.0)..100f64)?;
    if text {
        c.configure_mesh().x_desc("epoch").y_desc("accuracy %").draw()?;
    } else {
        c.configure_mesh().x_labels(0).y_labels(0).draw()?;
    }
    for (i, r) in runs.iter().enumerate() {
        let col = colors[i % colors.len()];
        c.draw_series(LineSeries::new(
            r.acc.iter().enumerate().map(|(e, &a)| (e as f64 + 1.0, a * 100.0)),
            col.stroke_width(2),
        ))?
        .label(r.scheme.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
    }
    if text {
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
