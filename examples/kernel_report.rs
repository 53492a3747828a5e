//! Kernel report: one JSON object per line. First the adapter, then for every quantizer its
//! bandwidth beside a plain copy kernel on the same number of elements, timed again just before
//! each quantizer (the machine's speed drifts within a run; bytes counted as read + written: f32
//! input, packed codes, scales). x is `[ceil(N / C), C]` (`--elements N`, `--cols C`; 16M and
//! 4096 unless given), and the transposing quantizers pack its transpose. For the block-scaled
//! formats (MXFP8, MXFP4, NVFP4) the rotated weight-gradient operand follows (R = x·D·H₁₆ in
//! blocks of 16 down x's rows, the training presets' random signs, Rᵀ quantized per block,
//! stochastic rounding): `hadamard_quantize_transpose`, the one launch (NVFP4's with the maxima
//! launch its block scales read first, as training takes it on a GPU), beside
//! `hadamard_then_quantize_transpose`, the chain that writes R and quantizes it (a CPU adapter's
//! NVFP4 path); and where the adapter binds its buffers `hadamard_quantize_transpose_both` (x's
//! own blocks quantized in the same launch, as the forward's X and the input gradient's dY take
//! them) beside `hadamard_quantize_transpose_apart` (the one launch, then `quantize_fused` of x).
//! Those lines need x's rows in sixteens and its columns in fours. TinyScript's quantizer follows
//! on the same x (`tinyscript_quantize`, format `tinyscript4` or `tinyscript3`: evenly spaced
//! signed tables, one scale per row; nearest and stochastic, and `tinyscript_quantize_transpose`
//! for xᵀ's rows), replayed from a step plan as training runs it; `--formats` takes `tinyscript`
//! beside the formats' names, and without it leaves these lines out.
//!
//! Then `{"kernel", "format", "conv", "us", "im2col_us", "ratio"}` for the quantized convolution's
//! unfolding quantizers (`im2col_quantize`, the forward's; `im2col_quantize_transpose`, the weight
//! gradient's) and the two-launch chains they replace, and where the input's channels come in
//! fours on a CPU adapter both quantized together as training takes them (`im2col_quantize_both`:
//! the input's maxima, then both sides' codes; `Im2colQuantize::encode_both`) beside the two
//! unfolding quantizers apart (`im2col_quantize_apart`), at each of `resnet20`'s convolutions
//! (batch 16, per-row scales), beside `im2col` on the same input in the same run ("ratio": its
//! time over the kernel's).
//!
//! Then for every GEMM and shape `{"kernel", "m", "n", "k", "gops", "f32_gflops", "ratio"}` with
//! lowbit's f32 GEMM on the same shape in the same run as the baseline (what `GemmF32::encode`
//! runs: the tiled kernel, or on a CPU adapter with 8-lane subgroups `gemm_f32_lanes`, whose
//! lines have `"tile": "lanes"` and a `gemm_f32_tiled` line beside them with the tiled kernel's
//! best tile), and a line per shape comparing that f32 GEMM with the naive one-thread-per-output
//! kernel; likewise each integer GEMM (per-row operands) runs what `GemmInt::encode` runs, on such
//! an adapter `gemm_int_lanes` (`"tile": "lanes"`, its `peak_fraction` against the f32 FMA rate it
//! runs on) with a `gemm_int_tiled_*` line beside it, and the FP8 GEMM `gemm_fp8_lanes` with a
//! `gemm_fp8_tiled_*` line. TinyScript's `gemm_levels` runs A in codes of a 4- or 3-bit table
//! (per-row scales, nearest) times B in f32 (`gemm_levels_4bxf32`, `gemm_levels_3bxf32`), and
//! 4-bit codes times 4-bit codes, B stored `[N, K]` (`gemm_levels_4bx4b`) or, as a weight
//! gradient stores its B, `[K, N]` (`gemm_levels_4bx4bt`); on such an adapter it runs
//! `gemm_levels_lanes` with a `gemm_levels_tiled_*` line beside it, its tile tuned for the shape
//! (`GemmLevels::tune`). Before the GEMMs, the
//! adapter's measured f32 FMA and int8 dot-product rates (`peak_f32`, `peak_dot4i8`, from the
//! `peak` kernel: no memory traffic), and each GEMM line's `peak_fraction` is its throughput over
//! the rate of the unit it runs on (int GEMMs: dot products; f32, FP8, TinyScript, naive: f32
//! FMA). Where the
//! adapter has 16×16×16 (or only 8×8×8) f16 cooperative matrices (tensor cores), `peak_coop` is
//! that unit's rate too. Where the adapter has f16 cooperative matrices of 8×8×8 or 16×16×16, each integer GEMM
//! and the FP8 GEMM also run on that unit (`gemm_int_coop_*`, `gemm_fp8_coop_*`, `"tile": "coop8"`
//! or `"coop16"`, their `peak_fraction` against `peak_coop` where that was measured), whether or
//! not the dispatcher picks it on this adapter (it keeps the lanes kernels on a CPU adapter; where
//! it picks the unit, the dispatcher's own line says `coop8` or `coop16` too), and a kernel that
//! refused the unit prints why (`"refused"`).
//!
//! Last, the optimizer over the tensors of the MLP and of `resnet20` as `Trainer::parameters` names
//! them, running statistics left out (a batch norm's γ and β count as two, where the trainer
//! updates them as one tensor): SGD with one launch per tensor beside the multi-tensor
//! launches training records (eight tensors each), both in one compute pass as a step plan
//! replays them, with their bandwidth (w, v and g read, w and v written) and the copy's; and
//! the step's finiteness check over the same weights and gradients on each of `finite`'s entries
//! (`tree`, what a GPU runs; `per_thread` and `per_thread_v4`, a CPU adapter's scalar and vec4
//! entries), with the bytes it reads beside the copy's.
//!
//! cargo run --release --example kernel_report -- [--elements N] [--cols C] [--iters K]
//!     [--max-square S] [--formats F,F..] [--skip-quant] [--skip-unfold] [--skip-gemm] [--skip-optim]
//!     [--adapter-only]

#[path = "shared/cli.rs"]
#[allow(dead_code)]
mod cli;

