//! Step plans: a recorded kernel sequence replayed with a new step state gives bit for bit what
//! recording the same launchers anew with the state's streams and rate gives, creates nothing
//! per replay, shares scratch storage between values whose lifetimes do not overlap, and does
//! not depend on what scratch storage held before (poisoned plans give the same bits).

mod common;
use common::{assert_f32_bits_eq, data, gpu};

use lowbit::format::Format;
use lowbit::kernels::col_sum::ColSum;
use lowbit::kernels::sgd::{Sgd, SgdStep};
use lowbit::plan::{Arena, PlanOptions, Tape};
use lowbit::quant::Quantizer;
use lowbit::record::StepState;
use lowbit::scheme::{Granularity, QuantScheme, Rounding};
use lowbit::{Error, Gpu, GpuBuffer, GpuTensor, Record, Recorder};

const ROWS: usize = 37;
const COLS: usize = 65;
const SEED: u32 = 2024;

struct Kernels {
    qz: Quantizer,
    sum: ColSum,
    sgd: Sgd,
}

/// A little step: x quantized transposed (per block, stochastic, two-pass) and per row
/// (stochastic, one pass), both dequantized; their column sums are the gradients of SGD updates
/// of `w` `[COLS]` and `u` `[ROWS]` (velocities after them in `v`). `stream` is the first
/// stochastic stream, `lr` the SGD rate.
fn record(g: &Gpu, k: &Kernels, rec: &mut impl Record, x: &GpuTensor, p: &Params, stream: u32, lr: f32) {
    let s1 = QuantScheme { format: Format::Int4, granularity: Granularity::PerBlock(16), rounding: Rounding::Nearest }
        .stochastic(SEED, stream);
    let qt = k.qz.quantize_transposed(g, rec, x, s1).unwrap();
    let dt = k.qz.dequantize(g, rec, &qt).unwrap(); // [COLS, ROWS]
    let s2 = QuantScheme::per_row(Format::Log4).stochastic(SEED, stream + 1);
    let q = k.qz.quantize(g, rec, x, s2).unwrap();
    let d = k.qz.dequantize(g, rec, &q).unwrap(); // [ROWS, COLS]
    let gw = rec.scratch::<f32>(g, "grad w", COLS).unwrap();
    k.sum.encode(g, rec, d.buffer(), ROWS, COLS, &gw).unwrap();
    let gu = rec.scratch::<f32>(g, "grad u", ROWS).unwrap();
    k.sum.encode(g, rec, dt.buffer(), COLS, ROWS, &gu).unwrap();
    k.sgd.encode(g, rec, &p.w, &p.vw, &gw, SgdStep { lr, momentum: 0.9, weight_decay: 0.01 }).unwrap();
    k.sgd.encode(g, rec, &p.u, &p.vu, &gu, SgdStep { lr: 0.5 * lr, momentum: 0.5, weight_decay: 0.0 }).unwrap();
}

struct Params {
    w: GpuBuffer<f32>,
    vw: GpuBuffer<f32>,
    u: GpuBuffer<f32>,
    vu: GpuBuffer<f32>,
}

fn params(g: &Gpu) -> Params {
    Params {
        w: GpuBuffer::from_slice(g, "w", &data(COLS, 8, false)).unwrap(),
        vw: GpuBuffer::zeros(g, "vw", COLS).unwrap(),
        u: GpuBuffer::from_slice(g, "u", &data(ROWS, 10, false)).unwrap(),
        vu: GpuBuffer::zeros(g, "vu", ROWS).unwrap(),
    }
}

