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
    for &(base, lr) in &steps {
        let mut rec = Recorder::new(g, "eager");
        record(g, &k, &mut rec, &x, &pe, base, lr);
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
        assert!(stats.dispatches >= 10 && stats.scratch_values >= 8, "{stats:?}");
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
    let g = gpu();
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