use lowbit::format::Format;
use lowbit::kernels::gemm::{Epilogue, Tile};
use lowbit::kernels::gemm_f32::{GemmF32, GemmShape};
use lowbit::kernels::gemm_f32_naive::GemmF32Naive;
use lowbit::kernels::gemm_fp8::GemmFp8;
use lowbit::kernels::gemm_int::GemmInt;
use lowbit::kernels::gemm_levels::GemmLevels;
use lowbit::kernels::hadamard::{Hadamard, RANDOM_SIGNS};
use lowbit::kernels::hadamard_quantize_transpose::{HadamardQuantizeTranspose, RotatedExtras, Unrotated, ROTATION};
use lowbit::kernels::im2col::{ConvGeom, Im2col};
use lowbit::kernels::im2col_quantize::Im2colQuantize;
use lowbit::kernels::im2col_quantize_transpose::Im2colQuantizeTranspose;
use lowbit::kernels::peak::{Peak, PeakOp};
use lowbit::kernels::peak_coop::{PeakCoop, OUT_PER_WORKGROUP};
use lowbit::kernels::quantize_both::Side;
use lowbit::kernels::sgd::Sgd;
use lowbit::kernels::tinyscript::TinyScript;
use lowbit::kernels::OptimTensor;
use lowbit::kernels::{
    absmax::Absmax, copy::Copy, dequantize::Dequantize, finite::Finite, quantize::Quantize,
    quantize_fused::QuantizeFused, quantize_fused::ReducePath, quantize_transpose::QuantizeTranspose,
    quantize_transpose_fused::QuantizeTransposeFused,
};
use lowbit::nn::{ModelSpec, OptimConfig, TrainScheme, Trainer};
use lowbit::plan::{Arena, Tape};
use lowbit::quant::Quantizer;
use lowbit::reference::hadamard::Axis;
use lowbit::scheme::QuantScheme;
use lowbit::scheme::{Granularity, QuantLayout, Rounding};
use lowbit::timing::{gpu_seconds, pass_seconds};
use lowbit::tinyscript::LevelTable;
use lowbit::{Gpu, GpuBuffer, GpuTensor, Result};
use serde_json::json;

struct Args {
    elements: usize,
    /// The quantizer lines' x width (`--cols`): x is `[ceil(elements / cols), cols]`.
    cols: usize,
    iters: u32,
    max_square: Option<usize>,
    skip_quant: bool,
    skip_unfold: bool,
    skip_gemm: bool,
    skip_optim: bool,
    adapter_only: bool,
    /// The quantizer lines' formats (every format unless `--formats` names some).
    formats: Vec<Format>,
    /// TinyScript's quantizer lines (unless `--formats` leaves out `tinyscript`).
    tinyscript: bool,
}

const USAGE: &str =
    "kernel_report [--elements N] [--cols C] [--iters K] [--max-square S] [--formats F,F..] [--skip-quant] [--skip-unfold] [--skip-gemm] [--skip-optim] [--adapter-only]";

fn args() -> Args {
    let mut a = Args {
        elements: 16 << 20,
        cols: 4096,
        iters: 10,
        max_square: None,
        skip_quant: false,
        skip_unfold: false,
        skip_gemm: false,
        skip_optim: false,
        adapter_only: false,
        formats: Format::ALL.to_vec(),
        tinyscript: true,
    };
    let mut f = cli::Flags::new(USAGE);
    while let Some(s) = f.next() {
        match s.as_str() {
            "--elements" => a.elements = f.whole("--elements"),
            "--cols" => a.cols = f.whole("--cols"),
            "--iters" => a.iters = f.whole_u32("--iters"),
            "--adapter-only" => a.adapter_only = true,
            "--max-square" => a.max_square = Some(f.whole("--max-square")),
            "--formats" => {
                let list = f.value("--formats");
                a.tinyscript = list.split(',').any(|n| n == "tinyscript");
                a.formats = list
                    .split(',')
                    .filter(|&n| n != "tinyscript")
                    .map(|n| n.parse::<Format>().unwrap_or_else(|e| cli::fail(USAGE, &format!("--formats: {e}"))))
                    .collect();
            }
            "--skip-quant" => a.skip_quant = true,
            "--skip-unfold" => a.skip_unfold = true,
            "--skip-gemm" => a.skip_gemm = true,
            "--skip-optim" => a.skip_optim = true,
            other => cli::fail(USAGE, &format!("unknown argument {other}")),
        }
    }
    if a.elements == 0 || a.iters == 0 || a.cols == 0 {
        cli::fail(USAGE, "--elements, --cols and --iters must be at least 1");
    }
    a
}

fn main() {
    cli::exit_on_error(run());
}

fn run() -> Result<()> {
    let a = args();
    let gpu = Gpu::new()?;
    println!("{}", gpu.report().to_json());
    if a.adapter_only {
        return Ok(());
    }
    if !a.skip_quant {
        quantizers(&gpu, &a)?;
    }
    if !a.skip_unfold {
        unfolds(&gpu, &a)?;
    }
    if !a.skip_gemm {
        gemms(&gpu, &a)?;
    }
    if !a.skip_optim {
        optimizers(&gpu, &a)?;
    }
    Ok(())
}

/// The adapter's f32 FMA and int8 dot-product rates in Gop/s, printed as two lines, and the
/// cooperative unit's where `peak_coop` runs.
fn peaks(gpu: &Gpu, cpu: bool) -> Result<(f64, f64, Option<f64>)> {
    let peak = Peak::new(gpu)?;
    let (threads, rounds) = if cpu { (4096, 64) } else { (1 << 20, 256) };
    let out = GpuBuffer::<u32>::zeros(gpu, "peak out", threads)?;
    let rate = |op: PeakOp| -> Result<f64> {
        let t = gpu_seconds(gpu, 5, 3, |e| peak.encode(gpu, e, op, rounds, &out))?;
        Ok(op.ops_per_round() * rounds as f64 * threads as f64 / t / 1e9)
    };
    let f = rate(PeakOp::F32Fma { m: 1.0, c: 0.5 })?;
    let d = rate(PeakOp::Dot4I8 { b: 0x0102_fd7f })?;
    // The cooperative unit (tensor cores), where the adapter has it.
    let mut coop = None;
    if PeakCoop::available(gpu) {
        let probe = PeakCoop::new(gpu)?;
        // (A CPU adapter's unit is emulated: fewer workgroups, within its 128 MiB bindings.)
        let (wgs, rounds) = if cpu { (64u32, 256u32) } else { (4096u32, 1024u32) };
        let subgroup = gpu.report().subgroup_sizes.map_or(32, |s| s.0);
        let out = GpuBuffer::<f32>::zeros(gpu, "coop peak out", wgs as usize * OUT_PER_WORKGROUP)?;
        let t = gpu_seconds(gpu, 5, 3, |e| probe.encode(gpu, e, wgs, rounds, 0.0625, 0.0625, &out))?;
        let r = probe.flops(wgs, subgroup, rounds) / t / 1e9;
        let size = probe.matrix_size();
        coop = Some(r);
        println!(
            "{}",
            json!({"kernel": "peak_coop", "unit": format!("{size}x{size}x{size} f16 cooperative matrix"), "gops": (r * 100.0).round() / 100.0, "ratio": (r / f * 1000.0).round() / 1000.0})
        );
    }
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    println!("{}", json!({"kernel": "peak_f32", "unit": "f32 fma", "gops": round2(f)}));
    println!(
        "{}",
        json!({"kernel": "peak_dot4i8", "unit": "dot4I8Packed", "gops": round2(d), "ratio": (d / f * 1000.0).round() / 1000.0})
    );
    Ok((f, d, coop))
}