#[test]
fn a_plan_replays_what_the_launchers_record_and_creates_nothing_per_step() {
    // A device of its own: the creation counters count every thread's work on a device, and the
    // other tests of this binary run beside this one.
    let own = Gpu::new().unwrap();
    let g = &own;
    let k = Kernels { qz: Quantizer::new(g).unwrap(), sum: ColSum::new(g).unwrap(), sgd: Sgd::new(g).unwrap() };
    let x = GpuTensor::from_slice(g, &data(ROWS * COLS, 7, true), &[ROWS, COLS]).unwrap();
    let steps = [(0u32, 0.1f32), (7, 0.05), (19, 0.2), (7, 0.05)];
    // Eager: every step records the launchers anew with its stream and rate.
    let pe = params(g);
    let mut eager_dispatches = 0;
    for &(base, lr) in &steps {
        let mut rec = Recorder::new(g, "eager");
        record(g, &k, &mut rec, &x, &pe, base, lr);
        eager_dispatches = rec.dispatches();
        g.submit([rec.finish()]);
    }
    let want = [pe.w.read(g).unwrap(), pe.u.read(g).unwrap()];
    for opts in [PlanOptions::default(), PlanOptions { poison: true, ..Default::default() }] {
        let p = params(g);
        let mut tape = Tape::new(g);
        record(g, &k, &mut tape, &x, &p, 0, 1.0);
        let mut arena = Arena::new();
        let plan = tape.finish_with(&mut arena, opts).unwrap();
        let stats = plan.stats();
        // The plan keeps every dispatch the launchers recorded eagerly (two quantizers and two
        // dequantizers, two column sums, two updates: at least 8), and their scratch values.
        assert!(
            stats.dispatches == eager_dispatches as usize && eager_dispatches >= 8,
            "{stats:?} vs {eager_dispatches}"
        );
        assert!(stats.scratch_values >= 8, "{stats:?}");
        for (i, &(base, lr)) in steps.iter().enumerate() {
            let before = g.creations();
            plan.set_step(StepState { stream_base: base, lr, step: i as u32, ..StepState::UNIT });
            let mut rec = Recorder::new(g, "replay");
            plan.record(&mut rec);
            g.submit([rec.finish()]);
            if i > 0 {
                assert_eq!(g.creations() - before, Default::default(), "a replay creates nothing");
            }
        }
        assert_f32_bits_eq(&format!("planned w ({opts:?})"), &p.w.read(g).unwrap(), &want[0]);
        assert_f32_bits_eq(&format!("planned u ({opts:?})"), &p.u.read(g).unwrap(), &want[1]);
    }
}

#[test]
fn scratch_values_with_disjoint_lifetimes_share_storage_across_plans() {
    // A device of its own, as above: this test counts the buffers a plan creates.
    let own = Gpu::new().unwrap();
    let g = &own;
    let k = Kernels { qz: Quantizer::new(g).unwrap(), sum: ColSum::new(g).unwrap(), sgd: Sgd::new(g).unwrap() };
    let x = GpuTensor::from_slice(g, &data(ROWS * COLS, 9, false), &[ROWS, COLS]).unwrap();
    let p = params(g);
    let mut arena = Arena::new();
    let build = |arena: &mut Arena, opts| {
        let mut tape = Tape::new(g);
        record(g, &k, &mut tape, &x, &p, 0, 1.0);
        tape.finish_with(arena, opts).unwrap()
    };
    let alone = build(&mut Arena::new(), PlanOptions { no_sharing: true, ..Default::default() }).stats();
    assert_eq!(alone.slot_bytes, alone.scratch_bytes);
    let a = build(&mut arena, PlanOptions::default()).stats();
    assert!(a.slot_bytes < a.scratch_bytes, "lifetimes that do not overlap share: {a:?}");
    let held = (arena.len(), arena.bytes());
    // A second plan of the same shapes takes the same arena buffers.
    let before = g.creations();
    let b = build(&mut arena, PlanOptions::default()).stats();
    assert_eq!(b, a);
    assert_eq!(
        g.creations().bind_groups - before.bind_groups,
        b.bind_groups as u64,
        "the plan's stats count its groups"
    );
    assert_eq!((arena.len(), arena.bytes()), held);
    // Only the placeholders are new, and the status word the tape makes for itself.
    assert_eq!(g.creations().buffers - before.buffers, b.scratch_values as u64 + 1);
}