fn gemms(gpu: &Gpu, a: &Args) -> Result<()> {
    let cpu = gpu.is_cpu();
    let (peak_f32, peak_dot, peak_coop) = peaks(gpu, cpu)?;
    let max = a.max_square.unwrap_or(if cpu { 1024 } else { 2048 });
    let mut shapes: Vec<(&str, usize, usize, usize)> =
        [256, 512, 1024, 2048, 4096].into_iter().filter(|&s| s <= max).map(|s| ("square", s, s, s)).collect();
    // Layer shapes: MNIST MLP 784-256-256-10 at batch 128 (forward, dX, dW), a small CIFAR CNN's
    // 3x3 conv as an im2col GEMM (batch 32, 16x16 maps, 32 -> 64 channels), resnet20's first
    // stage's 3x3 conv forward (batch 16, 32x32 maps, 16 -> 16 channels: 16 outputs wide), and two
    // weight gradients over a batch's pixels at batch 128: the MNIST CNN's first convolution's (5x5
    // taps of one channel, 16 outputs, 28x28 maps: one 16x32 tile over K = 100,352) and resnet20's
    // first stage's on CIFAR-10 (3x3 taps of 16 channels, 32x32 maps: K = 131,072, past int8 x
    // int8's exact i32 run of 131,040); and the `gpt` example's MLP products (16 sequences of 64
    // tokens, width 64, hidden 256: forward of both layers, the first's weight gradient), whose
    // short K (64) is where an integer GEMM's conversions weigh most against its products.
    shapes.extend([
        ("mlp.fc1.fwd", 128, 256, 784),
        ("mlp.fc1.dx", 128, 784, 256),
        ("mlp.fc1.dw", 256, 784, 128),
        ("mlp.fc3.fwd", 128, 10, 256),
        ("cnn.conv2.fwd", 8192, 64, 288),
        ("cnn.conv2.dw", 64, 288, 8192),
        ("resnet20.stage1.fwd", 16384, 16, 144),
        ("mnist_cnn.conv1.dw", 16, 25, 100_352),
        ("resnet20_cifar.stage1.dw", 16, 144, 131_072),
        ("gpt.fc1.fwd", 1024, 256, 64),
        ("gpt.fc2.fwd", 1024, 64, 256),
        ("gpt.fc1.dw", 256, 64, 1024),
    ]);
    let f32k = GemmF32::new(gpu)?;
    let naive = GemmF32Naive::new(gpu)?;
    let qz = Quantizer::new(gpu)?;
    let int_pairs = [
        (Format::Int8, Format::Int8),
        (Format::Int4, Format::Int4),
        (Format::Int2, Format::Int2),
        (Format::Log4, Format::Int8),
    ];
    let int_kernels: Vec<GemmInt> = int_pairs.iter().map(|&(x, y)| GemmInt::new(gpu, x, y)).collect::<Result<_>>()?;
    for why in int_kernels.iter().filter_map(GemmInt::coop_refusal) {
        println!("{}", json!({"kernel": "gemm_int_coop", "refused": why}));
    }
    let fp8 = GemmFp8::new(gpu, Format::Fp8E4M3, Format::Fp8E4M3)?;
    if let Some(why) = fp8.coop_refusal() {
        println!("{}", json!({"kernel": "gemm_fp8_coop", "refused": why}));
    }
    let levels = GemmLevels::new(gpu)?;
    let ts = TinyScript::new(gpu)?;
    // TinyScript's tables: the preset's default 4 bits (eight codes a word) and 3 bits (ten a
    // word: a word's codes do not start at a multiple of four), signed, evenly spaced levels.
    let tables = [LevelTable::uniform(4)?, LevelTable::uniform(3)?];
    if !cpu {
        warm_up(gpu, &f32k, &qz, &int_pairs, &int_kernels, &fp8, &levels, &ts)?;
    }
    for (label, m, n, k) in shapes {
        let flops = 2.0 * (m * n * k) as f64;
        let iters = ((2e9 / flops) as u32).clamp(1, a.iters);
        let av: Vec<f32> = (0..(m * k) as u32).map(|i| lowbit::rng::uniform(1, i) - 0.5).collect();
        let bv: Vec<f32> = (0..(n * k) as u32).map(|i| lowbit::rng::uniform(2, i) - 0.5).collect();
        let at = GpuTensor::from_slice(gpu, &av, &[m, k])?;
        let bt = GpuTensor::from_slice(gpu, &bv, &[n, k])?;
        let c = GpuBuffer::<f32>::zeros(gpu, "c", m * n)?;
        let shape = GemmShape::nt(m, n, k);
        let epi = Epilogue::default();
        f32k.tune(gpu, shape)?;
        for kern in &int_kernels {
            kern.tune(gpu, m, n, k)?;
        }
        fp8.tune(gpu, m, n, k)?;
        levels.tune(gpu, m, n, k)?;
        let t_f32 = gpu_seconds(gpu, iters, 3, |e| f32k.encode(gpu, e, at.buffer(), bt.buffer(), shape, &epi, &c))?;
        let f32_gflops = flops / t_f32 / 1e9;
        let emit = |kernel: &str, gops: f64, tile: Option<String>| {
            // gemm_int_lanes multiplies on the f32 unit, the coop tiles on the cooperative one.
            let on_coop = tile.as_deref().is_some_and(|t| t.starts_with("coop"));
            let on_dot = kernel.starts_with("gemm_int") && tile.as_deref() != Some("lanes") && !on_coop;
            let peak = if on_coop {
                peak_coop.unwrap_or(f64::NAN)
            } else if on_dot {
                peak_dot
            } else {
                peak_f32
            };
            let fraction = gops / peak;
            println!(
                "{}",
                json!({"kernel": kernel, "shape": label, "m": m, "n": n, "k": k, "gops": (gops * 100.0).round() / 100.0,
                       "f32_gflops": (f32_gflops * 100.0).round() / 100.0, "ratio": (gops / f32_gflops * 1000.0).round() / 1000.0,
                       "peak_fraction": fraction.is_finite().then(|| (fraction * 1000.0).round() / 1000.0),
                       "tile": tile})
            );
        };
        // What the dispatcher ran, at `gops`; where that was a lanes kernel, the tiled kernel's
        // best tile (timed by `time_tile`) on a `tiled` line beside it; where it was the
        // cooperative unit (`coop`: its matrix size), that.
        let report = |kernel: &str,
                      tiled: &str,
                      gops: f64,
                      lanes: bool,
                      coop: Option<u32>,
                      tuned: Option<Tile>,
                      time_tile: &dyn Fn(Tile) -> Result<f64>|
         -> Result<()> {
            if let Some(size) = coop {
                emit(kernel, gops, Some(format!("coop{size}")));
            } else if lanes {
                emit(kernel, gops, Some("lanes".into()));
                let tile = tuned.unwrap_or(Tile::T128);
                emit(tiled, flops / time_tile(tile)? / 1e9, Some(format!("{tile:?}")));
            } else {
                emit(kernel, gops, tuned.map(|t| format!("{t:?}")));
            }
            Ok(())
        };
        report("gemm_f32", "gemm_f32_tiled", f32_gflops, f32k.uses_lanes(), None, f32k.tuned(m, n, k), &|tile| {
            gpu_seconds(gpu, iters, 3, |e| f32k.encode_with(gpu, e, tile, at.buffer(), bt.buffer(), shape, &epi, &c))
        })?;
        if flops <= 2.0 * 1024f64.powi(3) {
            let t =
                gpu_seconds(gpu, iters.min(3), 1, |e| naive.encode(gpu, e, at.buffer(), bt.buffer(), shape, &epi, &c))?;
            emit("gemm_f32_naive", flops / t / 1e9, None);
        }
        for ((fa, fb), kern) in int_pairs.iter().zip(&int_kernels) {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            let qa = qz.quantize(gpu, &mut enc, &at, QuantScheme::per_row(*fa))?;
            let qb = qz.quantize(gpu, &mut enc, &bt, QuantScheme::per_row(*fb))?;
            gpu.queue.submit([enc.finish()]);
            let t = gpu_seconds(gpu, iters, 3, |e| kern.encode(gpu, e, &qa, &qb, &epi, &c))?;
            report(
                &format!("gemm_int_{fa}x{fb}"),
                &format!("gemm_int_tiled_{fa}x{fb}"),
                flops / t / 1e9,
                kern.runs_lanes(&qa, &qb),
                kern.coop_size().filter(|_| kern.runs_coop(&qa, &qb)),
                kern.tuned(m, n, k),
                &|tile| gpu_seconds(gpu, iters, 3, |e| kern.encode_with(gpu, e, tile, &qa, &qb, &epi, &c)),
            )?;
            if let Some(size) = kern.coop_size() {
                let t = gpu_seconds(gpu, iters, 3, |e| kern.encode_coop(gpu, e, &qa, &qb, &epi, &c))?;
                emit(&format!("gemm_int_coop_{fa}x{fb}"), flops / t / 1e9, Some(format!("coop{size}")));
            }
        }
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let qa = qz.quantize(gpu, &mut enc, &at, QuantScheme::per_row(Format::Fp8E4M3))?;
        let qb = qz.quantize(gpu, &mut enc, &bt, QuantScheme::per_row(Format::Fp8E4M3))?;
        gpu.queue.submit([enc.finish()]);
        let t = gpu_seconds(gpu, iters, 3, |e| fp8.encode(gpu, e, &qa, &qb, &epi, &c))?;
        report(
            "gemm_fp8_e4m3xe4m3",
            "gemm_fp8_tiled_e4m3xe4m3",
            flops / t / 1e9,
            fp8.uses_lanes(),
            fp8.coop_size().filter(|_| fp8.runs_coop(&qa, &qb)),
            fp8.tuned(m, n, k),
            &|tile| gpu_seconds(gpu, iters, 3, |e| fp8.encode_with(gpu, e, tile, &qa, &qb, &epi, &c)),
        )?;
        if let Some(size) = fp8.coop_size() {
            let t = gpu_seconds(gpu, iters, 3, |e| fp8.encode_coop(gpu, e, &qa, &qb, &epi, &c))?;
            emit("gemm_fp8_coop_e4m3xe4m3", flops / t / 1e9, Some(format!("coop{size}")));
        }
        // TinyScript: A coded, B in f32 (the forward's Q(X)·Wᵀ, W stored [N, K]); with the
        // 4-bit table B coded as well, stored [N, K] (`4bx4b`) or, as the weight gradient
        // Q(dYᵀ)·Q(X) stores X, [K, N] with a scale per stored row (`4bx4bt`: b's values read as
        // [K, N]).
        for table in &tables {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            let qa = ts.encode_quantize(gpu, &mut enc, at.buffer(), m, k, table, Rounding::Nearest)?;
            let qb = ts.encode_quantize(gpu, &mut enc, bt.buffer(), n, k, table, Rounding::Nearest)?;
            let qbt = ts.encode_quantize(gpu, &mut enc, bt.buffer(), k, n, table, Rounding::Nearest)?;
            gpu.queue.submit([enc.finish()]);
            let bits = table.bits;
            // (line, B coded, B stored [K, N]): every table times f32 B, the 4-bit one times
            // 4-bit codes too.
            for (line, coded, trans) in
                [(format!("{bits}bxf32"), false, false), ("4bx4b".into(), true, false), ("4bx4bt".into(), true, true)]
            {
                if coded && bits != 4 {
                    continue;
                }
                let qb = if trans { &qbt } else { &qb };
                let record = |e: &mut wgpu::CommandEncoder, tile: Option<Tile>| match (coded, tile) {
                    (false, None) => levels.encode(gpu, e, &qa, bt.buffer(), n, false, &epi, &c),
                    (false, Some(t)) => levels.encode_with(gpu, e, t, &qa, bt.buffer(), n, false, &epi, &c),
                    (true, None) => levels.encode_coded(gpu, e, &qa, qb, trans, &epi, &c),
                    (true, Some(t)) => levels.encode_coded_with(gpu, e, t, &qa, qb, trans, &epi, &c),
                };
                let t = gpu_seconds(gpu, iters, 3, |e| record(e, None))?;
                report(
                    &format!("gemm_levels_{line}"),
                    &format!("gemm_levels_tiled_{line}"),
                    flops / t / 1e9,
                    levels.uses_lanes(),
                    None,
                    levels.tuned(m, n, k),
                    &|tile| gpu_seconds(gpu, iters, 3, |e| record(e, Some(tile))),
                )?;
            }
        }
    }
    Ok(())
}

/// Runs every tile of every GEMM (and the cooperative kernels, where the adapter has them) on a
/// 1024³ product for at least 1.5 s before anything is timed.
/// On the H100 a freshly built GEMM pipeline ran 2–5× below its steady speed for its first
/// half-second or so of use (seen with the unchecked shaders), which a single warm-up call per
/// measurement did not cover.
#[allow(clippy::too_many_arguments)]
fn warm_up(
    gpu: &Gpu,
    f32k: &GemmF32,
    qz: &Quantizer,
    int_pairs: &[(Format, Format)],
    ints: &[GemmInt],
    fp8: &GemmFp8,
    levels: &GemmLevels,
    ts: &TinyScript,
) -> Result<()> {
    let s = 1024;
    let av: Vec<f32> = (0..(s * s) as u32).map(|i| lowbit::rng::uniform(3, i) - 0.5).collect();
    let at = GpuTensor::from_slice(gpu, &av, &[s, s])?;
    let c = GpuBuffer::<f32>::zeros(gpu, "warm c", s * s)?;
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let q8 = qz.quantize(gpu, &mut enc, &at, QuantScheme::per_row(Format::Int8))?;
    let q4 = qz.quantize(gpu, &mut enc, &at, QuantScheme::per_row(Format::Int4))?;
    let q2 = qz.quantize(gpu, &mut enc, &at, QuantScheme::per_row(Format::Int2))?;
    let ql = qz.quantize(gpu, &mut enc, &at, QuantScheme::per_row(Format::Log4))?;
    let qf = qz.quantize(gpu, &mut enc, &at, QuantScheme::per_row(Format::Fp8E4M3))?;
    let qt = ts.encode_quantize(gpu, &mut enc, at.buffer(), s, s, &LevelTable::uniform(4)?, Rounding::Nearest)?;
    gpu.queue.submit([enc.finish()]);
    let operands = |f: Format| match f {
        Format::Int4 => &q4,
        Format::Int2 => &q2,
        Format::Log4 => &ql,
        _ => &q8,
    };
    let epi = Epilogue::default();
    let start = std::time::Instant::now();
    let mut rounds = 0;
    while rounds < 3 || start.elapsed().as_secs_f64() < 1.5 {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for t in Tile::ALL {
            f32k.encode_with(gpu, &mut enc, t, at.buffer(), at.buffer(), GemmShape::nt(s, s, s), &epi, &c)?;
            fp8.encode_with(gpu, &mut enc, t, &qf, &qf, &epi, &c)?;
            levels.encode_with(gpu, &mut enc, t, &qt, at.buffer(), s, false, &epi, &c)?;
            levels.encode_coded_with(gpu, &mut enc, t, &qt, &qt, false, &epi, &c)?;
            for (&(fa, fb), k) in int_pairs.iter().zip(ints) {
                k.encode_with(gpu, &mut enc, t, operands(fa), operands(fb), &epi, &c)?;
            }
        }
        if fp8.coop_size().is_some() {
            fp8.encode_coop(gpu, &mut enc, &qf, &qf, &epi, &c)?;
        }
        for (&(fa, fb), k) in int_pairs.iter().zip(ints).filter(|(_, k)| k.coop_size().is_some()) {
            k.encode_coop(gpu, &mut enc, operands(fa), operands(fb), &epi, &c)?;
        }
        gpu.queue.submit([enc.finish()]);
        gpu.wait()?;
        rounds += 1;
    }
    Ok(())
}