#[test]
fn scratch_placeholders_cannot_be_read_from_the_host() {
    let g = gpu();
    let mut tape = Tape::new(g);
    let s = tape.scratch::<f32>(g, "s", 10).unwrap();
    assert!(s.is_scratch());
    assert!(matches!(s.read(g), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.write(g, &[0.0; 10]), Err(Error::InvalidArgument(_))));
    assert!(!GpuBuffer::<f32>::zeros(g, "real", 10).unwrap().is_scratch());
}

/// Clears that begin a scratch value's life (absmax's zeroing before its atomics) move to the
/// start of the plan: the replay keeps every dispatch in one compute pass where recording eagerly
/// takes a pass per clear, and the results stay bit for bit the same, with storage shared,
/// poisoned, or reused by a second plan in the same arena.
#[test]
fn clears_move_to_the_start_of_the_plan_and_keep_one_pass() {
    let g = gpu();
    let qz = Quantizer::new(g).unwrap();
    let x = GpuTensor::from_slice(g, &data(64 * 48, 12, true), &[64, 48]).unwrap();
    let y = GpuTensor::from_slice(g, &data(64 * 48, 13, false), &[64, 48]).unwrap();
    let out = GpuBuffer::<f32>::zeros(g, "out", 4 * 64 * 48).unwrap();
    // Four quantizations that each reduce into a cleared value (NVFP4's tensor maximum; a
    // per-tensor two-pass int8), each dequantized and copied out.
    let steps = |rec: &mut Recorder| {
        let nv = QuantScheme::native(Format::Nvfp4).stochastic(SEED, 3);
        let all = [
            qz.quantize(g, rec, &x, nv).unwrap(),
            qz.quantize_two_pass(g, rec, &y, QuantScheme::per_tensor(Format::Int8)).unwrap(),
            qz.quantize_transposed(g, rec, &y, nv).unwrap(),
            qz.quantize(g, rec, &y, nv).unwrap(),
        ];
        for (i, q) in all.iter().enumerate() {
            let d = qz.dequantize(g, rec, q).unwrap();
            rec.copy(d.buffer().buffer(), 0, out.buffer(), (i * 64 * 48 * 4) as u64, 64 * 48 * 4);
        }
    };
    let mut eager = Recorder::new(g, "eager");
    steps(&mut eager);
    assert!(eager.passes() >= 4, "eagerly each clear ends a pass: {}", eager.passes());
    g.submit([eager.finish()]);
    let want = out.read(g).unwrap();
    let mut arena = Arena::new();
    for opts in [PlanOptions::default(), PlanOptions { poison: true, ..Default::default() }, PlanOptions::default()] {
        let tape_steps = |tape: &mut Tape| {
            let nv = QuantScheme::native(Format::Nvfp4).stochastic(SEED, 3);
            let all = [
                qz.quantize(g, tape, &x, nv).unwrap(),
                qz.quantize_two_pass(g, tape, &y, QuantScheme::per_tensor(Format::Int8)).unwrap(),
                qz.quantize_transposed(g, tape, &y, nv).unwrap(),
                qz.quantize(g, tape, &y, nv).unwrap(),
            ];
            all.into_iter().map(|q| qz.dequantize(g, tape, &q).unwrap()).collect::<Vec<_>>()
        };
        let mut tape = Tape::new(g);
        let outs = tape_steps(&mut tape);
        for (i, d) in outs.iter().enumerate() {
            tape.copy(d.buffer().buffer(), 0, out.buffer(), (i * 64 * 48 * 4) as u64, 64 * 48 * 4);
        }
        let plan = tape.finish_with(&mut arena, opts).unwrap();
        assert_eq!(plan.stats().clears, 4, "{:?}", plan.stats());
        out.write(g, &vec![f32::NAN; 4 * 64 * 48]).unwrap();
        let mut rec = Recorder::new(g, "replay");
        plan.record(&mut rec);
        // The copies out come after every dispatch, so the dispatches share one pass (poison's
        // copies before first uses split it, as they always did).
        if !opts.poison {
            assert_eq!(rec.passes(), 1, "{opts:?}");
        }
        g.submit([rec.finish()]);
        assert_f32_bits_eq(&format!("planned ({opts:?})"), &out.read(g).unwrap(), &want);
    }
}