fn quantizers(gpu: &Gpu, a: &Args) -> Result<()> {
    let cols = a.cols;
    let rows = a.elements.div_ceil(cols);
    let n = rows * cols;
    let x: Vec<f32> = (0..n as u32).map(|i| lowbit::rng::uniform(7, i) * 2.0 - 1.0).collect();
    let xb = GpuBuffer::from_slice(gpu, "x", &x)?;
    let copy_dst = GpuBuffer::<f32>::zeros(gpu, "copy dst", n)?;
    let copy = Copy::new(gpu)?;
    // The copy is timed again beside every line, just before its kernel: on llvmpipe the machine's
    // speed drifts within a run (the same quantizer's ratio was 0.11 in one full run and 0.35 in
    // the next, against a copy timed once at the start), so each line's ratio is to its own copy.
    let copy_secs = || gpu_seconds(gpu, a.iters, 3, |e| copy.encode(gpu, e, &xb, &copy_dst));
    let absmax = Absmax::new(gpu)?;
    let tensor_amax = GpuBuffer::<u32>::zeros(gpu, "tensor amax", 1)?;
    let sr = Rounding::Stochastic { seed: 1, stream: 0 };
    for &f in &a.formats {
        let quant = Quantize::new(gpu, f)?;
        let fused = QuantizeFused::new(gpu, f)?;
        let fused_t = QuantizeTransposeFused::new(gpu, f)?;
        let transpose = QuantizeTranspose::new(gpu, f)?;
        let deq = Dequantize::new(gpu, f)?;
        let line = |kernel: &str, gran: Granularity, rounding: &str, bytes: f64, secs: (f64, f64)| {
            quant_line((kernel, f.name(), &gran.to_string(), rounding), n, bytes, secs)
        };
        // Block formats carry their own blocks.
        let grans = match f.block() {
            Some(b) => vec![Granularity::PerBlock(b)],
            None => vec![Granularity::PerRow, Granularity::PerBlock(32), Granularity::PerTensor],
        };
        for gran in grans {
            let l = QuantLayout::new(rows, cols, f, gran)?;
            let codes = GpuBuffer::<u32>::zeros(gpu, "codes", l.words())?;
            let scales = GpuBuffer::<f32>::zeros(gpu, "scales", l.n_groups as usize)?;
            let amax = GpuBuffer::<u32>::zeros(gpu, "amax", l.amax_len())?;
            let bytes = (4 * n + 4 * l.words() + 4 * l.n_groups as usize) as f64;
            for (rname, r) in [("nearest", Rounding::Nearest), ("stochastic", sr)] {
                if QuantizeFused::supports(&l) {
                    let tc = copy_secs()?;
                    let t = gpu_seconds(gpu, a.iters, 3, |e| fused.encode(gpu, e, &xb, &l, r, &codes, &scales))?;
                    line("quantize_fused", gran, rname, bytes, (t, tc));
                } else if QuantizeFused::supports_with_tensor_amax(&l) {
                    // NVFP4: the tensor's maximum first, then the one-pass kernel.
                    let whole = QuantLayout::new(rows, cols, Format::Fp4E2M1, Granularity::PerTensor)?;
                    let tc = copy_secs()?;
                    let t = gpu_seconds(gpu, a.iters, 3, |e| {
                        absmax.encode(gpu, e, &xb, &whole, false, &tensor_amax)?;
                        fused.encode_with_tensor_amax(gpu, e, &xb, &l, r, &tensor_amax, &codes, &scales)
                    })?;
                    line("quantize_fused_two_launch", gran, rname, bytes, (t, tc));
                }
                let tc = copy_secs()?;
                let t = gpu_seconds(gpu, a.iters, 3, |e| {
                    absmax.encode(gpu, e, &xb, &l, false, &amax)?;
                    quant.encode(gpu, e, &xb, &amax, &l, r, 1, &codes, &scales)
                })?;
                line("quantize_two_pass", gran, rname, bytes, (t, tc));
            }
            if gran == Granularity::native(f) {
                let out = GpuBuffer::<f32>::zeros(gpu, "out", n)?;
                let tc = copy_secs()?;
                let t = gpu_seconds(gpu, a.iters, 3, |e| deq.encode(gpu, e, &codes, &scales, &l, &out))?;
                line("dequantize", gran, "-", bytes, (t, tc));
                // xᵀ (the backward's operands): the one-pass kernel beside the chain it
                // replaces.
                let lt = QuantLayout::new(cols, rows, f, gran)?;
                if QuantizeTransposeFused::supports(&lt) {
                    let (codes_t, scales_t) = (
                        GpuBuffer::<u32>::zeros(gpu, "codes t", lt.words())?,
                        GpuBuffer::<f32>::zeros(gpu, "scales t", lt.n_groups as usize)?,
                    );
                    let amax_t = GpuBuffer::<u32>::zeros(gpu, "amax t", lt.amax_len())?;
                    let bytes_t = (4 * n + 4 * lt.words() + 4 * lt.n_groups as usize) as f64;
                    let tc = copy_secs()?;
                    let t =
                        gpu_seconds(gpu, a.iters, 3, |e| fused_t.encode(gpu, e, &xb, &lt, sr, &codes_t, &scales_t))?;
                    line("quantize_transpose_fused", gran, "stochastic", bytes_t, (t, tc));
                    let tc = copy_secs()?;
                    let t = gpu_seconds(gpu, a.iters, 3, |e| {
                        absmax.encode(gpu, e, &xb, &lt, true, &amax_t)?;
                        transpose.encode(gpu, e, &xb, &amax_t, &lt, sr, 1, &codes_t, &scales_t)
                    })?;
                    line("quantize_transpose_two_pass", gran, "stochastic", bytes_t, (t, tc));
                }
                // The rotated weight-gradient operand of the block-scaled formats (R = x·D·H16 in
                // blocks of 16 down x's rows, Rᵀ quantized per block): the one launch beside the
                // chain it replaces, and with x's own blocks too beside the two launches apart.
                if f.block().is_some() && HadamardQuantizeTranspose::supports(&lt, ROTATION) {
                    rotated_lines(gpu, a, (&fused, &fused_t, sr), &xb, (&l, &lt), &copy_secs, &line)?;
                }
            }
            if gran == Granularity::PerTensor {
                // The transposing quantizer: x is [rows, cols], its transpose [cols, rows] is packed.
                let lt = QuantLayout::new(cols, rows, f, gran)?;
                let codes_t = GpuBuffer::<u32>::zeros(gpu, "codes t", lt.words())?;
                let tc = copy_secs()?;
                let t = gpu_seconds(gpu, a.iters, 3, |e| {
                    absmax.encode(gpu, e, &xb, &l, false, &amax)?;
                    transpose.encode(gpu, e, &xb, &amax, &lt, sr, 1, &codes_t, &scales)
                })?;
                line("quantize_transpose", gran, "stochastic", (4 * n + 4 * lt.words() + 4) as f64, (t, tc));
            }
        }
    }
    if a.tinyscript {
        tinyscript_lines(gpu, a, &xb, (rows, cols), &copy_secs)?;
    }
    Ok(())
}

/// TinyScript's quantizer over x (`[rows, cols]`) onto evenly spaced signed 4- and 3-bit tables,
/// one scale per row: `tinyscript_quantize` with nearest and stochastic rounding, and
/// `tinyscript_quantize_transpose` (xᵀ's rows, as a weight gradient's operand takes them),
/// each recorded once into a step plan's tape and replayed as training replays it (its codes in
/// the plan's arena), timed after its own copy; bytes are x read and the codes and scales written.
fn tinyscript_lines(
    gpu: &Gpu,
    a: &Args,
    xb: &GpuBuffer<f32>,
    (rows, cols): (usize, usize),
    copy_secs: &dyn Fn() -> Result<f64>,
) -> Result<()> {
    let ts = TinyScript::new(gpu)?;
    let n = rows * cols;
    let sr = Rounding::Stochastic { seed: 1, stream: 0 };
    let views = [
        ("tinyscript_quantize", "nearest", Rounding::Nearest, false),
        ("tinyscript_quantize", "stochastic", sr, false),
        ("tinyscript_quantize_transpose", "stochastic", sr, true),
    ];
    for table in [LevelTable::uniform(4)?, LevelTable::uniform(3)?] {
        for (kernel, rounding_name, rounding, transposed) in views {
            let (r, c) = if transposed { (cols, rows) } else { (rows, cols) };
            let mut tape = Tape::new(gpu);
            let q = ts.encode_quantize_as(gpu, &mut tape, xb, r, c, transposed, &table, rounding)?;
            let plan = tape.finish(&mut Arena::new())?;
            let words = r * c.div_ceil(table.per_word() as usize);
            let bytes = (4 * n + 4 * words + 4 * r) as f64;
            let tc = copy_secs()?;
            let t = pass_seconds(gpu, a.iters, 3, |rec| {
                plan.record(rec);
                Ok(())
            })?;
            drop(q);
            quant_line((kernel, &format!("tinyscript{}", table.bits), "row", rounding_name), n, bytes, (t, tc));
        }
    }
    Ok(())
}

/// Prints a quantizer line: (kernel, format, granularity, rounding), x's elements, the bytes moved,
/// (the kernel's seconds, the copy's of 8 bytes an element).
fn quant_line(
    (kernel, format, gran, rounding): (&str, &str, &str, &str),
    n: usize,
    bytes: f64,
    (secs, copy_secs): (f64, f64),
) {
    let gbps = bytes / secs / 1e9;
    let copy_gbps = (8 * n) as f64 / copy_secs / 1e9;
    println!(
        "{}",
        json!({"kernel": kernel, "format": format, "granularity": gran, "rounding": rounding, "elements": n,
               "gbps": (gbps * 100.0).round() / 100.0, "copy_gbps": (copy_gbps * 100.0).round() / 100.0, "ratio": (gbps / copy_gbps * 1000.0).round() / 1000.0})
    );
}

/// A quantizer line's printer: kernel, granularity, rounding, bytes moved, (its seconds, the
/// copy's).
type Line<'a> = dyn Fn(&str, Granularity, &str, f64, (f64, f64)) + 'a;

/// The rotated lines of a block-scaled format over x (`[rows, cols]`, layout `lx`; L = Rᵀ's layout
/// `lt`), with `quantize_x` and `chain_t` (the caller's one-pass quantizers of that format, of x
/// and of a transpose) for x's own blocks and the chain's Rᵀ, rounding `sr` and the training
/// presets' random signs, each timed after its own copy:
/// `hadamard_quantize_transpose` (with NVFP4 the maxima launch its block scales read first, as
/// training takes it on a GPU) beside `hadamard_then_quantize_transpose` (R written by `hadamard`,
/// then `quantize_transpose_fused`: a CPU adapter's NVFP4 chain), and where the adapter binds it
/// `hadamard_quantize_transpose_both` (x's own blocks in the same launch) beside
/// `hadamard_quantize_transpose_apart` (the one launch, then `quantize_fused` of x).
fn rotated_lines(
    gpu: &Gpu,
    a: &Args,
    (quantize_x, chain_t, sr): (&QuantizeFused, &QuantizeTransposeFused, Rounding),
    xb: &GpuBuffer<f32>,
    (lx, lt): (&QuantLayout, &QuantLayout),
    copy_secs: &dyn Fn() -> Result<f64>,
    line: &Line,
) -> Result<()> {
    let (rows, cols) = (lx.rows as usize, lx.cols as usize);
    let (f, gran) = (lt.format, lt.granularity);
    let signs = RANDOM_SIGNS;
    let nvfp4 = f.needs_tensor_amax();
    let fused = HadamardQuantizeTranspose::new(gpu, f)?;
    let hadamard = Hadamard::new(gpu)?;
    let (codes, scales) = (
        GpuBuffer::<u32>::zeros(gpu, "rotated codes", lt.words())?,
        GpuBuffer::<f32>::zeros(gpu, "rotated scales", lt.n_groups as usize)?,
    );
    let (codes_x, scales_x) = (
        GpuBuffer::<u32>::zeros(gpu, "codes of x", lx.words())?,
        GpuBuffer::<f32>::zeros(gpu, "scales of x", lx.n_groups as usize)?,
    );
    let r = GpuBuffer::<f32>::zeros(gpu, "rotated", rows * cols)?;
    let (amax, amax_x) =
        (GpuBuffer::<u32>::zeros(gpu, "rotated amax", 1)?, GpuBuffer::<u32>::zeros(gpu, "amax of x", 1)?);
    let extras = RotatedExtras { tensor_amax: nvfp4.then_some(&amax), ..Default::default() };
    let n = rows * cols;
    let bytes_t = (4 * n + 4 * lt.words() + 4 * lt.n_groups as usize) as f64;
    let bytes_both = bytes_t + (4 * lx.words() + 4 * lx.n_groups as usize) as f64;
    // NVFP4's maxima launch (R's, and with `input` x's own), before the launches that read them.
    let maxima = |e: &mut wgpu::CommandEncoder, input: bool| -> Result<()> {
        match nvfp4 {
            true => hadamard.encode_maxima(
                gpu,
                e,
                xb,
                (rows, cols),
                ROTATION,
                Axis::Rows,
                signs,
                None,
                &amax,
                input.then_some(&amax_x),
            ),
            false => Ok(()),
        }
    };
    let one_launch = |e: &mut wgpu::CommandEncoder| fused.encode(gpu, e, xb, lt, signs, sr, 1, extras, &codes, &scales);
    let tc = copy_secs()?;
    let t = gpu_seconds(gpu, a.iters, 3, |e| {
        maxima(e, false)?;
        one_launch(e)
    })?;
    line("hadamard_quantize_transpose", gran, "stochastic", bytes_t, (t, tc));
    let tc = copy_secs()?;
    let t = gpu_seconds(gpu, a.iters, 3, |e| match nvfp4 {
        true => {
            hadamard.encode_signed_with_amax(gpu, e, xb, &r, (rows, cols), ROTATION, Axis::Rows, signs, &amax)?;
            chain_t.encode_with_tensor_amax(gpu, e, &r, lt, sr, &amax, &codes, &scales)
        }
        false => {
            hadamard.encode_signed(gpu, e, xb, &r, (rows, cols), ROTATION, Axis::Rows, signs)?;
            chain_t.encode(gpu, e, &r, lt, sr, &codes, &scales)
        }
    })?;
    line("hadamard_then_quantize_transpose", gran, "stochastic", bytes_t, (t, tc));
    if !(HadamardQuantizeTranspose::takes_both(gpu) && HadamardQuantizeTranspose::supports_both(lt, ROTATION, lx)) {
        return Ok(());
    }
    let x_side = Unrotated {
        layout: lx,
        rounding: sr,
        tensor_amax: nvfp4.then_some(&amax_x),
        codes: &codes_x,
        scales: &scales_x,
    };
    let tc = copy_secs()?;
    let t = gpu_seconds(gpu, a.iters, 3, |e| {
        maxima(e, true)?;
        fused.encode_both(gpu, e, xb, lt, signs, sr, extras, (&codes, &scales), x_side)
    })?;
    line("hadamard_quantize_transpose_both", gran, "stochastic", bytes_both, (t, tc));
    let tc = copy_secs()?;
    let t = gpu_seconds(gpu, a.iters, 3, |e| {
        maxima(e, true)?;
        one_launch(e)?;
        match nvfp4 {
            true => quantize_x.encode_with_tensor_amax(gpu, e, xb, lx, sr, &amax_x, &codes_x, &scales_x),
            false => quantize_x.encode(gpu, e, xb, lx, sr, &codes_x, &scales_x),
        }
    })?;
    line("hadamard_quantize_transpose_apart", gran, "stochastic", bytes_both, (t, tc));
    Ok(())
}

/// The quantized convolution's unfolding quantizers at `resnet20`'s convolutions (batch 16), beside
/// `im2col` (the fp32 step's unfold, writing cols) on the same geometry in the same run: the
/// forward's `im2col_quantize` (codes of cols' rows, cols not written) and the weight gradient's
/// `im2col_quantize_transpose` (codes of colsᵀ's rows), each with the two-launch chain it replaces
/// (`im2col`, then `quantize_fused` or `quantize_transpose_fused`). Per-row scales, round to
/// nearest; "ratio" is the `im2col` time over the kernel's (above 1: faster than the fp32 unfold).
fn unfolds(gpu: &Gpu, a: &Args) -> Result<()> {
    let batch = 16;
    // (h, w, c, kernel, stride, pad, convolutions of the geometry in resnet20).
    let geoms = [
        (32, 32, 3, 3, 1, 1, 1),
        (32, 32, 16, 3, 1, 1, 6),
        (32, 32, 16, 3, 2, 1, 1),
        (32, 32, 16, 1, 2, 0, 1),
        (16, 16, 32, 3, 1, 1, 5),
        (16, 16, 32, 3, 2, 1, 1),
        (16, 16, 32, 1, 2, 0, 1),
        (8, 8, 64, 3, 1, 1, 5),
    ];
    let im2col = Im2col::new(gpu)?;
    let formats: Vec<Format> = a.formats.iter().copied().filter(|f| f.block().is_none()).collect();
    let kernels: Vec<_> = formats
        .iter()
        .map(|&f| -> Result<_> {
            Ok((Im2colQuantize::new(gpu, f)?, Im2colQuantizeTranspose::new(gpu, f)?, QuantizeFused::new(gpu, f)?))
        })
        .collect::<Result<_>>()?;
    let qz = Quantizer::new(gpu)?;
    for (h, w, c, k, stride, pad, count) in geoms {
        let g = ConvGeom { batch, h, w, c, kh: k, kw: k, stride, pad };
        let x: Vec<f32> = (0..g.input_len() as u32).map(|i| lowbit::rng::uniform(11, i) * 2.0 - 1.0).collect();
        let xb = GpuBuffer::from_slice(gpu, "x", &x)?;
        let cols = GpuBuffer::<f32>::zeros(gpu, "cols", g.rows() * g.kdim())?;
        let t_im2col = gpu_seconds(gpu, a.iters, 3, |e| im2col.encode_unfold(gpu, e, &g, &xb, &cols))?;
        let shape = format!("{h}x{w}x{c} k{k} s{stride}");
        for (&f, (fwd, dw, fused)) in formats.iter().zip(&kernels) {
            let line = |kernel: &str, secs: f64| {
                println!(
                    "{}",
                    json!({"kernel": kernel, "format": f.name(), "conv": shape, "batch": batch, "count": count,
                           "us": (secs * 1e7).round() / 10.0, "im2col_us": (t_im2col * 1e7).round() / 10.0,
                           "ratio": (t_im2col / secs * 1000.0).round() / 1000.0})
                );
            };
            let l = QuantLayout::new(g.rows(), g.kdim(), f, Granularity::PerRow)?;
            let lt = QuantLayout::new(g.kdim(), g.rows(), f, Granularity::PerRow)?;
            let (codes, scales) =
                (GpuBuffer::<u32>::zeros(gpu, "codes", l.words())?, GpuBuffer::<f32>::zeros(gpu, "scales", g.rows())?);
            let (codes_t, scales_t) = (
                GpuBuffer::<u32>::zeros(gpu, "codes t", lt.words())?,
                GpuBuffer::<f32>::zeros(gpu, "scales t", g.kdim())?,
            );
            let r = Rounding::Nearest;
            if Im2colQuantize::supports(&l) {
                let t = gpu_seconds(gpu, a.iters, 3, |e| fwd.encode(gpu, e, &g, &xb, None, &l, r, &codes, &scales))?;
                line("im2col_quantize", t);
                let t = gpu_seconds(gpu, a.iters, 3, |e| {
                    im2col.encode_unfold(gpu, e, &g, &xb, &cols)?;
                    fused.encode(gpu, e, &cols, &l, r, &codes, &scales)
                })?;
                line("im2col_then_quantize_fused", t);
            }
            if Quantizer::unfolds_both_together(gpu, &g, &l, &lt) {
                let t = gpu_seconds(gpu, a.iters, 3, |e| {
                    let side = Side { layout: &l, rounding: r, codes: &codes, scales: &scales };
                    let side_t = Side { layout: &lt, rounding: r, codes: &codes_t, scales: &scales_t };
                    fwd.encode_both(gpu, e, &g, &xb, (side, side_t))
                })?;
                line("im2col_quantize_both", t);
                let t = gpu_seconds(gpu, a.iters, 3, |e| {
                    fwd.encode(gpu, e, &g, &xb, None, &l, r, &codes, &scales)?;
                    dw.encode(gpu, e, &g, &xb, &lt, r, 1, &codes_t, &scales_t)
                })?;
                line("im2col_quantize_apart", t);
            }
            if Im2colQuantizeTranspose::supports(&lt) {
                let t = gpu_seconds(gpu, a.iters, 3, |e| dw.encode(gpu, e, &g, &xb, &lt, r, 1, &codes_t, &scales_t))?;
                line("im2col_quantize_transpose", t);
                // What it replaced: im2col, then the transposing quantizer the adapter takes over
                // cols (the one-pass kernel on a CPU adapter; on a GPU's layouts, long rows the
                // chain absmax -> quantize_transpose).
                let cols_t = GpuTensor::from_buffer(cols.clone(), &[g.rows(), g.kdim()])?;
                let t = gpu_seconds(gpu, a.iters, 3, |e| {
                    im2col.encode_unfold(gpu, e, &g, &xb, &cols)?;
                    qz.quantize_transposed(gpu, e, &cols_t, QuantScheme::per_row(f)).map(|_| ())
                })?;
                line("im2col_then_quantize_transposed", t);
            }
        }
    }
    Ok(())
}

fn optimizers(gpu: &Gpu, a: &Args) -> Result<()> {
    let per_tensor = Sgd::with_options(gpu, gpu.cpu_layouts(), false)?;
    let multi = Sgd::new(gpu)?;
    let copy = Copy::new(gpu)?;
    for (model, input) in [("mlp", (28, 28, 1)), ("resnet20", (32, 32, 3))] {
        let spec = ModelSpec::by_name(model, input, 10)?;
        let t = Trainer::new(gpu, spec, TrainScheme::preset("fp32")?, OptimConfig::default(), 1)?;
        let lens: Vec<usize> = t
            .parameters()?
            .into_iter()
            .filter(|(name, _, _)| !name.ends_with("running_mean") && !name.ends_with("running_var"))
            .map(|(_, shape, _)| shape.iter().product())
            .collect();
        let n: usize = lens.iter().sum();
        let bufs = lens
            .iter()
            .enumerate()
            .map(|(j, &len)| {
                let w: Vec<f32> = (0..len as u32).map(|i| lowbit::rng::uniform(11 + j as u32, i) - 0.5).collect();
                Ok((
                    GpuBuffer::from_slice(gpu, "w", &w)?,
                    GpuBuffer::<f32>::zeros(gpu, "v", len)?,
                    GpuBuffer::from_slice(gpu, "g", &w)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let tensors: Vec<OptimTensor> =
            bufs.iter().map(|(w, v, g)| OptimTensor { w, state: v, g, weight_decay: 5e-4 }).collect();
        let (src, dst) = (GpuBuffer::<f32>::zeros(gpu, "copy src", n)?, GpuBuffer::<f32>::zeros(gpu, "copy dst", n)?);
        let t_copy = pass_seconds(gpu, a.iters, 3, |r| copy.encode(gpu, r, &src, &dst))?;
        let copy_gbps = (8 * n) as f64 / t_copy / 1e9;
        let bytes = (20 * n) as f64;
        let mut secs = Vec::new();
        for (kernel, k) in [("sgd_per_tensor", &per_tensor), ("sgd_multi_tensor", &multi)] {
            let s = pass_seconds(gpu, a.iters, 3, |r| k.encode_many(gpu, r, &tensors, 1e-3, 0.9))?;
            let gbps = bytes / s / 1e9;
            println!(
                "{}",
                json!({"kernel": kernel, "model": model, "tensors": lens.len(), "elements": n,
                       "launches": k.dispatches(&lens), "us": (s * 1e7).round() / 10.0,
                       "gbps": (gbps * 100.0).round() / 100.0, "copy_gbps": (copy_gbps * 100.0).round() / 100.0,
                       "ratio": (gbps / copy_gbps * 1000.0).round() / 1000.0})
            );
            secs.push(s);
        }
        println!(
            "{}",
            json!({"kernel": "sgd_multi_vs_per_tensor", "model": model, "speedup": (secs[0] / secs[1] * 100.0).round() / 100.0})
        );
        // The step's check before the update: every weight and gradient (8 bytes a value pair
        // read, as a copy moves 8 bytes a value), on each of finite's entries.
        let checked: Vec<&GpuBuffer<f32>> = bufs.iter().flat_map(|(w, _, g)| [w, g]).collect();
        let status = GpuBuffer::from_slice(gpu, "status", &lowbit::kernels::finite::CLEAR)?;
        for (entry, path, vec4) in [
            ("tree", ReducePath::Tree, false),
            ("per_thread", ReducePath::PerThread, false),
            ("per_thread_v4", ReducePath::PerThread, true),
        ] {
            let k = Finite::with_options(gpu, path, vec4)?;
            let s = pass_seconds(gpu, a.iters, 3, |r| k.encode(gpu, r, &checked, &status))?;
            let gbps = (8 * n) as f64 / s / 1e9;
            println!(
                "{}",
                json!({"kernel": "finite", "entry": entry, "model": model, "buffers": checked.len(), "elements": 2 * n,
                       "launches": checked.len().div_ceil(k.per_dispatch()),
                       "us": (s * 1e7).round() / 10.0, "gbps": (gbps * 100.0).round() / 100.0,
                       "copy_gbps": (copy_gbps * 100.0).round() / 100.0,
                       "ratio": (gbps / copy_gbps * 1000.0).round() / 1000.0})
            );
        }
    }
    Ok(())
}
