//! GEMMs against their CPU references.
//!
//! Tolerances (declared here, all worst-case bounds, so they cannot flake):
//! - f32 and FP8 GEMMs accumulate K products in f32: |gpu − ref| ≤ (K + 4)·2⁻²⁴·Σ|terms|
//!   (`F32_BOUND`; the FP8 operands dequantize exactly as the reference's).
//! - integer GEMMs: the i32 sums are exact (compared bit for bit in raw mode); the scaled epilogue
//!   adds per chunk one conversion and two multiplies and one add per chunk and sample:
//!   |gpu − ref| ≤ (chunks·samples + 6)·2⁻²³·Σ|terms| (`INT_EPILOGUE_BOUND`).

mod common;
use common::{assert_u32_eq, data, gpu, submit_with as submit};
use lowbit::format::Format;
use lowbit::kernels::gemm::{Epilogue, Tile};
use lowbit::kernels::gemm_f32::{GemmF32, GemmShape};
use lowbit::kernels::gemm_f32_lanes::GemmF32Lanes;
use lowbit::kernels::gemm_f32_naive::GemmF32Naive;
use lowbit::kernels::gemm_fp8::GemmFp8;
use lowbit::kernels::gemm_int::{int_tiles, GemmInt};
use lowbit::quant::{QuantizedTensor, Quantizer};
use lowbit::reference::gemm_f32::{EpilogueRef, RefOut};
use lowbit::scheme::{Granularity, QuantLayout, QuantScheme, Rounding};
use lowbit::{reference, Error, GpuBuffer, GpuTensor};
use std::sync::OnceLock;

const SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (33, 65, 17), (257, 129, 300), (5, 70, 1000)];

fn f32_bound(k: usize) -> f64 {
    (k as f64 + 4.0) * 2f64.powi(-24)
}

fn int_epilogue_bound(chunks: usize, samples: usize) -> f64 {
    (chunks * samples) as f64 * 2f64.powi(-23) + 6.0 * 2f64.powi(-23)
}

/// Whether a kernel that needs 8-lane subgroups runs on this adapter (`available`, as the kernel
/// says). lavapipe on x86 (CI's adapter) has them: a CPU adapter with such subgroups that lacks
/// the kernel is a failure, never a skip.
fn runs_lanes_kernel(name: &str, available: bool) -> bool {
    let g = gpu();
    let eight_lane_cpu = g.is_cpu() && g.report().subgroups && g.report().subgroup_sizes == Some((8, 8));
    assert!(!eight_lane_cpu || available, "a CPU adapter with 8-lane subgroups lacks {name}");
    available
}

/// Epilogue `variant` of the lanes kernels' tests and its reference: 0 none, 1 bias and ReLU,
/// 2 accumulating into C (holding `old`) and recording the maximum into `amax`.
fn epilogue_variant<'a>(
    variant: u32,
    bias: &'a [f32],
    biasb: &'a GpuBuffer<f32>,
    old: &'a [f32],
    amax: &'a GpuBuffer<u32>,
) -> (Epilogue<'a>, EpilogueRef<'a>) {
    match variant {
        0 => (Epilogue::default(), EpilogueRef::default()),
        1 => (
            Epilogue { bias: Some(biasb), relu: true, ..Default::default() },
            EpilogueRef { bias: Some(bias), relu: true, ..Default::default() },
        ),
        _ => (
            Epilogue { accumulate: true, amax: Some(amax), ..Default::default() },
            EpilogueRef { old: Some(old), ..Default::default() },
        ),
    }
}

/// A product split along K against the unsplit one, under every epilogue variant (bias and old C
/// drawn for `m × n` outputs): `split(rec, epi, c)` records the product (C holding old C),
/// `batched(rec, epi, c2)` two batched products (never split) of its operands stacked twice (C
/// holding old C twice), each into a recorder of its own. The split takes 2 launches, the
/// batched pair 1; the split's output is the pair's first bit for bit, and amax its largest
/// magnitude.
fn check_splits_against_batched(
    what: &str,
    (m, n): (usize, usize),
    split: impl Fn(&mut lowbit::Recorder, &Epilogue, &GpuBuffer<f32>),
    batched: impl Fn(&mut lowbit::Recorder, &Epilogue, &GpuBuffer<f32>),
) {
    let g = gpu();
    let (bias, old) = (data(n, 43, false), data(m * n, 44, false));
    let twice = [&old[..], &old[..]].concat();
    let biasb = common::buf(&bias);
    for variant in 0..3 {
        let what = format!("{what} epilogue {variant}");
        let (amax, amax2) =
            (GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap(), GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap());
        let (epi, _) = epilogue_variant(variant, &bias, &biasb, &old, &amax);
        let c = GpuBuffer::from_slice(g, "c", &old).unwrap();
        let mut rec = lowbit::Recorder::new(g, "split");
        split(&mut rec, &epi, &c);
        assert_eq!(rec.dispatches(), 2, "{what}: the splits and their combine");
        g.queue.submit([rec.finish()]);
        let (epi2, _) = epilogue_variant(variant, &bias, &biasb, &old, &amax2);
        let c2 = GpuBuffer::from_slice(g, "c", &twice).unwrap();
        let mut rec = lowbit::Recorder::new(g, "batched");
        batched(&mut rec, &epi2, &c2);
        assert_eq!(rec.dispatches(), 1, "{what}: batched, unsplit");
        g.queue.submit([rec.finish()]);
        let got = c.read(g).unwrap();
        common::assert_f32_bits_eq(&what, &got, &c2.read(g).unwrap()[..m * n]);
        if variant == 2 {
            let want = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
            assert_eq!(f32::from_bits(amax.read(g).unwrap()[0]), want, "{what}: amax");
        }
    }
}

fn qz() -> &'static Quantizer {
    static Q: OnceLock<Quantizer> = OnceLock::new();
    Q.get_or_init(|| Quantizer::new(gpu()).unwrap())
}

fn check(what: &str, got: &[f32], want: &RefOut, rel: f64) {
    let mut bad = Vec::new();
    for (i, &g) in got.iter().enumerate() {
        let tol = rel * want.magnitude[i] + 1e-30;
        if ((g as f64) - want.value[i]).abs() > tol {
            bad.push(format!("[{i}] gpu {g} ref {} (tol {tol:e})", want.value[i]));
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} of {} outside the bound; first: {}",
        bad.len(),
        got.len(),
        bad.iter().take(6).cloned().collect::<Vec<_>>().join(", ")
    );
}

#[test]
fn f32_gemms_match_the_reference_for_nt_nn_tn_and_every_epilogue() {
    let g = gpu();
    let tiled = GemmF32::new(g).unwrap();
    let naive = GemmF32Naive::new(g).unwrap();
    for &(m, n, k) in SHAPES {
        let a = data(m * k, 1, false);
        let b = data(n * k, 2, false);
        let bias = data(n, 3, false);
        let old = data(m * n, 4, false);
        let (ab, bb) = (GpuBuffer::from_slice(g, "a", &a).unwrap(), GpuBuffer::from_slice(g, "b", &b).unwrap());
        let biasb = GpuBuffer::from_slice(g, "bias", &bias).unwrap();
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let s = GemmShape { m, n, k, trans_a: ta, trans_b: tb };
            for variant in 0..3 {
                let c = GpuBuffer::from_slice(g, "c", &old).unwrap();
                let amax = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
                let epi = match variant {
                    0 => Epilogue::default(),
                    1 => Epilogue { bias: Some(&biasb), relu: true, ..Default::default() },
                    _ => Epilogue { accumulate: true, amax: Some(&amax), ..Default::default() },
                };
                let eref = match variant {
                    0 => EpilogueRef::default(),
                    1 => EpilogueRef { bias: Some(&bias), relu: true, ..Default::default() },
                    _ => EpilogueRef { old: Some(&old), ..Default::default() },
                };
                let want = reference::gemm_f32::gemm_f32(&a, &b, m, n, k, ta, tb, &eref);
                for (name, tile) in [
                    ("tiled64", Some(Tile::T64)),
                    ("naive", None),
                    ("tiled32", Some(Tile::T32)),
                    ("tiled128", Some(Tile::T128)),
                ] {
                    let c2 = GpuBuffer::from_slice(g, "c", &old).unwrap();
                    let out = if tile == Some(Tile::T64) { &c } else { &c2 };
                    submit(|e| match tile {
                        None => naive.encode(g, e, &ab, &bb, s, &epi, out).unwrap(),
                        Some(t) => tiled.encode_with(g, e, t, &ab, &bb, s, &epi, out).unwrap(),
                    });
                    let got = out.read(g).unwrap();
                    check(
                        &format!("gemm_f32 {name} {m}x{n}x{k} ta={ta} tb={tb} epilogue {variant}"),
                        &got,
                        &want,
                        f32_bound(k),
                    );
                }
                if variant == 2 {
                    // amax = max |C| of the tiled kernel's own output (both kernels ran accumulate on
                    // fresh copies, the atomic saw both; they agree within the bound, so compare
                    // with the max of either).
                    let got = c.read(g).unwrap();
                    let want_max = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
                    let am = f32::from_bits(amax.read(g).unwrap()[0]);
                    assert!(
                        am >= want_max && (am - want_max) as f64 <= f32_bound(k) * 4.0 * want_max as f64 + 1e-30,
                        "amax {am} vs max |C| {want_max}"
                    );
                }
            }
        }
    }
}

fn quantized(x: &[f32], rows: usize, cols: usize, scheme: QuantScheme) -> QuantizedTensor {
    let g = gpu();
    let t = GpuTensor::from_slice(g, x, &[rows, cols]).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let q = qz().quantize(g, &mut enc, &t, scheme).unwrap();
    g.queue.submit([enc.finish()]);
    q
}

/// `samples` stacked SMP samples of `x` `[rows, cols]` quantized under `scheme` (stochastic).
fn quantized_samples(x: &[f32], rows: usize, cols: usize, scheme: QuantScheme, samples: u32) -> QuantizedTensor {
    let g = gpu();
    let t = GpuTensor::from_slice(g, x, &[rows, cols]).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let q = qz().quantize_samples(g, &mut enc, &t, scheme, samples).unwrap();
    g.queue.submit([enc.finish()]);
    q
}

/// That a launcher refused what `what` names, with an argument or shape error.
fn assert_refused(what: &str, r: lowbit::Result<()>) {
    let err = r.err().unwrap_or_else(|| panic!("{what}: accepted"));
    assert!(matches!(err, Error::InvalidArgument(_) | Error::Shape { .. }), "{what}: {err}");
}

fn chunks(k: usize, ga: Granularity, gb: Granularity) -> usize {
    let b = |g: Granularity| if let Granularity::PerBlock(n) = g { Some(n as usize) } else { None };
    match (b(ga), b(gb)) {
        (Some(x), Some(y)) => k.div_ceil(x.min(y)),
        (Some(x), None) | (None, Some(x)) => k.div_ceil(x),
        _ => 1,
    }
}

#[test]
fn integer_gemms_are_exact_before_the_epilogue_and_bounded_after() {
    let g = gpu();
    let pairs = [
        (Format::Int8, Format::Int8),
        (Format::Int4, Format::Int4),
        (Format::Int8, Format::Int4),
        (Format::Log4, Format::Int8),
        (Format::Log4, Format::Int4),
        (Format::Int3, Format::Int2),
        (Format::Int2, Format::Int3),
        (Format::Log4, Format::Int2),
        (Format::Fp4E2M1, Format::Fp4E2M1),
        (Format::Fp4E2M1, Format::Int8),
        (Format::Mxfp4, Format::Mxfp4),
        (Format::Nvfp4, Format::Nvfp4),
    ];
    let all_grans = [
        (Granularity::PerRow, Granularity::PerRow),
        (Granularity::PerTensor, Granularity::PerRow),
        (Granularity::PerBlock(32), Granularity::PerBlock(32)),
        (Granularity::PerBlock(64), Granularity::PerRow),
        (Granularity::PerBlock(8), Granularity::PerBlock(16)),
    ];
    for (fa, fb) in pairs {
        let kernel = GemmInt::new(g, fa, fb).unwrap();
        // A block-scaled format takes its own block only.
        let grans: Vec<_> = if fa.block().is_some() {
            vec![(Granularity::native(fa), Granularity::native(fb))]
        } else {
            all_grans.to_vec()
        };
        for &(m, n, k) in SHAPES {
            let a = data(m * k, 5, false);
            let b = data(n * k, 6, false);
            let bias = data(n, 7, false);
            let biasb = GpuBuffer::from_slice(g, "bias", &bias).unwrap();
            for &(ga, gb) in &grans {
                let too_short = |f: Format, g: Granularity| matches!(g, Granularity::PerBlock(b) if b < f.per_word());
                if too_short(fa, ga) || too_short(fb, gb) {
                    // Blocks must hold whole words (int2: 16 codes).
                    assert!(QuantLayout::new(m, k, fa, ga).is_err() || QuantLayout::new(n, k, fb, gb).is_err());
                    continue;
                }
                let sa = QuantScheme {
                    format: fa,
                    granularity: ga,
                    rounding: lowbit::scheme::Rounding::Stochastic { seed: 3, stream: 1 },
                };
                let qa = quantized(&a, m, k, sa);
                let qb = quantized(
                    &b,
                    n,
                    k,
                    QuantScheme { format: fb, granularity: gb, rounding: lowbit::scheme::Rounding::Nearest },
                );
                let (ac, asc, bc, bsc) = (
                    qa.codes.read(g).unwrap(),
                    qa.scales.read(g).unwrap(),
                    qb.codes.read(g).unwrap(),
                    qb.scales.read(g).unwrap(),
                );
                let what = format!("gemm_int {fa}x{fb} {m}x{n}x{k} {ga}/{gb}");
                let tiles = int_tiles(&qa, &qb);
                if !tiles.contains(&Tile::T128) {
                    // Scale blocks shorter than the wide tile's K step: asking for it is an error.
                    let raw = GpuBuffer::<i32>::zeros(g, "raw", m * n).unwrap();
                    let mut e = g.device.create_command_encoder(&Default::default());
                    let err = kernel.encode_raw_with(g, &mut e, Tile::T128, &qa, &qb, &raw).unwrap_err();
                    assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err}");
                }
                for &tile in tiles {
                    let raw = GpuBuffer::<i32>::zeros(g, "raw", m * n).unwrap();
                    submit(|e| kernel.encode_raw_with(g, e, tile, &qa, &qb, &raw).unwrap());
                    let want_raw = reference::gemm_int::gemm_int_raw(&ac, &qa.layout, 1, &bc, &qb.layout);
                    let as_u = |v: Vec<i32>| v.into_iter().map(|x| x as u32).collect::<Vec<u32>>();
                    assert_u32_eq(&format!("{what} raw i32 {tile:?}"), &as_u(raw.read(g).unwrap()), &as_u(want_raw));
                }
                let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
                submit(|e| {
                    kernel
                        .encode(g, e, &qa, &qb, &Epilogue { bias: Some(&biasb), relu: true, ..Default::default() }, &c)
                        .unwrap()
                });
                let want = reference::gemm_int::gemm_int(
                    &ac,
                    &asc,
                    &qa.layout,
                    1,
                    &bc,
                    &bsc,
                    &qb.layout,
                    &EpilogueRef { bias: Some(&bias), relu: true, old: None },
                );
                for &tile in tiles {
                    let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
                    let epi = Epilogue { bias: Some(&biasb), relu: true, ..Default::default() };
                    submit(|e| kernel.encode_with(g, e, tile, &qa, &qb, &epi, &c).unwrap());
                    let bound = int_epilogue_bound(chunks(k, ga, gb), 1);
                    check(&format!("{what} scaled {tile:?}"), &c.read(g).unwrap(), &want, bound);
                }
            }
        }
    }
}

#[test]
fn fp8_gemms_match_the_dequantized_reference() {
    let g = gpu();
    for (fa, fb) in
        [(Format::Fp8E4M3, Format::Fp8E4M3), (Format::Fp8E5M2, Format::Fp8E4M3), (Format::Mxfp8, Format::Mxfp8)]
    {
        let kernel = GemmFp8::new(g, fa, fb).unwrap();
        let grans = if fa == Format::Mxfp8 {
            vec![(Granularity::PerBlock(32), Granularity::PerBlock(32))]
        } else {
            vec![(Granularity::PerRow, Granularity::PerRow), (Granularity::PerTensor, Granularity::PerBlock(32))]
        };
        for &(m, n, k) in SHAPES {
            let a = data(m * k, 8, false);
            let b = data(n * k, 9, false);
            for &(ga, gb) in &grans {
                let qa = quantized(
                    &a,
                    m,
                    k,
                    QuantScheme {
                        format: fa,
                        granularity: ga,
                        rounding: lowbit::scheme::Rounding::Stochastic { seed: 9, stream: 0 },
                    },
                );
                let qb = quantized(&b, n, k, QuantScheme::native(fb).stochastic(1, 1));
                let qb = if gb == Granularity::native(fb) {
                    qb
                } else {
                    quantized(
                        &b,
                        n,
                        k,
                        QuantScheme { format: fb, granularity: gb, rounding: lowbit::scheme::Rounding::Nearest },
                    )
                };
                let want = reference::gemm_fp8::gemm_fp8(
                    &qa.codes.read(g).unwrap(),
                    &qa.scales.read(g).unwrap(),
                    &qa.layout,
                    &qb.codes.read(g).unwrap(),
                    &qb.scales.read(g).unwrap(),
                    &qb.layout,
                    &EpilogueRef::default(),
                );
                for tile in Tile::ALL {
                    let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
                    submit(|e| kernel.encode_with(g, e, tile, &qa, &qb, &Epilogue::default(), &c).unwrap());
                    check(
                        &format!("gemm_fp8 {fa}x{fb} {m}x{n}x{k} {ga}/{gb} {tile:?}"),
                        &c.read(g).unwrap(),
                        &want,
                        f32_bound(k),
                    );
                }
            }
        }
    }
}

/// `gemm_fp8`'s tiles load a word of four codes and its scale at a time (`WORD_LOADS` in
/// `shaders/common/gemm_tiled.wgsl`), `gemm_f32`'s tiles an element at a time; both run the same
/// loops over what they put in workgroup memory. So on the dequantized operands the f32 tiles
/// give `gemm_fp8`'s bits on every tile — lengths K that leave a word part-filled (17, 37), M
/// and N off the tiles' edges, K split where few tiles meet a long K (2601: two splits), per-row,
/// per-tensor and MXFP8's block scales — unless a code or its scale landed in the wrong place.
#[test]
fn fp8_tiles_give_the_f32_tiles_bits_on_the_dequantized_operands() {
    let g = gpu();
    let f32k = GemmF32::new(g).unwrap();
    let shapes: &[(usize, usize, usize)] = &[(33, 65, 17), (130, 70, 37), (257, 129, 300), (5, 70, 2601)];
    for (fa, fb) in
        [(Format::Fp8E4M3, Format::Fp8E4M3), (Format::Fp8E5M2, Format::Fp8E4M3), (Format::Mxfp8, Format::Mxfp8)]
    {
        let kernel = GemmFp8::new(g, fa, fb).unwrap();
        let grans = match fa {
            Format::Mxfp8 => vec![(Granularity::PerBlock(32), Granularity::PerBlock(32))],
            _ => vec![(Granularity::PerRow, Granularity::PerRow), (Granularity::PerTensor, Granularity::PerBlock(32))],
        };
        for &(m, n, k) in shapes {
            for &(ga, gb) in &grans {
                let sa =
                    QuantScheme { format: fa, granularity: ga, rounding: Rounding::Stochastic { seed: 3, stream: 0 } };
                let sb = QuantScheme { format: fb, granularity: gb, rounding: Rounding::Nearest };
                let qa = quantized(&data(m * k, 21, false), m, k, sa);
                let qb = quantized(&data(n * k, 22, false), n, k, sb);
                let deq = |q: &QuantizedTensor| {
                    let v = reference::dequantize::dequantize(
                        &q.codes.read(g).unwrap(),
                        &q.scales.read(g).unwrap(),
                        &q.layout,
                    );
                    GpuBuffer::from_slice(g, "dequantized", &v).unwrap()
                };
                let (da, db) = (deq(&qa), deq(&qb));
                for tile in Tile::ALL {
                    let what = format!("{fa}x{fb} {m}x{n}x{k} {ga}/{gb} {tile:?}");
                    let (c8, c32) = (
                        GpuBuffer::<f32>::zeros(g, "fp8", m * n).unwrap(),
                        GpuBuffer::<f32>::zeros(g, "f32", m * n).unwrap(),
                    );
                    submit(|e| kernel.encode_with(g, e, tile, &qa, &qb, &Epilogue::default(), &c8).unwrap());
                    submit(|e| {
                        f32k.encode_with(g, e, tile, &da, &db, GemmShape::nt(m, n, k), &Epilogue::default(), &c32)
                            .unwrap()
                    });
                    let (got, want) = (c8.read(g).unwrap(), c32.read(g).unwrap());
                    common::assert_f32_bits_eq(&what, &got, &want);
                    assert!(got.iter().any(|v| *v != 0.0), "{what}: all zero");
                }
            }
        }
    }
}

#[test]
fn levels_tiles_give_the_f32_tiles_bits_on_the_decoded_operands() {
    use lowbit::kernels::gemm_levels::GemmLevels;
    use lowbit::kernels::tinyscript::{TinyScript, TinyScriptTensor};
    use lowbit::tinyscript::LevelTable;
    let g = gpu();
    let (f32k, kernel, ts) = (GemmF32::new(g).unwrap(), GemmLevels::new(g).unwrap(), TinyScript::new(g).unwrap());
    // Each stored row's values, decoded on the host (`LevelTable::decode`: the values the
    // kernel's loads must give).
    let decode = |q: &TinyScriptTensor| {
        let (codes, scales) = (q.codes.read(g).unwrap(), q.scales.read(g).unwrap());
        reference::tinyscript::dequantize(&codes, &scales, q.rows, q.cols, &q.table)
    };
    // A's tables: 3, 5 and 6 bits (ten, six and five codes a word: four consecutive codes can lie
    // in two words), 4 bits unsigned on nonnegative data, 8 bits (four a word); a coded B in 3
    // bits signed (straddling too) or 2 bits unsigned. K of 17 and 37 end inside a word; 2601
    // splits on every tile.
    let tables = [(3u32, true), (5, true), (6, true), (4, false), (8, true)];
    let shapes: &[(usize, usize, usize)] = &[(33, 65, 17), (130, 70, 37), (257, 129, 300), (5, 70, 2601)];
    for (bits, signed) in tables {
        let table = LevelTable::uniform_as(bits, signed).unwrap();
        let btable = LevelTable::from_unit(if signed { 3 } else { 2 }, &[0.0, 0.05, 0.15, 1.0]).unwrap();
        for &(m, n, k) in shapes {
            let mut a = data(m * k, 31 + bits, false);
            if !signed {
                a.iter_mut().for_each(|v| *v = v.abs());
            }
            let ab = GpuBuffer::from_slice(g, "a", &a).unwrap();
            let b = data(n * k, 32, false);
            let mut qa = None;
            submit(|e| {
                let r = Rounding::Stochastic { seed: 7, stream: 1 };
                qa = Some(ts.encode_quantize(g, e, &ab, m, k, &table, r).unwrap())
            });
            let qa = qa.unwrap();
            let da = GpuBuffer::from_slice(g, "decoded a", &decode(&qa)).unwrap();
            for trans_b in [false, true] {
                let bstore: Vec<f32> =
                    if trans_b { (0..n * k).map(|i| b[(i % n) * k + i / n]).collect() } else { b.clone() };
                let bsb = GpuBuffer::from_slice(g, "b", &bstore).unwrap();
                let (brows, bcols) = if trans_b { (k, n) } else { (n, k) };
                let mut qb = None;
                submit(|e| {
                    qb = Some(ts.encode_quantize(g, e, &bsb, brows, bcols, &btable, Rounding::Nearest).unwrap())
                });
                let qb = qb.unwrap();
                let db = GpuBuffer::from_slice(g, "decoded b", &decode(&qb)).unwrap();
                let shape = GemmShape { trans_b, ..GemmShape::nt(m, n, k) };
                for (tile, coded) in Tile::ALL.into_iter().flat_map(|t| [(t, false), (t, true)]) {
                    let what = format!("{bits}b signed={signed} {m}x{n}x{k} tb={trans_b} coded={coded} {tile:?}");
                    let (cl, c32) = (
                        GpuBuffer::<f32>::zeros(g, "levels", m * n).unwrap(),
                        GpuBuffer::<f32>::zeros(g, "f32", m * n).unwrap(),
                    );
                    let none = Epilogue::default();
                    submit(|e| match coded {
                        false => kernel.encode_with(g, e, tile, &qa, &bsb, n, trans_b, &none, &cl).unwrap(),
                        true => kernel.encode_coded_with(g, e, tile, &qa, &qb, trans_b, &none, &cl).unwrap(),
                    });
                    let bf = if coded { &db } else { &bsb };
                    submit(|e| f32k.encode_with(g, e, tile, &da, bf, shape, &none, &c32).unwrap());
                    let (got, want) = (cl.read(g).unwrap(), c32.read(g).unwrap());
                    common::assert_f32_bits_eq(&what, &got, &want);
                    assert!(got.iter().any(|v| *v != 0.0), "{what}: all zero");
                }
            }
        }
    }
}

#[test]
fn smp_is_unbiased_and_divides_the_variance_by_k() {
    // The weight-gradient product dW = G·Xᵀ with G (the neural gradient) in LUQ log4, stochastic,
    // and X in int8 (nearest, so fixed). The unbiased target is G·deq(X)ᵀ. Over T seeds, SMP with k
    // samples must stay unbiased (within Z = 6 standard errors) and its variance must be the
    // single-sample variance divided by k (within ±VAR_TOL of 1/k, summed over all outputs).
    const T: u32 = 64;
    const Z: f64 = 6.0;
    const VAR_TOL: f64 = 0.15;
    let g = gpu();
    let (m, n, k) = (16usize, 16usize, 256usize);
    let gdata = data(m * k, 11, false);
    let xdata = data(n * k, 12, false);
    let qx = quantized(&xdata, n, k, QuantScheme::per_row(Format::Int8));
    let deqx = reference::dequantize::dequantize(&qx.codes.read(g).unwrap(), &qx.scales.read(g).unwrap(), &qx.layout);
    let target = reference::gemm_f32::gemm_f32(&gdata, &deqx, m, n, k, false, false, &EpilogueRef::default()).value;
    let kernel = GemmInt::new(g, Format::Log4, Format::Int8).unwrap();
    let gt = GpuTensor::from_slice(g, &gdata, &[m, k]).unwrap();
    let mut total_var = Vec::new();
    for samples in [1u32, 4] {
        let (mut sum, mut sum2) = (vec![0f64; m * n], vec![0f64; m * n]);
        for t in 0..T {
            let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
            submit(|e| {
                let qg = qz()
                    .quantize_samples(g, e, &gt, QuantScheme::per_row(Format::Log4).stochastic(t, 0), samples)
                    .unwrap();
                kernel.encode(g, e, &qg, &qx, &Epilogue::default(), &c).unwrap();
            });
            for (i, v) in c.read(g).unwrap().into_iter().enumerate() {
                sum[i] += v as f64;
                sum2[i] += (v as f64).powi(2);
            }
        }
        let tt = T as f64;
        let mut vsum = 0.0;
        for i in 0..m * n {
            let mean = sum[i] / tt;
            let var = ((sum2[i] - tt * mean * mean) / (tt - 1.0)).max(0.0);
            vsum += var;
            let se = (var / tt).sqrt();
            assert!(
                (mean - target[i]).abs() <= Z * se + 1e-5 * target[i].abs() + 1e-7,
                "SMP k={samples}: output {i}: mean {mean} target {} (se {se:e})",
                target[i]
            );
        }
        total_var.push(vsum);
    }
    let ratio = total_var[1] / total_var[0];
    eprintln!("SMP variance ratio k=4 / k=1: {ratio:.4} (theory 0.25)");
    assert!((ratio - 0.25).abs() <= VAR_TOL * 0.25, "SMP variance ratio {ratio}, expected 1/4 within ±{VAR_TOL}");
}

#[test]
fn smp_samples_match_the_reference_on_every_tile() {
    // Stacked SMP samples of A: the raw i32 total (over samples and chunks) is exact and the
    // scaled mean within the epilogue bound, on every tile, per-row and 32-element block scales.
    let g = gpu();
    let (m, n, k, samples) = (257usize, 129usize, 300usize, 3u32);
    let kernel = GemmInt::new(g, Format::Log4, Format::Int8).unwrap();
    let gt = GpuTensor::from_slice(g, &data(m * k, 13, false), &[m, k]).unwrap();
    let qx = quantized(&data(n * k, 14, false), n, k, QuantScheme::per_row(Format::Int8));
    for gran in [Granularity::PerRow, Granularity::PerBlock(32)] {
        let scheme = QuantScheme {
            format: Format::Log4,
            granularity: gran,
            rounding: lowbit::scheme::Rounding::Stochastic { seed: 4, stream: 0 },
        };
        let mut enc = g.device.create_command_encoder(&Default::default());
        let qg = qz().quantize_samples(g, &mut enc, &gt, scheme, samples).unwrap();
        g.queue.submit([enc.finish()]);
        let (ac, asc, bc, bsc) = (
            qg.codes.read(g).unwrap(),
            qg.scales.read(g).unwrap(),
            qx.codes.read(g).unwrap(),
            qx.scales.read(g).unwrap(),
        );
        let want_raw = reference::gemm_int::gemm_int_raw(&ac, &qg.layout, samples as usize, &bc, &qx.layout);
        let want = reference::gemm_int::gemm_int(
            &ac,
            &asc,
            &qg.layout,
            samples as usize,
            &bc,
            &bsc,
            &qx.layout,
            &EpilogueRef::default(),
        );
        for &tile in int_tiles(&qg, &qx) {
            let raw = GpuBuffer::<i32>::zeros(g, "raw", m * n).unwrap();
            submit(|e| kernel.encode_raw_with(g, e, tile, &qg, &qx, &raw).unwrap());
            let as_u = |v: Vec<i32>| v.into_iter().map(|x| x as u32).collect::<Vec<u32>>();
            assert_u32_eq(&format!("SMP raw {gran} {tile:?}"), &as_u(raw.read(g).unwrap()), &as_u(want_raw.clone()));
            let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
            submit(|e| kernel.encode_with(g, e, tile, &qg, &qx, &Epilogue::default(), &c).unwrap());
            let bound = int_epilogue_bound(chunks(k, gran, Granularity::PerRow), samples as usize);
            check(&format!("SMP scaled {gran} {tile:?}"), &c.read(g).unwrap(), &want, bound);
        }
    }
}

#[test]
fn gemm_shape_and_format_errors_are_errors() {
    let g = gpu();
    let kernel = GemmInt::new(g, Format::Int8, Format::Int8).unwrap();
    let qa = quantized(&data(4 * 8, 1, false), 4, 8, QuantScheme::per_row(Format::Int8));
    let qb = quantized(&data(3 * 12, 1, false), 3, 12, QuantScheme::per_row(Format::Int8));
    let q4 = quantized(&data(3 * 8, 1, false), 3, 8, QuantScheme::per_row(Format::Int4));
    let c = GpuBuffer::<f32>::zeros(g, "c", 12).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(kernel.encode(g, &mut enc, &qa, &qb, &Epilogue::default(), &c), Err(Error::Shape { .. })));
    assert!(matches!(kernel.encode(g, &mut enc, &qa, &q4, &Epilogue::default(), &c), Err(Error::InvalidArgument(_))));
    assert!(matches!(GemmInt::new(g, Format::Fp8E4M3, Format::Int8), Err(Error::InvalidArgument(_))));
    assert!(matches!(GemmFp8::new(g, Format::Int8, Format::Fp8E4M3), Err(Error::InvalidArgument(_))));
    let f = GemmF32::new(g).unwrap();
    let a = GpuBuffer::<f32>::zeros(g, "a", 6).unwrap();
    assert!(matches!(
        f.encode(g, &mut enc, &a, &a, GemmShape::nt(2, 2, 4), &Epilogue::default(), &c),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        f.encode(g, &mut enc, &a, &a, GemmShape::nt(0, 2, 3), &Epilogue::default(), &c),
        Err(Error::Empty(_))
    ));
    let bad_bias = GpuBuffer::<f32>::zeros(g, "bias", 5).unwrap();
    let c4 = GpuBuffer::<f32>::zeros(g, "c", 4).unwrap();
    assert!(matches!(
        f.encode(
            g,
            &mut enc,
            &a,
            &a,
            GemmShape::nt(2, 2, 3),
            &Epilogue { bias: Some(&bad_bias), ..Default::default() },
            &c4
        ),
        Err(Error::Shape { .. })
    ));
    g.queue.submit([enc.finish()]);
}

#[test]
fn tune_picks_a_candidate_caches_it_and_results_stay_correct() {
    let g = gpu();
    let (m, n, k) = (100, 10, 300);
    let f = GemmF32::new(g).unwrap();
    assert_eq!(f.tuned(m, n, k), None);
    let (best, times) = f.tune(g, GemmShape::nt(m, n, k)).unwrap();
    assert_eq!(times.len(), Tile::ALL.len());
    assert!(times.iter().all(|(_, t)| *t > 0.0 && t.is_finite()));
    assert_eq!(f.tuned(m, n, k), Some(best));
    assert_eq!(f.tuned(m + 20, n + 3, k - 30), Some(best), "same shape class");
    eprintln!("tuned {m}x{n}x{k}: {best:?} from {times:?}");
    let a = data(m * k, 51, false);
    let b = data(n * k, 52, false);
    let (ab, bb) = (GpuBuffer::from_slice(g, "a", &a).unwrap(), GpuBuffer::from_slice(g, "b", &b).unwrap());
    let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
    submit(|e| f.encode(g, e, &ab, &bb, GemmShape::nt(m, n, k), &Epilogue::default(), &c).unwrap());
    let want = reference::gemm_f32::gemm_f32(&a, &b, m, n, k, false, false, &EpilogueRef::default());
    check("gemm_f32 after tune", &c.read(g).unwrap(), &want, f32_bound(k));
    let gi = GemmInt::new(g, Format::Int8, Format::Int4).unwrap();
    let (best_i, _) = gi.tune(g, m, n, k).unwrap();
    assert_eq!(gi.tuned(m, n, k), Some(best_i));
    let g8 = GemmFp8::new(g, Format::Fp8E5M2, Format::Fp8E4M3).unwrap();
    let (best_f, _) = g8.tune(g, m, n, k).unwrap();
    assert_eq!(g8.tuned(m, n, k), Some(best_f));
    let gl = lowbit::kernels::gemm_levels::GemmLevels::new(g).unwrap();
    assert_eq!(gl.tuned(m, n, k), None);
    let (best_l, times_l) = gl.tune(g, m, n, k).unwrap();
    assert_eq!(times_l.len(), Tile::ALL.len());
    assert_eq!(gl.tuned(m, n, k), Some(best_l));
    assert!(matches!(gl.tune(g, 0, n, k), Err(Error::Empty("gemm_levels"))));
}

#[test]
fn split_k_gemms_match_the_reference() {
    // A small output over a long K (a convolution's weight gradient) is split along K; the
    // splits' partial sums are added in order afterwards. Each split rounds its own partial sum,
    // so the bounds grow by the number of splits.
    let g = gpu();
    let (m, n, k) = (7, 9, 5003);
    let (splits, k_split) = lowbit::kernels::gemm::split_plan(1, k, 0);
    assert!(splits > 1 && k_split as usize * (splits as usize - 1) < k, "{m}x{n}x{k} must split: {splits}");
    let extra = splits as f64 * 2f64.powi(-23);
    let a = data(m * k, 21, false);
    let b = data(n * k, 22, false);
    let (ab, bb) = (GpuBuffer::from_slice(g, "a", &a).unwrap(), GpuBuffer::from_slice(g, "b", &b).unwrap());
    let tiled = GemmF32::new(g).unwrap();
    for (ta, tb) in [(false, false), (true, true), (true, false)] {
        let s = GemmShape { m, n, k, trans_a: ta, trans_b: tb };
        let want = reference::gemm_f32::gemm_f32(&a, &b, m, n, k, ta, tb, &EpilogueRef::default());
        for tile in Tile::ALL {
            let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
            submit(|e| tiled.encode_with(g, e, tile, &ab, &bb, s, &Epilogue::default(), &c).unwrap());
            check(
                &format!("split gemm_f32 ta={ta} tb={tb} {tile:?}"),
                &c.read(g).unwrap(),
                &want,
                f32_bound(k) + extra,
            );
        }
    }
    for (fa, fb, ga) in
        [(Format::Int8, Format::Int8, Granularity::PerRow), (Format::Log4, Format::Int4, Granularity::PerBlock(32))]
    {
        let qa = quantized(
            &a,
            m,
            k,
            QuantScheme {
                format: fa,
                granularity: ga,
                rounding: lowbit::scheme::Rounding::Stochastic { seed: 5, stream: 2 },
            },
        );
        let qb = quantized(&b, n, k, QuantScheme::per_row(fb));
        let kernel = GemmInt::new(g, fa, fb).unwrap();
        let (ac, asc, bc, bsc) = (
            qa.codes.read(g).unwrap(),
            qa.scales.read(g).unwrap(),
            qb.codes.read(g).unwrap(),
            qb.scales.read(g).unwrap(),
        );
        let want =
            reference::gemm_int::gemm_int(&ac, &asc, &qa.layout, 1, &bc, &bsc, &qb.layout, &EpilogueRef::default());
        for &tile in int_tiles(&qa, &qb) {
            let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
            submit(|e| kernel.encode_with(g, e, tile, &qa, &qb, &Epilogue::default(), &c).unwrap());
            let bound = int_epilogue_bound(chunks(k, ga, Granularity::PerRow) + 2 * splits as usize, 1);
            check(&format!("split gemm_int {fa}x{fb} {tile:?}"), &c.read(g).unwrap(), &want, bound);
        }
    }
    let kernel = GemmFp8::new(g, Format::Fp8E5M2, Format::Fp8E4M3).unwrap();
    let qa = quantized(&a, m, k, QuantScheme::per_row(Format::Fp8E5M2).stochastic(2, 3));
    let qb = quantized(&b, n, k, QuantScheme::per_row(Format::Fp8E4M3));
    let want = reference::gemm_fp8::gemm_fp8(
        &qa.codes.read(g).unwrap(),
        &qa.scales.read(g).unwrap(),
        &qa.layout,
        &qb.codes.read(g).unwrap(),
        &qb.scales.read(g).unwrap(),
        &qb.layout,
        &EpilogueRef::default(),
    );
    for tile in Tile::ALL {
        let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
        submit(|e| kernel.encode_with(g, e, tile, &qa, &qb, &Epilogue::default(), &c).unwrap());
        check(&format!("split gemm_fp8 {tile:?}"), &c.read(g).unwrap(), &want, f32_bound(k) + extra);
    }
}

#[test]
fn the_peak_probe_does_all_of_its_arithmetic() {
    use lowbit::kernels::peak::{Peak, PeakOp};
    let g = gpu();
    let peak = Peak::new(g).unwrap();
    let threads = 512u32;
    let out = GpuBuffer::<u32>::zeros(g, "out", threads as usize).unwrap();
    // m = 1: the f32 chains count up by c, so a skipped round changes every checksum.
    for (iters, c) in [(1, 0.5f32), (7, 0.375)] {
        submit(|e| peak.encode(g, e, PeakOp::F32Fma { m: 1.0, c }, iters, &out).unwrap());
        assert_u32_eq("peak f32", &out.read(g).unwrap(), &reference::peak::peak_f32(threads, iters, 1.0, c));
    }
    for (iters, b) in [(1, 0x01ff_7f80u32), (5, 0x0302_fd01)] {
        submit(|e| peak.encode(g, e, PeakOp::Dot4I8 { b }, iters, &out).unwrap());
        assert_u32_eq("peak dot4I8", &out.read(g).unwrap(), &reference::peak::peak_dot(threads, iters, b));
    }
    let odd = GpuBuffer::<u32>::zeros(g, "odd", 100).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(peak.encode(g, &mut enc, PeakOp::Dot4I8 { b: 1 }, 1, &odd), Err(Error::Shape { .. })));
}

#[test]
fn integer_gemms_past_the_i32_range_sum_in_exact_chunks() {
    use lowbit::kernels::gemm_int::INT_FORMATS;
    use lowbit::scheme::exact_chunk;
    let g = gpu();
    // The chunk bound holds for every pair of integer formats, and is tight.
    for fa in INT_FORMATS {
        for fb in INT_FORMATS {
            let (qa, qb) = (fa.max_lane().unwrap() as u64, fb.max_lane().unwrap() as u64);
            let c = exact_chunk(fa, fb) as u64;
            assert!(c.is_multiple_of(32) && c * qa * qb <= i32::MAX as u64, "{fa} × {fb}: {c}");
            assert!((c + 32) * qa * qb > i32::MAX as u64, "{fa} × {fb}: {c} is not the largest");
        }
    }
    // The reproduction from the report: [1, 140000] all-ones, int8 per row, bias set: 127²·K
    // wrapped past 2³¹ (−126288.5 instead of 140000.5).
    let k = 140_000;
    let ones = vec![1.0f32; k];
    let (a, b) = (
        quantized(&ones, 1, k, QuantScheme::per_row(Format::Int8)),
        quantized(&ones, 1, k, QuantScheme::per_row(Format::Int8)),
    );
    let bias = GpuBuffer::from_slice(g, "bias", &[0.5f32]).unwrap();
    let c = GpuBuffer::<f32>::zeros(g, "c", 1).unwrap();
    let gi = GemmInt::new(g, Format::Int8, Format::Int8).unwrap();
    for &tile in int_tiles(&a, &b) {
        submit(|e| {
            gi.encode_with(g, e, tile, &a, &b, &Epilogue { bias: Some(&bias), ..Default::default() }, &c).unwrap()
        });
        assert_eq!(c.read(g).unwrap(), vec![140000.5], "{tile:?}");
    }
    let raw = GpuBuffer::<i32>::zeros(g, "raw", 1).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(
        matches!(gi.encode_raw(g, &mut enc, &a, &b, &raw), Err(Error::InvalidArgument(_))),
        "raw sums cannot hold it"
    );
    // Every ordered pair of formats with per-row scales whose top codes (int8 127, int4 7,
    // int3 3, int2 1, log4 2⁶; E2M1 6, a lane of 12) wrap one i32 sum by K = 6M elements, at a K
    // past that point: operands of top codes and unit scales, whose exact product is
    // K · top_a · top_b. (The other pairs wrap only at tens of millions of elements or more,
    // which a 1×1 product on lavapipe takes minutes to sum; the bound above covers them. The
    // block-scaled formats fold every 16 or 32 elements.)
    let mut tested = 0;
    let limit = 6_000_000;
    let per_row: Vec<Format> = INT_FORMATS.into_iter().filter(|f| f.block().is_none()).collect();
    for &fa in &per_row {
        for &fb in &per_row {
            let top = |f: Format| f.top() as u64;
            let lane = |f: Format| (f.top() / f.lane_unit()) as u64;
            let wrap = i32::MAX as u64 / (lane(fa) * lane(fb)) + 1;
            let k = (wrap + 4096).next_multiple_of(64) as usize;
            let words = |f: Format| k / f.per_word() as usize;
            if k > limit {
                continue;
            }
            let operand = |f: Format| {
                let code = match f {
                    Format::Log4 | Format::Fp4E2M1 => 7,
                    _ => lowbit::format::int::to_code(f.top() as i32, f.bits()),
                };
                let word = (0..f.per_word()).fold(0u32, |w, i| w | code << (i * f.bits()));
                QuantizedTensor {
                    codes: GpuBuffer::from_slice(g, "codes", &vec![word; words(f)]).unwrap(),
                    scales: GpuBuffer::from_slice(g, "scales", &[1.0f32]).unwrap(),
                    layout: QuantLayout::new(1, k, f, Granularity::PerRow).unwrap(),
                    samples: 1,
                }
            };
            let (a, b) = (operand(fa), operand(fb));
            let exact = (k as u64 * top(fa) * top(fb)) as f64;
            let gi = GemmInt::new(g, fa, fb).unwrap();
            let c = GpuBuffer::<f32>::zeros(g, "c", 1).unwrap();
            submit(|e| gi.encode(g, e, &a, &b, &Epilogue::default(), &c).unwrap());
            let chunks = k.div_ceil(exact_chunk(fa, fb) as usize);
            let want = RefOut { value: vec![exact], magnitude: vec![exact] };
            check(&format!("{fa} × {fb}, K = {k}"), &c.read(g).unwrap(), &want, int_epilogue_bound(chunks, 1));
            tested += 1;
        }
    }
    assert!(tested >= 10, "{tested} pairs");
}

#[test]
fn lane_gemm_matches_the_reference_where_the_adapter_has_it_and_is_refused_elsewhere() {
    let g = gpu();
    let dispatcher = GemmF32::new(g).unwrap();
    let here = runs_lanes_kernel("gemm_f32_lanes", GemmF32Lanes::available(g));
    if !here {
        let err = GemmF32Lanes::new(g).err().expect("gemm_f32_lanes built without 8-lane subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        assert!(!dispatcher.uses_lanes());
        return;
    }
    let lanes = GemmF32Lanes::new(g).unwrap();
    let llvmpipe = g.report().name.contains("llvmpipe");
    // The dispatcher takes the lane kernel for every shape on a CPU adapter; vec4 loads where they
    // stay within rows, scalar loads elsewhere (K = 17; M = 33 with A stored [K, M]; N = 65 with B
    // stored [K, N]).
    assert_eq!(dispatcher.uses_lanes(), g.cpu_layouts());
    for (s, vec4) in [
        (GemmShape::nt(33, 65, 20), true),
        (GemmShape { m: 36, n: 68, k: 20, trans_a: true, trans_b: true }, true),
        (GemmShape::nt(33, 65, 17), false),
        (GemmShape { m: 33, n: 64, k: 20, trans_a: true, trans_b: false }, false),
        (GemmShape { m: 32, n: 65, k: 20, trans_a: false, trans_b: true }, false),
    ] {
        assert_eq!(GemmF32Lanes::vectorized(s), vec4, "{s:?}");
    }
    // Tails in M and N of the 16 x 32 tile, K of one step and of many, every layout: the first
    // four shapes run on vec4 loads in every layout, the others on scalar loads in some or all.
    // The last three are narrower than the tile and taller than wide, computed as Cᵀ = B·Aᵀ and
    // stored as C (their bias a row's in that launch): the same bits as the tiled kernel's.
    let shapes: &[(usize, usize, usize)] = &[
        (4, 4, 4),
        (36, 68, 20),
        (260, 132, 300),
        (12, 1000, 8),
        (1, 1, 1),
        (33, 65, 17),
        (5, 70, 1000),
        (257, 129, 30),
        (300, 10, 40),
        (100, 16, 17),
        (70, 5, 8),
    ];
    for &(m, n, k) in shapes {
        let a = data(m * k, 81, false);
        let b = data(n * k, 82, false);
        let bias = data(n, 83, false);
        let old = data(m * n, 84, false);
        let (ab, bb) = (common::buf(&a), common::buf(&b));
        let biasb = common::buf(&bias);
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let s = GemmShape { m, n, k, trans_a: ta, trans_b: tb };
            for variant in 0..3 {
                let c = GpuBuffer::from_slice(g, "c", &old).unwrap();
                let amax = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
                let (epi, eref) = epilogue_variant(variant, &bias, &biasb, &old, &amax);
                submit(|e| lanes.encode(g, e, &ab, &bb, s, &epi, &c).unwrap());
                let got = c.read(g).unwrap();
                let want = reference::gemm_f32_lanes::gemm_f32_lanes(&a, &b, m, n, k, ta, tb, &eref);
                if llvmpipe {
                    // The same multiplies and adds in the same order as the tiled kernel (unsplit at
                    // these shapes), neither fused: the same bits.
                    let tiled = GpuBuffer::from_slice(g, "c", &old).unwrap();
                    submit(|e| dispatcher.encode_with(g, e, Tile::T64, &ab, &bb, s, &epi, &tiled).unwrap());
                    assert_u32_eq(
                        &format!("lanes vs tiled {m}x{n}x{k} ta={ta} tb={tb} epilogue {variant}"),
                        &got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        &tiled.read(g).unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    );
                }
                check(
                    &format!("gemm_f32_lanes {m}x{n}x{k} ta={ta} tb={tb} epilogue {variant}"),
                    &got,
                    &want,
                    f32_bound(k),
                );
                if variant == 2 {
                    let want_max = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
                    assert_eq!(f32::from_bits(amax.read(g).unwrap()[0]), want_max, "amax of {m}x{n}x{k}");
                }
            }
        }
    }
    // Batched: each product reads and writes its own slice (vec4 and scalar loads).
    let batches = 3;
    for (m, n, k, ta, tb) in [
        (36, 68, 20, false, false),
        (36, 68, 20, false, true),
        (36, 68, 20, true, false),
        (36, 68, 20, true, true),
        (33, 65, 17, true, true),
        (33, 65, 17, false, false),
    ] {
        let a = data(batches * m * k, 85, false);
        let b = data(batches * n * k, 86, false);
        let s = GemmShape { m, n, k, trans_a: ta, trans_b: tb };
        let c = GpuBuffer::<f32>::zeros(g, "c", batches * m * n).unwrap();
        submit(|e| {
            lanes
                .encode_batched(g, e, &common::buf(&a), &common::buf(&b), s, batches, &Epilogue::default(), &c)
                .unwrap()
        });
        let got = c.read(g).unwrap();
        for i in 0..batches {
            let want = reference::gemm_f32_lanes::gemm_f32_lanes(
                &a[i * m * k..(i + 1) * m * k],
                &b[i * n * k..(i + 1) * n * k],
                m,
                n,
                k,
                ta,
                tb,
                &EpilogueRef::default(),
            );
            check(&format!("lanes batch {i} ({ta}, {tb})"), &got[i * m * n..(i + 1) * m * n], &want, f32_bound(k));
        }
    }
}

/// `op(X)`'s stored values for K elements `lo..hi` of a `[rows, k]` operand stored `[rows, k]` or,
/// with `trans`, `[k, rows]`: the same operand over that slice of K, stored the same way.
fn k_slice(x: &[f32], rows: usize, k: usize, trans: bool, lo: usize, hi: usize) -> Vec<f32> {
    match trans {
        true => x[lo * rows..hi * rows].to_vec(),
        false => (0..rows).flat_map(|r| x[r * k + lo..r * k + hi].iter().copied()).collect(),
    }
}

#[test]
fn lane_gemms_split_a_long_k_into_slices_added_in_split_order() {
    // A product of few 16 x 32 tiles over a long K (a convolution's weight gradient) splits along K
    // on the f32 and FP8 lanes as the tiles split: each split's sums are the lanes' own product over its slice
    // of K, which col_sum adds in split order. Checked against that composition bit for bit (the
    // unsplit lanes on each slice, then col_sum's reference), and against the f64 reference within
    // the bound grown by the splits. (5, 70): three tiles; (300, 10): computed as Cᵀ, ten tiles.
    // An epilogue keeps the product whole: one launch, the unsplit bound.
    let g = gpu();
    if !runs_lanes_kernel("gemm_f32_lanes", GemmF32Lanes::available(g)) {
        return;
    }
    let lanes = GemmF32Lanes::new(g).unwrap();
    for (m, n, k, tiles) in [(5, 70, 5003, 3), (300, 10, 4100, 10)] {
        let (splits, k_split) = lowbit::kernels::gemm::split_plan(tiles, k, 0);
        let (splits, k_split) = (splits as usize, k_split as usize);
        assert!(splits > 1 && k_split * (splits - 1) < k, "{m}x{n}x{k} must split: {splits}");
        let a = data(m * k, 87, false);
        let b = data(n * k, 88, false);
        let (ab, bb) = (common::buf(&a), common::buf(&b));
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let s = GemmShape { m, n, k, trans_a: ta, trans_b: tb };
            let what = format!("split gemm_f32_lanes {m}x{n}x{k} ta={ta} tb={tb}");
            let c = GpuBuffer::<f32>::from_slice(g, "c", &vec![f32::NAN; m * n]).unwrap();
            let mut rec = lowbit::Recorder::new(g, "lanes");
            lanes.encode(g, &mut rec, &ab, &bb, s, &Epilogue::default(), &c).unwrap();
            assert_eq!(rec.dispatches(), 2, "{what}: the splits and their sum");
            g.queue.submit([rec.finish()]);
            let got = c.read(g).unwrap();
            let mut partials = Vec::with_capacity(splits * m * n);
            for i in 0..splits {
                let (lo, hi) = (i * k_split, ((i + 1) * k_split).min(k));
                let (sa, sb) = (k_slice(&a, m, k, ta, lo, hi), k_slice(&b, n, k, tb, lo, hi));
                let part = GpuBuffer::<f32>::zeros(g, "part", m * n).unwrap();
                let sl = GemmShape { k: hi - lo, ..s };
                let mut rec = lowbit::Recorder::new(g, "slice");
                lanes
                    .encode(g, &mut rec, &common::buf(&sa), &common::buf(&sb), sl, &Epilogue::default(), &part)
                    .unwrap();
                assert_eq!(rec.dispatches(), 1, "{what}: slice {i} is not split");
                g.queue.submit([rec.finish()]);
                partials.extend(part.read(g).unwrap());
            }
            if g.report().name.contains("llvmpipe") {
                // (Where no multiply-add is fused, the same operations in the same order.)
                common::assert_f32_bits_eq(&what, &got, &reference::col_sum::col_sum(&partials, splits, m * n));
            }
            let want = reference::gemm_f32_lanes::gemm_f32_lanes(&a, &b, m, n, k, ta, tb, &EpilogueRef::default());
            check(&what, &got, &want, f32_bound(k) + splits as f64 * 2f64.powi(-23));
            // With bias and ReLU: whole.
            let bias = data(n, 89, false);
            let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
            let epi = Epilogue { bias: Some(&common::buf(&bias)), relu: true, ..Default::default() };
            let mut rec = lowbit::Recorder::new(g, "lanes");
            lanes.encode(g, &mut rec, &ab, &bb, s, &epi, &c).unwrap();
            assert_eq!(rec.dispatches(), 1, "{what}: an epilogue keeps K whole");
            g.queue.submit([rec.finish()]);
            let eref = EpilogueRef { bias: Some(&bias), relu: true, ..Default::default() };
            let want = reference::gemm_f32_lanes::gemm_f32_lanes(&a, &b, m, n, k, ta, tb, &eref);
            check(&format!("{what} with bias and ReLU"), &c.read(g).unwrap(), &want, f32_bound(k));
        }
        // gemm_fp8_lanes splits as gemm_f32_lanes does: each lane word decoded to the values
        // `dequantize` gives, then the same tiles, so the f32 lanes' bits on those values.
        if !g.cpu_layouts() {
            continue;
        }
        let schemes = [
            (QuantScheme::per_row(Format::Fp8E5M2).stochastic(6, 1), QuantScheme::per_tensor(Format::Fp8E4M3)),
            (QuantScheme::native(Format::Mxfp8), QuantScheme::native(Format::Mxfp8).stochastic(6, 2)),
        ];
        for (sa, sb) in schemes {
            let what = format!("split gemm_fp8_lanes {}x{} {m}x{n}x{k}", sa.format, sb.format);
            let (qa, qb) = (quantized(&a, m, k, sa), quantized(&b, n, k, sb));
            let kernel = GemmFp8::new(g, sa.format, sb.format).unwrap();
            assert!(kernel.uses_lanes(), "{what}");
            let c = GpuBuffer::<f32>::from_slice(g, "c", &vec![f32::NAN; m * n]).unwrap();
            let mut rec = lowbit::Recorder::new(g, "lanes");
            kernel.encode(g, &mut rec, &qa, &qb, &Epilogue::default(), &c).unwrap();
            assert_eq!(rec.dispatches(), 2, "{what}: the splits and their sum");
            g.queue.submit([rec.finish()]);
            let got = c.read(g).unwrap();
            let (ac, asc, bc, bsc) = (
                qa.codes.read(g).unwrap(),
                qa.scales.read(g).unwrap(),
                qb.codes.read(g).unwrap(),
                qb.scales.read(g).unwrap(),
            );
            let want = reference::gemm_fp8_lanes::gemm_fp8_lanes(
                &ac,
                &asc,
                &qa.layout,
                &bc,
                &bsc,
                &qb.layout,
                &EpilogueRef::default(),
            );
            check(&what, &got, &want, f32_bound(k) + splits as f64 * 2f64.powi(-23));
            if g.report().name.contains("llvmpipe") {
                let da = reference::dequantize::dequantize(&ac, &asc, &qa.layout);
                let db = reference::dequantize::dequantize(&bc, &bsc, &qb.layout);
                let f32_lanes = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
                let (dab, dbb) = (common::buf(&da), common::buf(&db));
                submit(|e| {
                    lanes.encode(g, e, &dab, &dbb, GemmShape::nt(m, n, k), &Epilogue::default(), &f32_lanes).unwrap()
                });
                common::assert_f32_bits_eq(&format!("{what} vs gemm_f32_lanes"), &got, &f32_lanes.read(g).unwrap());
            }
        }
    }
}

#[test]
fn batched_f32_gemms_match_the_reference_per_batch() {
    let g = gpu();
    let gemm = GemmF32::new(g).unwrap();
    let batches = 5;
    for &(m, n, k) in &[(33, 65, 17), (64, 64, 16), (7, 129, 200)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = data(batches * m * k, 71, false);
            let b = data(batches * n * k, 72, false);
            let bias = data(n, 73, false);
            let c = GpuBuffer::<f32>::zeros(g, "c", batches * m * n).unwrap();
            let s = GemmShape { m, n, k, trans_a: ta, trans_b: tb };
            let bb = GpuBuffer::from_slice(g, "bias", &bias).unwrap();
            let epi = Epilogue { bias: Some(&bb), relu: true, ..Default::default() };
            submit(|e| gemm.encode_batched(g, e, &common::buf(&a), &common::buf(&b), s, batches, &epi, &c).unwrap());
            let got = c.read(g).unwrap();
            for i in 0..batches {
                let want = reference::gemm_f32::gemm_f32(
                    &a[i * m * k..(i + 1) * m * k],
                    &b[i * n * k..(i + 1) * n * k],
                    m,
                    n,
                    k,
                    ta,
                    tb,
                    &EpilogueRef { bias: Some(&bias), relu: true, old: None },
                );
                check(
                    &format!("batch {i} of {m}x{n}x{k} ({ta}, {tb})"),
                    &got[i * m * n..(i + 1) * m * n],
                    &want,
                    f32_bound(k),
                );
            }
        }
    }
    let c = GpuBuffer::<f32>::zeros(g, "c", 4).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let one = common::buf(&[1.0; 4]);
    assert!(gemm.encode_batched(g, &mut enc, &one, &one, GemmShape::nt(2, 2, 1), 2, &Epilogue::default(), &c).is_err());
}

/// Rows `i·rows ..` of a stacked quantized tensor as a tensor of its own (a per-tensor scale is
/// shared by every slice).
fn slice_rows(q: &QuantizedTensor, i: usize, rows: usize) -> QuantizedTensor {
    let g = gpu();
    let l = q.layout;
    let codes = q.codes.read(g).unwrap();
    let scales = q.scales.read(g).unwrap();
    let w = l.words_per_row as usize;
    let sl = QuantLayout::new(rows, l.cols as usize, l.format, l.granularity).unwrap();
    let s = if l.row_mul == 0 {
        scales
    } else {
        let per = l.row_mul as usize;
        scales[i * rows * per..(i + 1) * rows * per].to_vec()
    };
    QuantizedTensor {
        codes: GpuBuffer::from_slice(g, "slice codes", &codes[i * rows * w..(i + 1) * rows * w]).unwrap(),
        scales: GpuBuffer::from_slice(g, "slice scales", &s).unwrap(),
        layout: sl,
        samples: 1,
    }
}

#[test]
fn batched_packed_gemms_equal_their_products_one_batch_at_a_time() {
    // Attention's quantized products: every batch and head of one dispatch must give exactly what
    // the same kernel and tile give on that batch's rows alone (and so what the reference gives,
    // within the bounds the unbatched tests check).
    let g = gpu();
    let per_row =
        |f: Format| QuantScheme { format: f, granularity: Granularity::native(f), rounding: Rounding::Nearest };
    let cases = [
        (per_row(Format::Int8), per_row(Format::Int8)),
        (QuantScheme { granularity: Granularity::PerTensor, ..per_row(Format::Int8) }, per_row(Format::Int8)),
        (per_row(Format::Int4), QuantScheme::native(Format::Log4).stochastic(3, 1)),
        (per_row(Format::Mxfp4), QuantScheme::native(Format::Mxfp4).stochastic(3, 2)),
        (per_row(Format::Nvfp4), per_row(Format::Nvfp4)),
        (per_row(Format::Fp8E4M3), QuantScheme::native(Format::Fp8E5M2).stochastic(3, 3)),
        (per_row(Format::Mxfp8), per_row(Format::Mxfp8)),
    ];
    for (sa, sb) in cases {
        let (fa, fb) = (sa.format, sb.format);
        let (fp8, int) = if fa.is_fp8() {
            (Some(GemmFp8::new(g, fa, fb).unwrap()), None)
        } else {
            (None, Some(GemmInt::new(g, fa, fb).unwrap()))
        };
        for &(batches, m, n, k) in &[(3, 37, 20, 48), (4, 64, 16, 16), (2, 5, 130, 70)] {
            let qa = quantized(&data(batches * m * k, 81, false), batches * m, k, sa);
            let qb = quantized(&data(batches * n * k, 82, false), batches * n, k, sb);
            let tiles: Vec<Tile> = if fa.is_fp8() { Tile::ALL.to_vec() } else { int_tiles(&qa, &qb).to_vec() };
            let slices: Vec<_> = (0..batches).map(|i| (slice_rows(&qa, i, m), slice_rows(&qb, i, n))).collect();
            for tile in tiles {
                let c = GpuBuffer::<f32>::zeros(g, "c", batches * m * n).unwrap();
                let one = GpuBuffer::<f32>::zeros(g, "c one", m * n).unwrap();
                let none = Epilogue::default();
                let what = format!("{fa}x{fb} {batches}x{m}x{n}x{k} {tile:?}");
                // The batched product, then each batch alone (`encode_with` is one batch).
                let run = |e: &mut wgpu::CommandEncoder, a: &QuantizedTensor, b: &QuantizedTensor, nb, c| match &fp8 {
                    Some(k) => k.encode_batched_with(g, e, tile, a, b, nb, &none, c).unwrap(),
                    None => int.as_ref().unwrap().encode_batched_with(g, e, tile, a, b, nb, &none, c).unwrap(),
                };
                submit(|e| run(e, &qa, &qb, batches, &c));
                let got = c.read(g).unwrap();
                for (i, (a, b)) in slices.iter().enumerate() {
                    submit(|e| run(e, a, b, 1, &one));
                    let want = one.read(g).unwrap();
                    common::assert_f32_bits_eq(&format!("{what} batch {i}"), &got[i * m * n..(i + 1) * m * n], &want);
                }
                assert!(got.iter().all(|v| v.is_finite()) && got.iter().any(|&v| v != 0.0), "{what}: {got:?}");
            }
        }
    }
    // Operands that are not `batches` stacked matrices, SMP samples and raw output are refused.
    let kernel = GemmInt::new(g, Format::Int8, Format::Int8).unwrap();
    let qa = quantized(&data(6 * 8, 83, false), 6, 8, per_row(Format::Int8));
    let qb = quantized(&data(4 * 8, 84, false), 4, 8, per_row(Format::Int8));
    let c = GpuBuffer::<f32>::zeros(g, "c", 64).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let err = kernel.encode_batched(g, &mut enc, &qa, &qb, 4, &Epilogue::default(), &c).unwrap_err();
    assert!(err.to_string().contains("stacked"), "{err}");
    assert!(kernel.encode_batched(g, &mut enc, &qa, &qb, 0, &Epilogue::default(), &c).is_err());
    let c = GpuBuffer::<f32>::zeros(g, "c", 5).unwrap();
    assert!(kernel.encode_batched(g, &mut enc, &qa, &qb, 2, &Epilogue::default(), &c).is_err(), "c too short");
}

/// Where the run expects the unit ([`common::coop_expected`]), a kernel that finds none
/// (`available`) fails instead of passing through its refusal branch.
fn expect_coop(available: bool) {
    assert!(!common::coop_expected() || available, "LOWBIT_EXPECT_COOP: this adapter lacks f16 cooperative matrices");
}

/// The cooperative-matrix rate probe: where the adapter has 16×16×16 or 8×8×8 f16 → f32
/// cooperative matrices, every subgroup's four accumulators hold exactly the reference's value and
/// nothing past them is written; elsewhere (CI's lavapipe 25.0) building it is a clear error.
#[test]
fn the_cooperative_peak_probe_is_exact_where_the_adapter_has_it_and_refused_elsewhere() {
    use lowbit::kernels::peak_coop::{PeakCoop, OUT_PER_WORKGROUP};
    let g = gpu();
    expect_coop(PeakCoop::available(g));
    if !PeakCoop::available(g) {
        let err = PeakCoop::new(g).err().expect("no cooperative matrices here");
        assert!(matches!(err, Error::InvalidArgument(ref s) if s.contains("cooperative")), "{err}");
        return;
    }
    let probe = PeakCoop::new(g).unwrap();
    let sub = g.report().subgroup_sizes.unwrap().0 as usize;
    let (wgs, rounds) = (3u32, 37u32);
    let out = GpuBuffer::from_slice(g, "out", &vec![f32::NAN; wgs as usize * OUT_PER_WORKGROUP]).unwrap();
    submit(|e| probe.encode(g, e, wgs, rounds, 0.0625, 0.0625, &out).unwrap());
    let v = out.read(g).unwrap();
    let size = probe.matrix_size();
    let want = reference::peak_coop::peak_coop_value(size, rounds, 0.0625, 0.0625);
    assert_eq!(want, rounds as f32 * size as f32 / 256.0);
    // Each subgroup's four matrices at the start of its 1024 floats (all of them at 16×16×16).
    let per_subgroup = 4 * (size * size) as usize;
    for w in 0..wgs as usize {
        let block = &v[w * OUT_PER_WORKGROUP..(w + 1) * OUT_PER_WORKGROUP];
        for (s, slot) in block.chunks(1024).enumerate() {
            let (mine, rest) = slot.split_at(if s < 128 / sub { per_subgroup } else { 0 });
            assert!(mine.iter().all(|&x| x == want), "workgroup {w} subgroup {s}: {:?}", &mine[..4]);
            assert!(rest.iter().all(|x| x.is_nan()), "workgroup {w} subgroup {s} wrote past its matrices");
        }
    }
}

#[test]
fn integer_splits_along_k_give_the_unsplit_bits() {
    // A product of few tiles over a long K (a convolution's weight gradient) with one sample and
    // per-row scales splits on the tiles into exact i32 sums and a combine launch that forms each
    // output from their total: the bits of the unsplit product, under every epilogue (which no
    // longer keeps such a product whole), for any split — the device's fill sets how many
    // (fill_split_plan: with a fill of 0, split_plan's). Past int8 × int8's exact i32 run the
    // unsplit product folds each chunk of it into f32 in turn; the splits restart at every chunk
    // and the combine folds each chunk's total as the tiles do (exact_split_plan). The unsplit
    // product is the first of two batched ones (batched products are never split), the same
    // operands stacked twice.
    use lowbit::kernels::gemm::{exact_split_plan, fill_split_plan, split_plan};
    let g = gpu();
    // fill_split_plan: resnet20's first-stage weight gradient at batch 128 (five 32×32 tiles),
    // 25 splits by split_plan, 103 at the default fill; never fewer than split_plan's, nor more
    // than K allows (1,024 each), nor where split_plan keeps the product whole.
    let fill = lowbit::kernels::TEAM_FILL;
    assert_eq!(split_plan(5, 131_072, 0), (25, 5248));
    assert_eq!(fill_split_plan(5, 131_072, fill), (103, 1280));
    assert_eq!(fill_split_plan(5, 131_072, 0), (25, 5248));
    assert_eq!(fill_split_plan(5, 131_072, u32::MAX), (128, 1024));
    assert_eq!(fill_split_plan(1, 5003, fill), split_plan(1, 5003, 0));
    assert_eq!(fill_split_plan(64, 1 << 20, fill), (1, 0));
    // exact_split_plan: the same splits over one chunk; at 32×32 pixels that shape has int8 ×
    // int8's chunk of 131,040 and one of 32: 103 splits of 1,280 (the last 480) and one of 32.
    assert_eq!(exact_split_plan(5, 100_352, 100_352, fill), (98, 1024, 0));
    assert_eq!(exact_split_plan(5, 131_072, 131_040, fill), (104, 1280, 103));
    assert_eq!(exact_split_plan(5, 131_072, 131_040, 0), (26, 5248, 25));
    // Scale blocks along K (MXFP4's 32) or chunks too short for a split: none exact.
    assert_eq!(exact_split_plan(5, 131_072, 32, fill), (1, 0, 0));
    assert_eq!(exact_split_plan(5, 131_072, 992, fill), (1, 0, 0));
    assert_eq!(exact_split_plan(64, 1 << 20, 131_040, fill), (1, 0, 0));
    let twice = |x: &[f32]| [x, x].concat();
    let mut cases = 0;
    let formats = [(Format::Int8, Format::Int8), (Format::Log4, Format::Int4), (Format::Fp4E2M1, Format::Int8)];
    // (7, 40, 130,000) (K within int8 × int8's exact i32 run, scheme::exact_chunk): two 32×32
    // tiles, 64 splits by split_plan, 120 at the default fill; one larger tile, 120 either way.
    // (7, 40, 300,000): chunks of 131,040, 131,040 and 37,920; at the default fill 108, 108 and
    // 32 splits of 1,216; at a fill of 0, 28, 28 and 9 of 4,736 (two tiles) or 56, 56 and 17 of
    // 2,368 (one).
    let one_chunk: &[(Tile, [u32; 2])] = &[(Tile::T32, [120, 64]), (Tile::T64, [120, 120]), (Tile::T128, [120, 120])];
    let chunks: &[(Tile, [u32; 2])] = &[(Tile::T32, [248, 65]), (Tile::T64, [248, 129]), (Tile::T128, [248, 129])];
    for (m, n, k, formats, fills, planned_want) in [
        (7, 9, 5003, &formats[..], &[fill][..], &[][..]),
        (7, 40, 130_000, &formats[..1], &[fill, 0][..], one_chunk),
        (7, 40, 300_000, &formats[..1], &[fill, 0][..], chunks),
    ] {
        let a = data(m * k, 41, false);
        let b = data(n * k, 42, false);
        for &(fa, fb) in formats {
            let sa = QuantScheme::per_row(fa).stochastic(7, 1);
            let (qa, qa2) = (quantized(&a, m, k, sa), quantized(&twice(&a), 2 * m, k, sa));
            let sb = QuantScheme::per_row(fb);
            let (qb, qb2) = (quantized(&b, n, k, sb), quantized(&twice(&b), 2 * n, k, sb));
            // (The stacked operands' first halves are the operands: codes drawn by their index.)
            assert_u32_eq("stacked a", &qa2.codes.read(g).unwrap()[..qa.layout.words()], &qa.codes.read(g).unwrap());
            let kernel = GemmInt::new(g, fa, fb).unwrap();
            for &tile in int_tiles(&qa, &qb) {
                let mut planned = Vec::new();
                for &fill in fills {
                    let gf = g.with_fill(fill);
                    let splits = GemmInt::exact_splits(&gf, &qa, &qb, tile).unwrap();
                    assert!(splits > 1, "{fa}x{fb} {tile:?}: {m}x{n}x{k} must split");
                    planned.push(splits);
                    let what = format!("{m}x{n}x{k} {fa}x{fb} {tile:?}, {splits} splits");
                    check_splits_against_batched(
                        &what,
                        (m, n),
                        |rec, epi, c| kernel.encode_with(&gf, rec, tile, &qa, &qb, epi, c).unwrap(),
                        |rec, epi, c| kernel.encode_batched_with(&gf, rec, tile, &qa2, &qb2, 2, epi, c).unwrap(),
                    );
                    cases += 3;
                }
                if !planned_want.is_empty() {
                    let want = planned_want.iter().find(|w| w.0 == tile).expect("a count for every tile").1;
                    assert_eq!(planned, want, "{m}x{n}x{k} {tile:?}: the fills' splits");
                }
            }
        }
    }
    assert!(cases >= 45, "{cases}");
}

/// gemm_int's product of `qa` (its samples averaged) and `qb` (`[m, k]` and `[n, k]`, `blocks`
/// scale chunks along K), which the dispatcher runs on gemm_int_lanes in one launch (two where it
/// splits K: GemmIntLanes::splits), under every epilogue variant: the reference's values within
/// the epilogue bound, the tiled kernel's bits where it does not split K (the long K of few outputs
/// it cuts into partial sums added by another launch, without an epilogue) but for its 128 tile's
/// folds of several blocks (fused multiply-adds; one sample only), and max |C| where asked.
fn check_int_lanes_epilogues(
    kernel: &GemmInt,
    qa: &QuantizedTensor,
    qb: &QuantizedTensor,
    (m, n, k): (usize, usize, usize),
    blocks: usize,
    what: &str,
) {
    let g = gpu();
    let samples = qa.samples as usize;
    let bias = data(n, 93, false);
    let old = data(m * n, 94, false);
    let biasb = common::buf(&bias);
    for variant in 0..3 {
        let amax = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
        let (epi, eref) = epilogue_variant(variant, &bias, &biasb, &old, &amax);
        let c = GpuBuffer::from_slice(g, "c", &old).unwrap();
        let mut rec = lowbit::Recorder::new(g, "lanes");
        kernel.encode(g, &mut rec, qa, qb, &epi, &c).unwrap();
        let splits = lowbit::kernels::gemm_int_lanes::GemmIntLanes::splits(qa, qb);
        assert_eq!(rec.dispatches(), if splits > 1 { 2 } else { 1 }, "{what}: launches");
        g.queue.submit([rec.finish()]);
        let got = c.read(g).unwrap();
        let want = reference::gemm_int_lanes::gemm_int_lanes(
            &qa.codes.read(g).unwrap(),
            &qa.scales.read(g).unwrap(),
            &qa.layout,
            samples,
            &qb.codes.read(g).unwrap(),
            &qb.scales.read(g).unwrap(),
            &qb.layout,
            &eref,
        );
        check(&format!("{what} epilogue {variant}"), &got, &want, int_epilogue_bound(blocks, samples));
        // (Where the lanes split K, their exact sums over the splits are the unsplit ones: the
        // tiles' bits too, where an epilogue keeps the tiles from splitting; likewise chunks
        // longer than the lanes fold from f32 sums, which the tiles fold in the same order.)
        let chunk = qa.layout.shared_chunk(&qb.layout) as usize;
        let long_chunks = chunk < k && chunk > lowbit::kernels::gemm_int_lanes::MAX_BLOCK as usize;
        if k <= 300 || ((splits > 1 || long_chunks) && variant != 0) {
            for &tile in int_tiles(qa, qb).iter().filter(|&&t| (blocks == 1 && samples == 1) || t != Tile::T128) {
                let tiled = GpuBuffer::from_slice(g, "c", &old).unwrap();
                submit(|e| kernel.encode_with(g, e, tile, qa, qb, &epi, &tiled).unwrap());
                common::assert_f32_bits_eq(
                    &format!("{what} epilogue {variant} vs {tile:?}"),
                    &got,
                    &tiled.read(g).unwrap(),
                );
            }
        }
        if variant == 2 {
            let want_max = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
            assert_eq!(f32::from_bits(amax.read(g).unwrap()[0]), want_max, "{what}: amax");
        }
    }
}

#[test]
fn int_lane_gemm_gives_gemm_ints_bits_where_the_adapter_has_it_and_is_refused_elsewhere() {
    use lowbit::kernels::gemm_int_lanes::GemmIntLanes;
    let g = gpu();
    let here = runs_lanes_kernel("gemm_int_lanes", GemmIntLanes::available(g));
    let per_row = |f: Format| QuantScheme { format: f, granularity: Granularity::PerRow, rounding: Rounding::Nearest };
    if !here {
        let err =
            GemmIntLanes::new(g, Format::Int8, Format::Int8).err().expect("gemm_int_lanes without 8-lane subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        let q = quantized(&data(8 * 8, 1, false), 8, 8, per_row(Format::Int8));
        assert!(!GemmInt::new(g, Format::Int8, Format::Int8).unwrap().runs_lanes(&q, &q));
        return;
    }
    if !g.cpu_layouts() {
        // GPU layouts on an adapter with the lanes (`LOWBIT_LAYOUTS=gpu` on lavapipe): the
        // dispatcher keeps its tiles; the lanes kernel is tested under the CPU layouts.
        let q = quantized(&data(8 * 8, 1, false), 8, 8, per_row(Format::Int8));
        assert!(!GemmInt::new(g, Format::Int8, Format::Int8).unwrap().runs_lanes(&q, &q));
        return;
    }
    let stochastic = |f: Format| QuantScheme::per_row(f).stochastic(5, 2);
    let cases = [
        (per_row(Format::Int8), per_row(Format::Int8)),
        (QuantScheme::per_tensor(Format::Int8), per_row(Format::Int8)),
        (per_row(Format::Int4), stochastic(Format::Log4)),
        (stochastic(Format::Log4), per_row(Format::Int8)),
        (per_row(Format::Int3), per_row(Format::Int2)),
        (per_row(Format::Fp4E2M1), per_row(Format::Fp4E2M1)),
        // Scale blocks along K: one chunk where K fits a block, folded block by block past it.
        (QuantScheme { granularity: Granularity::PerBlock(32), ..per_row(Format::Int8) }, per_row(Format::Int8)),
        (QuantScheme::native(Format::Mxfp4), QuantScheme::native(Format::Mxfp4).stochastic(6, 1)),
        (QuantScheme::native(Format::Nvfp4), QuantScheme::native(Format::Nvfp4)),
    ];
    // Tails of the 16 x 32 tile in M and N, K of one lane word, ragged K, and K past one exact
    // f32 chunk (1024 products); (300, 10, 40) and (70, 16, 1100) narrower than the tile and
    // taller than wide, computed as Cᵀ = B·Aᵀ (with B's format × A's) and stored as C; with one
    // scale chunk over K, (5, 40, 2500), (16, 25, 5000) (a first convolution's weight gradient:
    // one tile) and (40, 5, 3000) (as Cᵀ) split along K, their sums added by a second launch.
    let shapes: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (16, 32, 4),
        (33, 65, 17),
        (260, 70, 300),
        (5, 40, 2500),
        (300, 10, 40),
        (70, 16, 1100),
        (16, 25, 5000),
        (40, 5, 3000),
    ];
    let mut split = 0;
    for (sa, sb) in cases {
        let (fa, fb) = (sa.format, sb.format);
        let kernel = GemmInt::new(g, fa, fb).unwrap();
        for &(m, n, k) in shapes {
            let (a, b) = (data(m * k, 91, false), data(n * k, 92, false));
            let (qa, qb) = (quantized(&a, m, k, sa), quantized(&b, n, k, sb));
            let what = format!("gemm_int_lanes {fa}x{fb} {m}x{n}x{k}");
            assert!(kernel.runs_lanes(&qa, &qb), "{what}: the dispatcher should run the lane kernel");
            let raw = GpuBuffer::<i32>::zeros(g, "raw", m * n).unwrap();
            submit(|e| kernel.encode_raw(g, e, &qa, &qb, &raw).unwrap());
            let want_raw = reference::gemm_int_lanes::gemm_int_lanes_raw(
                &qa.codes.read(g).unwrap(),
                &qa.layout,
                1,
                &qb.codes.read(g).unwrap(),
                &qb.layout,
            );
            let as_u = |v: Vec<i32>| v.into_iter().map(|x| x as u32).collect::<Vec<u32>>();
            assert_u32_eq(&format!("{what} raw"), &as_u(raw.read(g).unwrap()), &as_u(want_raw));
            check_int_lanes_epilogues(&kernel, &qa, &qb, (m, n, k), chunks(k, sa.granularity, sb.granularity), &what);
            split += usize::from(GemmIntLanes::splits(&qa, &qb) > 1);
        }
    }
    // Every case of one scale chunk over K split the three long shapes (the six but the
    // block-scaled three).
    assert_eq!(split, 3 * 6, "products split along K");
    // Int8 x int8 per row over a K past the exact i32 run (131,040: a weight gradient over 128
    // CIFAR images' 32x32 pixels is 131,072 long): two chunks, each summed in i32 and folded
    // (entry main_samples, one sample), never as Cᵀ. Few tiles: split (entry main) with the
    // splits restarting at the second chunk, 63 + 1 of 2,112 (two tiles) and 42 + 1 of 3,136
    // (three), their sums folded chunk by chunk (main_combine): the bits of main_samples' unsplit
    // product (the first of two batched ones, never split). Values of one sign near the rows'
    // maxima, so that a chunk's sum passes f32's exact integers (2²⁴) within its first 1,100
    // products.
    let k = 131_104;
    let kernel = GemmInt::new(g, Format::Int8, Format::Int8).unwrap();
    let near_max = |n: usize, seed: u32| data(n, seed, false).into_iter().map(|v| 4.0 + v.abs()).collect::<Vec<_>>();
    // (Likewise blocks of 1,024, the longest `main` folds from f32 sums: a split per block.)
    let twice = |x: &[f32]| [x, x].concat();
    let b1024 = QuantScheme { granularity: Granularity::PerBlock(1024), ..per_row(Format::Int8) };
    let long = [(5, 40, k, 131_040, 64), (40, 5, k, 131_040, 43)];
    for (m, n, k, chunk, splits) in long.into_iter().chain([(5, 40, 20_480, 1024, 20)]) {
        let sch = if chunk == 1024 { b1024 } else { per_row(Format::Int8) };
        let (a, b) = (near_max(m * k, 97), near_max(n * k, 98));
        let (qa, qb) = (quantized(&a, m, k, sch), quantized(&b, n, k, sch));
        let what = format!("gemm_int_lanes int8 {m}x{n}x{k}, chunks of {chunk}");
        assert!(kernel.runs_lanes(&qa, &qb), "{what}: the dispatcher should run the lane kernel");
        assert_eq!(qa.layout.shared_chunk(&qb.layout), chunk, "{what}");
        assert_eq!(GemmIntLanes::splits(&qa, &qb), splits, "{what}: split at the chunks");
        check_int_lanes_epilogues(&kernel, &qa, &qb, (m, n, k), k.div_ceil(chunk as usize), &what);
        let (qa2, qb2) = (quantized(&twice(&a), 2 * m, k, sch), quantized(&twice(&b), 2 * n, k, sch));
        check_splits_against_batched(
            &what,
            (m, n),
            |rec, epi, c| kernel.encode(g, rec, &qa, &qb, epi, c).unwrap(),
            |rec, epi, c| kernel.encode_batched(g, rec, &qa2, &qb2, 2, epi, c).unwrap(),
        );
    }
    // Top codes over K = 2500: every product 127², so one f32 sum over all of K would pass 2²⁴
    // and round; the kernel's 1024-product chunks keep it exact.
    let k = 2500;
    let top = quantized(&vec![1.0f32; 3 * k], 3, k, per_row(Format::Int8));
    let kernel = GemmInt::new(g, Format::Int8, Format::Int8).unwrap();
    let raw = GpuBuffer::<i32>::zeros(g, "raw", 9).unwrap();
    submit(|e| kernel.encode_raw(g, e, &top, &top, &raw).unwrap());
    assert_eq!(raw.read(g).unwrap(), vec![127 * 127 * k as i32; 9]);
    // Batched products: each batch as the tiled kernel gives it.
    for &(batches, m, n, kb) in &[(3, 37, 20, 48), (2, 5, 130, 70)] {
        let qa = quantized(&data(batches * m * kb, 95, false), batches * m, kb, per_row(Format::Int8));
        let qb = quantized(&data(batches * n * kb, 96, false), batches * n, kb, per_row(Format::Int8));
        let (c, tiled) = (
            GpuBuffer::<f32>::zeros(g, "c", batches * m * n).unwrap(),
            GpuBuffer::<f32>::zeros(g, "tiled", batches * m * n).unwrap(),
        );
        submit(|e| kernel.encode_batched(g, e, &qa, &qb, batches, &Epilogue::default(), &c).unwrap());
        submit(|e| {
            kernel.encode_batched_with(g, e, Tile::T32, &qa, &qb, batches, &Epilogue::default(), &tiled).unwrap()
        });
        common::assert_f32_bits_eq(
            &format!("batched {batches}x{m}x{n}x{kb}"),
            &c.read(g).unwrap(),
            &tiled.read(g).unwrap(),
        );
    }
    let x = data(16 * 64, 97, false);
    let mx = quantized(&x, 16, 64, QuantScheme::native(Format::Mxfp4));
    assert!(GemmIntLanes::fits(&mx, &mx));
    assert!(matches!(GemmIntLanes::new(g, Format::Fp8E4M3, Format::Int8), Err(Error::InvalidArgument(_))));
}

/// `GemmInt::tune_untuned`: the untiled entry points note each shape class they choose a path
/// for without a tuning result; tuning times, once for each, the tiles that give the product its
/// untuned bits (and the cooperative-matrix unit where it takes the operands: lavapipe of Mesa 26
/// in CI), and the products keep their bits whatever it chose.
#[test]
fn int_coop_and_tiles_tuned_for_the_shapes_met_keep_the_bits() {
    use lowbit::kernels::gemm_int_coop::GemmIntCoop;
    // The GPU layouts: the tiles' path, and the unit's where the adapter has one.
    let g = gpu().with_layouts(lowbit::Layouts::Gpu);
    let kernel = GemmInt::new(&g, Format::Int8, Format::Int4).unwrap();
    let scheme = |f: Format| QuantScheme::per_row(f);
    let product = |m: usize, n: usize, k: usize| {
        let (a, b) = (data(m * k, 71, false), data(n * k, 72, false));
        (quantized(&a, m, k, scheme(Format::Int8)), quantized(&b, n, k, scheme(Format::Int4)))
    };
    let (m, n, k) = (40, 24, 300);
    let (qa, qb) = product(m, n, k);
    let unit = kernel.runs_coop(&qa, &qb);
    assert!(
        !common::coop_expected() || !GemmIntCoop::allowed().unwrap() || unit,
        "LOWBIT_EXPECT_COOP: the unit does not take the product"
    );
    let run = |qa: &QuantizedTensor, qb: &QuantizedTensor| {
        let c = GpuBuffer::<f32>::zeros(&g, "c", qa.layout.rows as usize * qb.layout.rows as usize).unwrap();
        submit(|e| kernel.encode(&g, e, qa, qb, &Epilogue::default(), &c).unwrap());
        c.read(&g).unwrap()
    };
    assert_eq!(kernel.untuned_classes(), 0);
    let before = run(&qa, &qb);
    assert_eq!(kernel.untuned_classes(), 1, "the product's class is noted");
    // Another shape of the same class (ceil(log2) of each dimension) is the same class.
    let (qa2, qb2) = product(m - 7, n + 3, k - 40);
    let before2 = run(&qa2, &qb2);
    assert_eq!(kernel.untuned_classes(), 1);
    assert_eq!(kernel.tuned(m, n, k), None);
    assert_eq!(kernel.tune_untuned(&g).unwrap(), 1);
    assert_eq!(kernel.untuned_classes(), 0);
    let tile = kernel.tuned(m, n, k).expect("a tile for the class");
    assert!(int_tiles(&qa, &qb).contains(&tile));
    assert_eq!(kernel.coop_tuned(m, n, k).is_some(), unit, "the unit is timed where it takes the product");
    // What it timed: the first product met, every tile it could take, the unit where it took it.
    let timed = kernel.tunings();
    assert_eq!(timed.len(), 1);
    let t = &timed[0];
    assert_eq!((t.fmt_a, t.fmt_b, t.m, t.n, t.k), (Format::Int8, Format::Int4, m, n, k));
    assert_eq!(t.tiles.iter().map(|x| x.0).collect::<Vec<_>>(), int_tiles(&qa, &qb).to_vec());
    assert!(t.tiles.iter().all(|x| x.1 > 0.0) && t.unit.is_some() == unit);
    assert_eq!((t.tile(), Some(t.on_unit())), (tile, kernel.coop_tuned(m, n, k).or(Some(false))));
    let line = t.to_string();
    assert!(
        line.starts_with("int8×int4 40×24×300: ")
            && line.ends_with(&format!("→ {}", if t.on_unit() { "unit".into() } else { format!("{tile:?}") })),
        "{line}"
    );
    // The same bits on whichever path was chosen, and as on a tile given by name.
    common::assert_f32_bits_eq("tuned", &run(&qa, &qb), &before);
    common::assert_f32_bits_eq("tuned, same class", &run(&qa2, &qb2), &before2);
    let named = GpuBuffer::<f32>::zeros(&g, "c", m * n).unwrap();
    submit(|e| kernel.encode_with(&g, e, Tile::T32, &qa, &qb, &Epilogue::default(), &named).unwrap());
    common::assert_f32_bits_eq("tuned vs the 32 tile", &before, &named.read(&g).unwrap());
    assert_eq!(kernel.untuned_classes(), 0, "a tuned class is not noted again");
    assert_eq!(kernel.tune_untuned(&g).unwrap(), 0);
    // A product whose splits along K add f32 partial values (SMP's samples), so that its bits
    // follow the split count, which follows the tile count: 16 × 40 outputs on one 64×64 or 128×128
    // tile or two 32×32 ones split K = 70,000 differently, and tuning may only take the tiles that
    // split it as its untuned path (the heuristic's 32×32 tile) does.
    let (ms, ns, ks) = (16, 40, 70_000);
    use lowbit::kernels::gemm::split_plan;
    assert_ne!(split_plan(1, ks, 0).0, split_plan(2, ks, 0).0);
    let (da, db) = (data(ms * ks, 73, false), data(ns * ks, 74, false));
    let smp = quantized_samples(&da, ms, ks, QuantScheme::per_row(Format::Int8).stochastic(3, 1), 2);
    let qbs = quantized(&db, ns, ks, scheme(Format::Int4));
    let untuned = run(&smp, &qbs);
    assert_eq!(kernel.untuned_classes(), 1);
    assert_eq!(kernel.tune_untuned(&g).unwrap(), 1);
    let timed = kernel.tunings();
    let t = timed.last().unwrap();
    assert_eq!((t.m, t.n, t.k, t.unit), (ms, ns, ks, None), "SMP's samples do not go to the unit");
    assert_eq!(t.tiles.iter().map(|x| x.0).collect::<Vec<_>>(), [Tile::T32], "only the tiles of its split");
    common::assert_f32_bits_eq("SMP, tuned", &run(&smp, &qbs), &untuned);
    // A product whose splits add exactly: the 32×32 tile (81 tiles) runs it whole, the larger
    // ones split K = 2,100 into exact sums; every tile gives the unsplit bits, so all are timed.
    let (me, ne, ke) = (260, 260, 2100);
    let (qae, qbe) = product(me, ne, ke);
    let whole = run(&qae, &qbe);
    assert_eq!(kernel.untuned_classes(), 1);
    assert_eq!(kernel.tune_untuned(&g).unwrap(), 1);
    let timed = kernel.tunings();
    let t = timed.last().unwrap();
    assert_eq!(t.tiles.iter().map(|x| x.0).collect::<Vec<_>>(), int_tiles(&qae, &qbe).to_vec());
    common::assert_f32_bits_eq("exact splits, tuned", &run(&qae, &qbe), &whole);
    // The raw sums' entry point notes and takes its classes the same way.
    let (qa3, qb3) = product(3, 5, 2000);
    let raw = GpuBuffer::<i32>::zeros(&g, "raw", 15).unwrap();
    submit(|e| kernel.encode_raw(&g, e, &qa3, &qb3, &raw).unwrap());
    let first = raw.read(&g).unwrap();
    assert_eq!(kernel.untuned_classes(), 1);
    assert_eq!(kernel.tune_untuned(&g).unwrap(), 1);
    submit(|e| kernel.encode_raw(&g, e, &qa3, &qb3, &raw).unwrap());
    assert_eq!(raw.read(&g).unwrap(), first);
    assert_eq!(kernel.untuned_classes(), 0);
}

/// gemm_int_coop (the cooperative-matrix unit) against gemm_int's 64×64 tiles, bit for bit, and
/// the reference within the epilogue bound, under every epilogue variant, where the adapter has
/// f16 cooperative matrices (lavapipe from Mesa 25.1 on: 8×8×8; NVIDIA: 16×16×16); elsewhere
/// (CI's lavapipe 25.0) asking for it is a clear error that records nothing and the dispatcher
/// keeps the SIMD kernels.
#[test]
fn int_coop_gemm_gives_gemm_ints_bits_where_the_adapter_has_it_and_is_refused_elsewhere() {
    use lowbit::kernels::gemm_int_coop::GemmIntCoop;
    let g = gpu();
    let per_row = |f: Format| QuantScheme { format: f, granularity: Granularity::PerRow, rounding: Rounding::Nearest };
    let q8 = quantized(&data(8 * 8, 1, false), 8, 8, per_row(Format::Int8));
    let int8 = GemmInt::new(g, Format::Int8, Format::Int8).unwrap();
    let c = GpuBuffer::<f32>::zeros(g, "c", 64).unwrap();
    expect_coop(GemmIntCoop::available(g));
    let Some(size) = GemmIntCoop::size(g) else {
        let err = GemmIntCoop::new(g, Format::Int8, Format::Int8).err().expect("gemm_int_coop without the unit");
        assert!(err.to_string().contains("cooperative matrices"), "{err}");
        let mut rec = lowbit::Recorder::new(g, "coop");
        let err = int8.encode_coop(g, &mut rec, &q8, &q8, &Epilogue::default(), &c).expect_err("refused");
        assert!(err.to_string().contains("cooperative matrices"), "{err}");
        let raw = GpuBuffer::<i32>::zeros(g, "raw", 64).unwrap();
        let err = int8.encode_coop_raw(g, &mut rec, &q8, &q8, &raw).expect_err("refused");
        assert!(err.to_string().contains("cooperative matrices"), "{err}");
        assert_eq!(rec.dispatches(), 0, "a refused product records nothing");
        assert!(!int8.runs_coop(&q8, &q8), "the dispatcher picks the SIMD kernels here");
        assert_eq!(int8.coop_refusal(), None);
        return;
    };
    if !GemmIntCoop::allowed().unwrap() {
        // LOWBIT_COOP=0 (CI runs that once on the unit): the SIMD kernels run every product and
        // asking for the unit says why not.
        assert!(int8.coop_refusal().is_some_and(|why| why.contains("LOWBIT_COOP=0")), "{:?}", int8.coop_refusal());
        assert!(!int8.runs_coop(&q8, &q8));
        let err = int8.encode_coop(g, &mut lowbit::Recorder::new(g, "off"), &q8, &q8, &Epilogue::default(), &c);
        assert!(err.expect_err("turned off").to_string().contains("LOWBIT_COOP=0"));
        return;
    }
    // The unit passed GemmInt's own check, and the dispatcher runs it where the lanes kernel does
    // not run (GPU layouts).
    assert_eq!(int8.coop_refusal(), None);
    assert_eq!(int8.runs_coop(&q8, &q8), !int8.runs_lanes(&q8, &q8));
    let stochastic = |f: Format| QuantScheme::per_row(f).stochastic(5, 2);
    let cases = [
        (per_row(Format::Int8), per_row(Format::Int8)),
        (QuantScheme::per_tensor(Format::Int8), per_row(Format::Int8)),
        (per_row(Format::Int4), stochastic(Format::Log4)),
        (stochastic(Format::Log4), per_row(Format::Int8)),
        (per_row(Format::Int3), per_row(Format::Int2)),
        (per_row(Format::Fp4E2M1), per_row(Format::Fp4E2M1)),
        // Scale blocks along K, folded block by block.
        (QuantScheme { granularity: Granularity::PerBlock(32), ..per_row(Format::Int8) }, per_row(Format::Int8)),
        (QuantScheme::native(Format::Mxfp4), QuantScheme::native(Format::Mxfp4).stochastic(6, 1)),
        (QuantScheme::native(Format::Nvfp4), QuantScheme::native(Format::Nvfp4)),
    ];
    // A tile's tails in M and N, K within one step, ragged K, K past one exact f32 sum (1024
    // products) and, for few outputs over a long K, split along K (epilogue variant 0).
    let shapes: &[(usize, usize, usize)] =
        &[(1, 1, 1), (33, 65, 17), (64, 64, 32), (130, 70, 300), (5, 40, 2500), (70, 16, 1100)];
    for (sa, sb) in cases {
        let (fa, fb) = (sa.format, sb.format);
        let kernel = GemmInt::new(g, fa, fb).unwrap();
        for &(m, n, k) in shapes {
            let (a, b) = (data(m * k, 91, false), data(n * k, 92, false));
            let (qa, qb) = (quantized(&a, m, k, sa), quantized(&b, n, k, sb));
            let what = format!("gemm_int_coop{size} {fa}x{fb} {m}x{n}x{k}");
            assert!(GemmIntCoop::fits(size, &qa, &qb), "{what}");
            let raw = GpuBuffer::<i32>::zeros(g, "raw", m * n).unwrap();
            submit(|e| kernel.encode_coop_raw(g, e, &qa, &qb, &raw).unwrap());
            let (ac, asc) = (qa.codes.read(g).unwrap(), qa.scales.read(g).unwrap());
            let (bc, bsc) = (qb.codes.read(g).unwrap(), qb.scales.read(g).unwrap());
            let want_raw = reference::gemm_int_coop::gemm_int_coop_raw(&ac, &qa.layout, 1, &bc, &qb.layout);
            let as_u = |v: Vec<i32>| v.into_iter().map(|x| x as u32).collect::<Vec<u32>>();
            assert_u32_eq(&format!("{what} raw"), &as_u(raw.read(g).unwrap()), &as_u(want_raw));
            let bias = data(n, 93, false);
            let old = data(m * n, 94, false);
            let biasb = common::buf(&bias);
            for variant in 0..3 {
                let amax = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
                let (epi, eref) = epilogue_variant(variant, &bias, &biasb, &old, &amax);
                let coop = GpuBuffer::from_slice(g, "c", &old).unwrap();
                submit(|e| kernel.encode_coop(g, e, &qa, &qb, &epi, &coop).unwrap());
                let got = coop.read(g).unwrap();
                let want =
                    reference::gemm_int_coop::gemm_int_coop(&ac, &asc, &qa.layout, 1, &bc, &bsc, &qb.layout, &eref);
                let tiled = GpuBuffer::from_slice(g, "c", &old).unwrap();
                submit(|e| kernel.encode_with(g, e, Tile::T64, &qa, &qb, &epi, &tiled).unwrap());
                common::assert_f32_bits_eq(&format!("{what} epilogue {variant} vs T64"), &got, &tiled.read(g).unwrap());
                // Split along K, each split folds its own sums, whose rounding is relative to the
                // split's value, not the total's: there the tiled kernel's bits are the check.
                let tiles = (m.div_ceil(64) * n.div_ceil(64)) as u32;
                if lowbit::kernels::gemm::split_plan(tiles, k, epi.flags()).0 == 1 {
                    let blocks = chunks(k, sa.granularity, sb.granularity);
                    check(&format!("{what} epilogue {variant}"), &got, &want, int_epilogue_bound(blocks, 1));
                }
                if variant == 2 {
                    let want_max = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
                    assert_eq!(f32::from_bits(amax.read(g).unwrap()[0]), want_max, "{what}: amax");
                }
            }
        }
    }
    // Codes near the top over K = 2501 with one scale: A's all 127, B's 127 but 126 at every third
    // element, so products of 127² (odd) and 127·126 (even) whose running sums pass 2²⁴ after
    // about 1040 of them; a sum in f32 over more would round where it is odd. The unit's sums
    // leave it every 1024 elements, so the exact total reaches the scales.
    let k = 2501;
    let top = quantized(&vec![1.0f32; 3 * k], 3, k, QuantScheme::per_tensor(Format::Int8));
    let near: Vec<f32> = (0..3 * k).map(|i| if i % 3 == 0 { 126.0 / 127.0 } else { 1.0 }).collect();
    let near = quantized(&near, 3, k, QuantScheme::per_tensor(Format::Int8));
    // (With an epilogue, so that no split cuts K.)
    let zeros = GpuBuffer::<f32>::zeros(g, "bias", 3).unwrap();
    let epi = Epilogue { bias: Some(&zeros), ..Default::default() };
    let (coop, tiled) = (GpuBuffer::<f32>::zeros(g, "c", 9).unwrap(), GpuBuffer::<f32>::zeros(g, "tiled", 9).unwrap());
    submit(|e| int8.encode_coop(g, e, &top, &near, &epi, &coop).unwrap());
    submit(|e| int8.encode_with(g, e, Tile::T64, &top, &near, &epi, &tiled).unwrap());
    common::assert_f32_bits_eq("codes near the top", &coop.read(g).unwrap(), &tiled.read(g).unwrap());
    // Batched products: each batch as the tiled kernel gives it.
    for &(batches, m, n, kb) in &[(3, 37, 20, 48), (2, 5, 130, 70)] {
        let qa = quantized(&data(batches * m * kb, 95, false), batches * m, kb, per_row(Format::Int8));
        let qb = quantized(&data(batches * n * kb, 96, false), batches * n, kb, per_row(Format::Int8));
        let (coop, tiled) = (
            GpuBuffer::<f32>::zeros(g, "c", batches * m * n).unwrap(),
            GpuBuffer::<f32>::zeros(g, "tiled", batches * m * n).unwrap(),
        );
        submit(|e| int8.encode_coop_batched(g, e, &qa, &qb, batches, &Epilogue::default(), &coop).unwrap());
        submit(|e| int8.encode_batched_with(g, e, Tile::T64, &qa, &qb, batches, &Epilogue::default(), &tiled).unwrap());
        common::assert_f32_bits_eq(
            &format!("batched {batches}x{m}x{n}x{kb}"),
            &coop.read(g).unwrap(),
            &tiled.read(g).unwrap(),
        );
    }
    // Past int8 × int8's exact i32 run (K = 300,000: chunks of 131,040, 131,040 and 37,920) the
    // splits restart at every chunk (gemm::exact_split_plan): under every epilogue, in two
    // launches, the unit's splits give the unsplit tiles' bits (the first of two batched
    // products, which never split, of the operands stacked twice).
    let (m, n, k) = (5, 40, 300_000);
    let (a, b) = (data(m * k, 100, false), data(n * k, 101, false));
    let twice = |x: &[f32]| [x, x].concat();
    let (qa, qa2) =
        (quantized(&a, m, k, per_row(Format::Int8)), quantized(&twice(&a), 2 * m, k, per_row(Format::Int8)));
    let (qb, qb2) =
        (quantized(&b, n, k, per_row(Format::Int8)), quantized(&twice(&b), 2 * n, k, per_row(Format::Int8)));
    assert!(GemmInt::exact_splits(g, &qa, &qb, Tile::T64).unwrap() > 3);
    check_splits_against_batched(
        &format!("coop {m}x{n}x{k}"),
        (m, n),
        |rec, epi, c| int8.encode_coop(g, rec, &qa, &qb, epi, c).unwrap(),
        |rec, epi, c| int8.encode_batched_with(g, rec, Tile::T64, &qa2, &qb2, 2, epi, c).unwrap(),
    );
    // Blocks of 8: whole K steps of 8×8×8 matrices, inside one of 16×16×16 (refused there).
    let b8s = QuantScheme { granularity: Granularity::PerBlock(8), ..per_row(Format::Int8) };
    let q8b = quantized(&data(8 * 64, 99, false), 8, 64, b8s);
    assert_eq!(GemmIntCoop::fits(size, &q8b, &q8b), size == 8);
    if size == 8 {
        let (coop, tiled) =
            (GpuBuffer::<f32>::zeros(g, "c", 64).unwrap(), GpuBuffer::<f32>::zeros(g, "tiled", 64).unwrap());
        submit(|e| int8.encode_coop(g, e, &q8b, &q8b, &Epilogue::default(), &coop).unwrap());
        submit(|e| int8.encode_with(g, e, Tile::T64, &q8b, &q8b, &Epilogue::default(), &tiled).unwrap());
        common::assert_f32_bits_eq("blocks of 8", &coop.read(g).unwrap(), &tiled.read(g).unwrap());
    }
    // What it refuses, recording nothing: SMP's samples, and (16×16×16) scale blocks that end
    // inside one of the unit's K steps.
    let smp =
        quantized_samples(&data(8 * 64, 97, false), 8, 64, QuantScheme::per_row(Format::Log4).stochastic(3, 1), 2);
    let l8 = GemmInt::new(g, Format::Log4, Format::Int8).unwrap();
    let b8 = quantized(&data(8 * 64, 98, false), 8, 64, per_row(Format::Int8));
    let mut rec = lowbit::Recorder::new(g, "coop refusals");
    assert_refused("SMP samples", l8.encode_coop(g, &mut rec, &smp, &b8, &Epilogue::default(), &c));
    if size == 16 {
        assert_refused("blocks of 8", int8.encode_coop(g, &mut rec, &q8b, &q8b, &Epilogue::default(), &c));
    }
    assert_eq!(rec.dispatches(), 0, "refused products record nothing");
}

/// gemm_fp8_coop (FP8 on the cooperative-matrix unit) against gemm_fp8's reference within its
/// bound ((K + 3·chunks + 6)·2⁻²⁴·Σ|terms|: the unit adds in its own order, so not gemm_fp8's
/// bits), under every epilogue variant, split along K and batched, where the adapter has f16
/// cooperative matrices; elsewhere asking for it is a clear error that records nothing and the
/// dispatcher keeps the SIMD kernels.
#[test]
fn fp8_coop_gemm_stays_within_its_bound_where_the_adapter_has_it_and_is_refused_elsewhere() {
    use lowbit::kernels::gemm_fp8_coop::{bound, GemmFp8Coop};
    use lowbit::kernels::gemm_int_coop::GemmIntCoop;
    let g = gpu();
    let per_row = |f: Format| QuantScheme { format: f, granularity: Granularity::PerRow, rounding: Rounding::Nearest };
    let e4 = quantized(&data(8 * 8, 1, false), 8, 8, per_row(Format::Fp8E4M3));
    let fp8 = GemmFp8::new(g, Format::Fp8E4M3, Format::Fp8E4M3).unwrap();
    let c = GpuBuffer::<f32>::zeros(g, "c", 64).unwrap();
    expect_coop(GemmIntCoop::available(g));
    let Some(size) = GemmIntCoop::size(g) else {
        let err = GemmFp8Coop::new(g, Format::Fp8E4M3, Format::Fp8E4M3).err().expect("gemm_fp8_coop without the unit");
        assert!(err.to_string().contains("gemm_fp8_coop needs f16 × f16 → f32 cooperative matrices"), "{err}");
        let mut rec = lowbit::Recorder::new(g, "coop");
        let err = fp8.encode_coop(g, &mut rec, &e4, &e4, &Epilogue::default(), &c).expect_err("refused");
        assert!(err.to_string().contains("cooperative matrices"), "{err}");
        assert_eq!(rec.dispatches(), 0, "a refused product records nothing");
        assert!(!fp8.runs_coop(&e4, &e4), "the dispatcher picks the SIMD kernels here");
        assert_eq!((fp8.coop_refusal(), fp8.coop_size()), (None, None));
        return;
    };
    assert!(matches!(GemmFp8Coop::new(g, Format::Int8, Format::Fp8E4M3), Err(Error::InvalidArgument(_))));
    if !GemmIntCoop::allowed().unwrap() {
        assert!(fp8.coop_refusal().is_some_and(|why| why.contains("LOWBIT_COOP=0")), "{:?}", fp8.coop_refusal());
        assert!(!fp8.runs_coop(&e4, &e4));
        let err = fp8.encode_coop(g, &mut lowbit::Recorder::new(g, "off"), &e4, &e4, &Epilogue::default(), &c);
        assert!(err.expect_err("turned off").to_string().contains("LOWBIT_COOP=0"));
        return;
    }
    // The unit passed GemmFp8's own check, and the dispatcher runs it where the lanes kernel does
    // not run (GPU layouts).
    assert_eq!((fp8.coop_refusal(), fp8.coop_size()), (None, Some(size)));
    assert_eq!(fp8.runs_coop(&e4, &e4), !fp8.uses_lanes());
    let block = |f: Format, n: u32| QuantScheme { granularity: Granularity::PerBlock(n), ..per_row(f) };
    let cases = [
        (per_row(Format::Fp8E4M3), per_row(Format::Fp8E4M3)),
        (QuantScheme::per_tensor(Format::Fp8E4M3), block(Format::Fp8E4M3, 32)),
        (per_row(Format::Fp8E5M2).stochastic(3, 1), per_row(Format::Fp8E4M3)),
        (QuantScheme::native(Format::Mxfp8), QuantScheme::native(Format::Mxfp8).stochastic(6, 1)),
    ];
    // A tile's tails in M and N, K within one step, ragged K, K over many steps and, for few
    // outputs over a long K, split along K (epilogue variant 0).
    let shapes: &[(usize, usize, usize)] = &[(1, 1, 1), (33, 65, 17), (64, 64, 32), (130, 70, 300), (5, 40, 2500)];
    for (sa, sb) in cases {
        let (fa, fb) = (sa.format, sb.format);
        let kernel = GemmFp8::new(g, fa, fb).unwrap();
        assert_eq!(kernel.coop_refusal(), None, "{fa}x{fb}");
        for &(m, n, k) in shapes {
            let (a, b) = (data(m * k, 81, false), data(n * k, 82, false));
            let (qa, qb) = (quantized(&a, m, k, sa), quantized(&b, n, k, sb));
            let what = format!("gemm_fp8_coop{size} {fa}x{fb} {m}x{n}x{k} {}/{}", sa.granularity, sb.granularity);
            assert!(GemmIntCoop::fits(size, &qa, &qb), "{what}");
            let rel = bound(k, chunks(k, sa.granularity, sb.granularity));
            let (ac, asc) = (qa.codes.read(g).unwrap(), qa.scales.read(g).unwrap());
            let (bc, bsc) = (qb.codes.read(g).unwrap(), qb.scales.read(g).unwrap());
            let bias = data(n, 83, false);
            let old = data(m * n, 84, false);
            let biasb = common::buf(&bias);
            for variant in 0..3 {
                let amax = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
                let (epi, eref) = epilogue_variant(variant, &bias, &biasb, &old, &amax);
                let coop = GpuBuffer::from_slice(g, "c", &old).unwrap();
                submit(|e| kernel.encode_coop(g, e, &qa, &qb, &epi, &coop).unwrap());
                let got = coop.read(g).unwrap();
                let want = reference::gemm_fp8_coop::gemm_fp8_coop(&ac, &asc, &qa.layout, &bc, &bsc, &qb.layout, &eref);
                check(&format!("{what} epilogue {variant}"), &got, &want, rel);
                if variant == 2 {
                    let want_max = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
                    assert_eq!(f32::from_bits(amax.read(g).unwrap()[0]), want_max, "{what}: amax");
                }
            }
        }
    }
    // A split product really splits (else the case above tests nothing new).
    assert!(lowbit::kernels::gemm::split_plan(1, 2500, 0).0 > 1);
    // Batched products: each batch within the bound of its own reference.
    let (batches, m, n, kb) = (3, 37, 20, 48);
    let qa = quantized(&data(batches * m * kb, 85, false), batches * m, kb, per_row(Format::Fp8E4M3));
    let qb = quantized(&data(batches * n * kb, 86, false), batches * n, kb, per_row(Format::Fp8E4M3));
    let out = GpuBuffer::<f32>::zeros(g, "c", batches * m * n).unwrap();
    submit(|e| fp8.encode_coop_batched(g, e, &qa, &qb, batches, &Epilogue::default(), &out).unwrap());
    let got = out.read(g).unwrap();
    let (ac, asc, bc, bsc) =
        (qa.codes.read(g).unwrap(), qa.scales.read(g).unwrap(), qb.codes.read(g).unwrap(), qb.scales.read(g).unwrap());
    let words = kb.div_ceil(4);
    for i in 0..batches {
        let la = QuantLayout::new(m, kb, Format::Fp8E4M3, Granularity::PerRow).unwrap();
        let lb = QuantLayout::new(n, kb, Format::Fp8E4M3, Granularity::PerRow).unwrap();
        let want = reference::gemm_fp8_coop::gemm_fp8_coop(
            &ac[i * m * words..(i + 1) * m * words],
            &asc[i * m..(i + 1) * m],
            &la,
            &bc[i * n * words..(i + 1) * n * words],
            &bsc[i * n..(i + 1) * n],
            &lb,
            &EpilogueRef::default(),
        );
        check(&format!("batch {i} of {batches}"), &got[i * m * n..(i + 1) * m * n], &want, bound(kb, 1));
    }
    // What it refuses, recording nothing: SMP's samples, a `c` too short, and (16×16×16) scale
    // blocks that end inside one of the unit's K steps.
    let smp = quantized_samples(&data(8 * 64, 87, false), 8, 64, per_row(Format::Fp8E4M3).stochastic(3, 1), 2);
    let b8 = quantized(&data(8 * 64, 88, false), 8, 64, per_row(Format::Fp8E4M3));
    let mut rec = lowbit::Recorder::new(g, "coop refusals");
    assert_refused("SMP samples", fp8.encode_coop(g, &mut rec, &smp, &b8, &Epilogue::default(), &c));
    let short = GpuBuffer::<f32>::zeros(g, "short", 63).unwrap();
    assert_refused("c too short", fp8.encode_coop(g, &mut rec, &b8, &b8, &Epilogue::default(), &short));
    let q8b = quantized(&data(8 * 64, 89, false), 8, 64, block(Format::Fp8E4M3, 8));
    assert_eq!(GemmIntCoop::fits(size, &q8b, &q8b), size == 8);
    if size == 16 {
        assert_refused("blocks of 8", fp8.encode_coop(g, &mut rec, &q8b, &q8b, &Epilogue::default(), &c));
    }
    assert_eq!(rec.dispatches(), 0, "refused products record nothing");
}

/// SMP's stacked samples of A through gemm_int_lanes' `main_samples`: every sample's exact sums
/// folded in gemm_int's order and averaged in the epilogue, the tiled kernel's bits (where it does
/// not split K) and the reference's values within the epilogue bound; raw sums of samples go to
/// the tiled kernel.
#[test]
fn int_lane_gemm_averages_smp_samples_as_gemm_int_does() {
    use lowbit::kernels::gemm_int_lanes::GemmIntLanes;
    let g = gpu();
    if !runs_lanes_kernel("gemm_int_lanes", GemmIntLanes::available(g)) || !g.cpu_layouts() {
        return; // (refused elsewhere, and not chosen under GPU layouts: the test above)
    }
    let sr = |s: QuantScheme, seed: u32| s.stochastic(seed, 3);
    let int32 = QuantScheme { granularity: Granularity::PerBlock(32), ..QuantScheme::per_row(Format::Int8) };
    // (A's scheme, its samples, B's scheme): LUQ's log4 gradient against int4, int8, scale blocks
    // along K (folded block by block), E2M1 blocks.
    let cases = [
        (sr(QuantScheme::per_row(Format::Log4), 1), 2, QuantScheme::per_row(Format::Int4)),
        (sr(QuantScheme::per_row(Format::Int8), 2), 3, QuantScheme::per_row(Format::Int8)),
        (sr(int32, 3), 2, QuantScheme::per_row(Format::Int8)),
        (sr(QuantScheme::native(Format::Mxfp4), 4), 2, QuantScheme::native(Format::Mxfp4)),
    ];
    // Tile tails, ragged K, K past one exact f32 piece (1024 products) and past two; narrow
    // products stay C = A·B (A's samples are A's).
    let shapes: &[(usize, usize, usize)] = &[(1, 1, 1), (33, 65, 17), (260, 70, 300), (5, 40, 2500), (70, 16, 1100)];
    for (sa, samples, sb) in cases {
        let (fa, fb) = (sa.format, sb.format);
        let kernel = GemmInt::new(g, fa, fb).unwrap();
        for &(m, n, k) in shapes {
            let (a, b) = (data(m * k, 101, false), data(n * k, 102, false));
            let (qa, qb) = (quantized_samples(&a, m, k, sa, samples), quantized(&b, n, k, sb));
            let what = format!("gemm_int_lanes {fa}x{fb} {samples} samples {m}x{n}x{k}");
            assert!(kernel.runs_lanes(&qa, &qb), "{what}: the dispatcher should run the lane kernel");
            check_int_lanes_epilogues(&kernel, &qa, &qb, (m, n, k), chunks(k, sa.granularity, sb.granularity), &what);
            // Raw sums over every sample: the tiled kernel's, the reference's.
            if k <= 300 {
                let raw = GpuBuffer::<i32>::zeros(g, "raw", m * n).unwrap();
                submit(|e| kernel.encode_raw(g, e, &qa, &qb, &raw).unwrap());
                let want_raw = reference::gemm_int::gemm_int_raw(
                    &qa.codes.read(g).unwrap(),
                    &qa.layout,
                    samples as usize,
                    &qb.codes.read(g).unwrap(),
                    &qb.layout,
                );
                assert_eq!(raw.read(g).unwrap(), want_raw, "{what}: raw");
            }
        }
    }
}

/// Convolutions (geometry, output channels K) for the fused packed input gradients: the MNIST
/// CNN's conv2 at batch 2 (pixels not a multiple of the 32-pixel tile); two channel groups; three
/// channels (a partial group) at stride 2; a strided 1x1; a kernel past its stride; K of one lane
/// word and K past one 32-block.
fn fused_geoms() -> Vec<(lowbit::kernels::im2col::ConvGeom, usize)> {
    let geom = |batch, h, w, c, k, stride, pad| lowbit::kernels::im2col::ConvGeom {
        batch,
        h,
        w,
        c,
        kh: k,
        kw: k,
        stride,
        pad,
    };
    vec![
        (geom(2, 14, 14, 16, 5, 1, 2), 32),
        (geom(3, 8, 8, 32, 3, 1, 1), 16),
        (geom(2, 9, 7, 3, 3, 2, 1), 8),
        (geom(1, 6, 6, 20, 1, 2, 0), 12),
        (geom(1, 10, 10, 5, 4, 3, 1), 40),
        (geom(2, 5, 6, 16, 3, 1, 1), 4),
        (geom(1, 7, 7, 8, 3, 1, 2), 70),
    ]
}

/// The reference of a fused packed input gradient (gemm_int_col2im's or gemm_fp8_col2im's).
type FusedRef =
    fn(&[u32], &[f32], &QuantLayout, &[u32], &[f32], &QuantLayout, &lowbit::kernels::im2col::ConvGeom) -> RefOut;

/// Checks a fused packed input gradient on every convolution of [`fused_geoms`], for dY quantized
/// under `sa` (`samples` stacked SMP samples) and Wᵀ under `sb`: bit for bit against `gemm` (the
/// product into dcols) then col2im, and against `reference` within `bound(k, taps)`. `fused` and
/// `gemm` record their launch.
fn check_fused_packed(
    name: &str,
    (sa, sb): (QuantScheme, QuantScheme),
    samples: u32,
    fused: impl Fn(
        &mut wgpu::CommandEncoder,
        &lowbit::kernels::im2col::ConvGeom,
        &QuantizedTensor,
        &QuantizedTensor,
        &GpuBuffer<f32>,
    ),
    gemm: impl Fn(&mut wgpu::CommandEncoder, &QuantizedTensor, &QuantizedTensor, &GpuBuffer<f32>),
    reference: FusedRef,
    bound: impl Fn(usize, usize) -> f64,
) {
    let g = gpu();
    let fold = lowbit::kernels::im2col::Im2col::new(g).unwrap();
    for (geo, k) in fused_geoms() {
        let (m, n) = (geo.rows(), geo.kdim());
        let what = format!("{name} {}x{} ({samples} samples) {geo:?} K {k}", sa.format, sb.format);
        let qa = match samples {
            1 => quantized(&data(m * k, 101, false), m, k, sa),
            _ => quantized_samples(&data(m * k, 101, false), m, k, sa, samples),
        };
        let qb = quantized(&data(n * k, 102, false), n, k, sb);
        // Stale values in dx must not survive: every value is written.
        let dx = GpuBuffer::from_slice(g, "dx", &vec![f32::NAN; geo.input_len()]).unwrap();
        submit(|e| fused(e, &geo, &qa, &qb, &dx));
        let got = dx.read(g).unwrap();
        let dcols = GpuBuffer::<f32>::zeros(g, "dcols", m * n).unwrap();
        let unfused = GpuBuffer::<f32>::zeros(g, "unfused", geo.input_len()).unwrap();
        submit(|e| {
            gemm(e, &qa, &qb, &dcols);
            fold.encode_fold(g, e, &geo, &dcols, &unfused).unwrap();
        });
        common::assert_f32_bits_eq(&format!("{what} vs the product and col2im"), &got, &unfused.read(g).unwrap());
        let want = reference(
            &qa.codes.read(g).unwrap(),
            &qa.scales.read(g).unwrap(),
            &qa.layout,
            &qb.codes.read(g).unwrap(),
            &qb.scales.read(g).unwrap(),
            &qb.layout,
            &geo,
        );
        check(&what, &got, &want, bound(k, geo.kh * geo.kw));
    }
}

#[test]
fn fused_input_gradient_of_a_convolution_is_the_lane_gemm_then_col2im() {
    use lowbit::kernels::gemm_int_col2im::GemmIntCol2im;
    use lowbit::kernels::im2col::ConvGeom;
    let g = gpu();
    let here = runs_lanes_kernel("gemm_int_col2im", GemmIntCol2im::available(g));
    assert!(matches!(GemmIntCol2im::new(g, Format::Fp8E4M3, Format::Int8), Err(Error::InvalidArgument(_))));
    if !here {
        let err = GemmIntCol2im::new(g, Format::Int8, Format::Int8).err().expect("built without 8-lane subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        return;
    }
    let per_row = |f: Format| QuantScheme { format: f, granularity: Granularity::PerRow, rounding: Rounding::Nearest };
    let cases = [
        (per_row(Format::Int8), per_row(Format::Int8)),
        // LUQ's dX: a stochastic log4 gradient against int4 weights.
        (QuantScheme::per_row(Format::Log4).stochastic(5, 2), per_row(Format::Int4)),
        (per_row(Format::Int3), per_row(Format::Int2)),
        (QuantScheme { granularity: Granularity::PerBlock(32), ..per_row(Format::Int8) }, per_row(Format::Int8)),
        (QuantScheme::native(Format::Mxfp4).stochastic(6, 1), QuantScheme::native(Format::Mxfp4)),
        (QuantScheme::native(Format::Nvfp4), QuantScheme::native(Format::Nvfp4)),
    ];
    let geom = |batch, h, w, c, k, stride, pad| ConvGeom { batch, h, w, c, kh: k, kw: k, stride, pad };
    for (sa, sb) in cases {
        let (fused, gemm) =
            (GemmIntCol2im::new(g, sa.format, sb.format).unwrap(), GemmInt::new(g, sa.format, sb.format).unwrap());
        check_fused_packed(
            "gemm_int_col2im",
            (sa, sb),
            1,
            |e, geo, qa, qb, dx| {
                assert!(GemmIntCol2im::fits(qa, qb));
                fused.encode(g, e, geo, qa, qb, dx).unwrap()
            },
            |e, qa, qb, dcols| gemm.encode(g, e, qa, qb, &Epilogue::default(), dcols).unwrap(),
            reference::gemm_int_col2im::gemm_int_col2im,
            |k, taps| int_epilogue_bound(chunks(k, sa.granularity, sb.granularity), 1) + taps as f64 * 2f64.powi(-23),
        );
    }
    // SMP's stacked samples of dY (LUQ's +smp2; three of int8; MXFP4's blocks), averaged per tap
    // as gemm_int_lanes averages them into dcols. (The reference: gemm_int's mean of the
    // samples' products, then col2im.)
    fn smp_reference<const S: usize>(
        ac: &[u32],
        asc: &[f32],
        la: &QuantLayout,
        bc: &[u32],
        bs: &[f32],
        lb: &QuantLayout,
        geo: &ConvGeom,
    ) -> reference::gemm_f32::RefOut {
        let d = reference::gemm_int::gemm_int(ac, asc, la, S, bc, bs, lb, &reference::gemm_f32::EpilogueRef::default());
        reference::gemm_f32::RefOut {
            value: reference::im2col::col2im(&d.value, geo),
            magnitude: reference::im2col::col2im(&d.magnitude, geo),
        }
    }
    let smp_cases: [(QuantScheme, QuantScheme, u32, FusedRef); 3] = [
        (QuantScheme::per_row(Format::Log4).stochastic(7, 2), per_row(Format::Int4), 2, smp_reference::<2>),
        (QuantScheme::per_row(Format::Int8).stochastic(8, 2), per_row(Format::Int8), 3, smp_reference::<3>),
        (
            QuantScheme::native(Format::Mxfp4).stochastic(9, 1),
            QuantScheme::native(Format::Mxfp4),
            2,
            smp_reference::<2>,
        ),
    ];
    for (sa, sb, samples, reference) in smp_cases {
        let (fused, gemm) =
            (GemmIntCol2im::new(g, sa.format, sb.format).unwrap(), GemmInt::new(g, sa.format, sb.format).unwrap());
        check_fused_packed(
            "gemm_int_col2im",
            (sa, sb),
            samples,
            |e, geo, qa, qb, dx| {
                assert!(GemmIntCol2im::fits(qa, qb));
                fused.encode(g, e, geo, qa, qb, dx).unwrap()
            },
            |e, qa, qb, dcols| gemm.encode(g, e, qa, qb, &Epilogue::default(), dcols).unwrap(),
            reference,
            |k, taps| {
                let blocks = chunks(k, sa.granularity, sb.granularity);
                int_epilogue_bound(blocks, samples as usize) + taps as f64 * 2f64.powi(-23)
            },
        );
    }
    // What it refuses, with nothing written: samples of Wᵀ, per-row chunks past 1024 products,
    // operands of other formats than it was built for, and operands of another geometry.
    let geo = geom(1, 4, 4, 4, 3, 1, 1);
    let (m, n) = (geo.rows(), geo.kdim());
    let kernel = GemmIntCol2im::new(g, Format::Log4, Format::Int4).unwrap();
    let smp = quantized_samples(&data(m * 8, 103, false), m, 8, QuantScheme::per_row(Format::Log4).stochastic(1, 0), 2);
    let w4 = quantized(&data(n * 8, 104, false), n, 8, per_row(Format::Int4));
    let w4_smp =
        quantized_samples(&data(n * 8, 104, false), n, 8, QuantScheme::per_row(Format::Int4).stochastic(1, 0), 2);
    let marker = vec![7.0f32; geo.input_len()];
    let dx = GpuBuffer::from_slice(g, "dx", &marker).unwrap();
    assert!(GemmIntCol2im::fits(&smp, &w4) && !GemmIntCol2im::fits(&smp, &w4_smp));
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert_refused("samples of Wᵀ", kernel.encode(g, &mut enc, &geo, &smp, &w4_smp, &dx));
    let long_a = quantized(&data(m * 1100, 105, false), m, 1100, per_row(Format::Int8));
    let long_b = quantized(&data(n * 1100, 106, false), n, 1100, per_row(Format::Int8));
    assert!(!GemmIntCol2im::fits(&long_a, &long_b));
    let int8 = GemmIntCol2im::new(g, Format::Int8, Format::Int8).unwrap();
    assert_refused("K past 1024 per row", int8.encode(g, &mut enc, &geo, &long_a, &long_b, &dx));
    let a8 = quantized(&data(m * 8, 107, false), m, 8, per_row(Format::Int8));
    assert_refused("formats", kernel.encode(g, &mut enc, &geo, &a8, &w4, &dx));
    let other = geom(1, 4, 4, 4, 3, 2, 1);
    assert_refused(
        "geometry",
        int8.encode(g, &mut enc, &other, &a8, &quantized(&data(n * 8, 108, false), n, 8, per_row(Format::Int8)), &dx),
    );
    let short = GpuBuffer::from_slice(g, "short", &marker[1..]).unwrap();
    assert_refused(
        "short dx",
        int8.encode(g, &mut enc, &geo, &a8, &quantized(&data(n * 8, 108, false), n, 8, per_row(Format::Int8)), &short),
    );
    g.queue.submit([enc.finish()]);
    assert_eq!(dx.read(g).unwrap(), marker, "a refused launch wrote dx");
}

#[test]
fn fused_f32_input_gradient_of_a_convolution_is_the_lane_gemm_then_col2im() {
    use lowbit::kernels::gemm_f32_col2im::GemmF32Col2im;
    use lowbit::kernels::im2col::{ConvGeom, Im2col};
    let g = gpu();
    let here = runs_lanes_kernel("gemm_f32_col2im", GemmF32Col2im::available(g));
    if !here {
        let err = GemmF32Col2im::new(g).err().expect("built without 8-lane subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        return;
    }
    let kernel = GemmF32Col2im::new(g).unwrap();
    let gemm = GemmF32::new(g).unwrap();
    let fold = Im2col::new(g).unwrap();
    let geom = |batch, h, w, c, k, stride, pad| ConvGeom { batch, h, w, c, kh: k, kw: k, stride, pad };
    // The MNIST CNN's conv2 at batch 2; two channel groups; four channels (a partial group); a
    // strided 1x1; a kernel past its stride; stride 2; K of one vec4.
    let geoms = [
        (geom(2, 14, 14, 16, 5, 1, 2), 32),
        (geom(3, 8, 8, 32, 3, 1, 1), 16),
        (geom(2, 5, 6, 4, 3, 1, 1), 8),
        (geom(1, 6, 6, 20, 1, 2, 0), 12),
        (geom(1, 10, 10, 8, 4, 3, 1), 40),
        (geom(2, 9, 7, 4, 3, 2, 1), 4),
    ];
    for &(geo, k) in &geoms {
        let (m, n) = (geo.rows(), geo.kdim());
        let what = format!("gemm_f32_col2im {geo:?} K {k}");
        let (dy, w) = (data(m * k, 111, false), data(k * n, 112, false));
        let (dyb, wb) = (common::buf(&dy), common::buf(&w));
        assert!(GemmF32Col2im::fits(&geo, k), "{what}: should fit");
        let dx = GpuBuffer::from_slice(g, "dx", &vec![f32::NAN; geo.input_len()]).unwrap();
        submit(|e| kernel.encode(g, e, &geo, k, &dyb, &wb, &dx).unwrap());
        let got = dx.read(g).unwrap();
        let dcols = GpuBuffer::<f32>::zeros(g, "dcols", m * n).unwrap();
        let unfused = GpuBuffer::<f32>::zeros(g, "unfused", geo.input_len()).unwrap();
        let shape = GemmShape { m, n, k, trans_a: false, trans_b: true };
        submit(|e| {
            gemm.encode(g, e, &dyb, &wb, shape, &Epilogue::default(), &dcols).unwrap();
            fold.encode_fold(g, e, &geo, &dcols, &unfused).unwrap();
        });
        common::assert_f32_bits_eq(&format!("{what} vs gemm_f32 + col2im"), &got, &unfused.read(g).unwrap());
        let want = reference::gemm_f32_col2im::gemm_f32_col2im(&dy, &w, &geo, k);
        check(&what, &got, &want, f32_bound(k) + (geo.kh * geo.kw) as f64 * 2f64.powi(-23));
    }
    // What it refuses, with nothing written: channels or K not multiples of 4, short buffers.
    let geo = geom(1, 4, 4, 4, 3, 1, 1);
    let marker = vec![7.0f32; geo.input_len()];
    let dx = GpuBuffer::from_slice(g, "dx", &marker).unwrap();
    let (dy, w) = (common::buf(&data(geo.rows() * 8, 113, false)), common::buf(&data(8 * geo.kdim(), 114, false)));
    let three = geom(1, 4, 4, 3, 3, 1, 1);
    assert!(!GemmF32Col2im::fits(&three, 8) && !GemmF32Col2im::fits(&geo, 6));
    let short = GpuBuffer::from_slice(g, "short", &marker[1..]).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    for (what, r) in [
        ("three channels", kernel.encode(g, &mut enc, &three, 8, &dy, &w, &dx)),
        ("K of 6", kernel.encode(g, &mut enc, &geo, 6, &dy, &w, &dx)),
        ("short dx", kernel.encode(g, &mut enc, &geo, 8, &dy, &w, &short)),
        ("short w", kernel.encode(g, &mut enc, &geo, 8, &dy, &dy, &dx)),
    ] {
        assert_refused(what, r);
    }
    g.queue.submit([enc.finish()]);
    assert_eq!(dx.read(g).unwrap(), marker, "a refused launch wrote dx");
}

#[test]
fn fused_levels_input_gradient_of_a_convolution_is_the_lane_gemm_then_col2im() {
    use lowbit::kernels::gemm_levels::GemmLevels;
    use lowbit::kernels::gemm_levels_col2im::GemmLevelsCol2im;
    use lowbit::kernels::im2col::{ConvGeom, Im2col};
    use lowbit::kernels::tinyscript::TinyScript;
    use lowbit::tinyscript::LevelTable;
    let g = gpu();
    let here = runs_lanes_kernel("gemm_levels_col2im", GemmLevelsCol2im::available(g));
    if !here {
        let err = GemmLevelsCol2im::new(g).err().expect("built without 8-lane subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        return;
    }
    let (kernel, gemm, fold) =
        (GemmLevelsCol2im::new(g).unwrap(), GemmLevels::new(g).unwrap(), Im2col::new(g).unwrap());
    let ts = TinyScript::new(g).unwrap();
    let geom = |batch, h, w, c, k, stride, pad| ConvGeom { batch, h, w, c, kh: k, kw: k, stride, pad };
    // As the f32 kernel's test: the MNIST CNN's conv2 at batch 2, two channel groups, a partial
    // group, a strided 1x1, a kernel past its stride, stride 2, K of one vec4; with dY's codes 3
    // bits signed (4 levels, in registers), 8 bits signed (128, read from the table) and 4 bits
    // unsigned (16) on nonnegative data, and K not a multiple of the codes per word.
    let cases = [
        (geom(2, 14, 14, 16, 5, 1, 2), 32, (3u32, true)),
        (geom(3, 8, 8, 32, 3, 1, 1), 16, (8, true)),
        (geom(2, 5, 6, 4, 3, 1, 1), 12, (4, false)),
        (geom(1, 6, 6, 20, 1, 2, 0), 12, (3, true)),
        (geom(1, 10, 10, 8, 4, 3, 1), 40, (3, true)),
        (geom(2, 9, 7, 4, 3, 2, 1), 4, (8, true)),
    ];
    for &(geo, k, (bits, signed)) in &cases {
        let (m, n) = (geo.rows(), geo.kdim());
        let what = format!("gemm_levels_col2im {geo:?} K {k} {bits}b signed={signed}");
        let mut dy = data(m * k, 115 + bits, false);
        if !signed {
            dy.iter_mut().for_each(|v| *v = v.abs());
        }
        let table = LevelTable::uniform_as(bits, signed).unwrap();
        let (dyb, wb) = (common::buf(&dy), common::buf(&data(k * n, 116, false)));
        let mut enc = g.device.create_command_encoder(&Default::default());
        let q =
            ts.encode_quantize(g, &mut enc, &dyb, m, k, &table, Rounding::Stochastic { seed: 5, stream: 6 }).unwrap();
        g.queue.submit([enc.finish()]);
        assert!(GemmLevelsCol2im::fits(&geo, k), "{what}: should fit");
        let dx = GpuBuffer::from_slice(g, "dx", &vec![f32::NAN; geo.input_len()]).unwrap();
        submit(|e| kernel.encode(g, e, &geo, &q, &wb, &dx).unwrap());
        let got = dx.read(g).unwrap();
        let dcols = GpuBuffer::<f32>::zeros(g, "dcols", m * n).unwrap();
        let unfused = GpuBuffer::<f32>::zeros(g, "unfused", geo.input_len()).unwrap();
        submit(|e| {
            gemm.encode(g, e, &q, &wb, n, true, &Epilogue::default(), &dcols).unwrap();
            fold.encode_fold(g, e, &geo, &dcols, &unfused).unwrap();
        });
        common::assert_f32_bits_eq(&format!("{what} vs gemm_levels + col2im"), &got, &unfused.read(g).unwrap());
        let (codes, scales) = (q.codes.read(g).unwrap(), q.scales.read(g).unwrap());
        let w = wb.read(g).unwrap();
        let want = reference::gemm_levels_col2im::gemm_levels_col2im(&codes, &scales, &table, k, &w, &geo);
        check(&what, &got, &want, f32_bound(k) + (geo.kh * geo.kw) as f64 * 2f64.powi(-23));
    }
    // What it refuses, with nothing written: channels or K not multiples of 4, dY of another
    // convolution, short buffers.
    let geo = geom(1, 4, 4, 4, 3, 1, 1);
    let marker = vec![7.0f32; geo.input_len()];
    let dx = GpuBuffer::from_slice(g, "dx", &marker).unwrap();
    let table = LevelTable::uniform(3).unwrap();
    let coded = |rows: usize, cols: usize| {
        let x = common::buf(&data(rows * cols, 117, false));
        let mut enc = g.device.create_command_encoder(&Default::default());
        let q = ts.encode_quantize(g, &mut enc, &x, rows, cols, &table, Rounding::Nearest).unwrap();
        g.queue.submit([enc.finish()]);
        q
    };
    let (q8, q6, q_other) = (coded(geo.rows(), 8), coded(geo.rows(), 6), coded(geo.rows() + 1, 8));
    let w = common::buf(&data(8 * geo.kdim(), 118, false));
    let three = geom(1, 4, 4, 3, 3, 1, 1);
    assert!(!GemmLevelsCol2im::fits(&three, 8) && !GemmLevelsCol2im::fits(&geo, 6));
    let short = GpuBuffer::from_slice(g, "short", &marker[1..]).unwrap();
    let short_w = GpuBuffer::from_slice(g, "short w", &vec![1.0f32; 8 * geo.kdim() - 1]).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    for (what, r) in [
        ("three channels", kernel.encode(g, &mut enc, &three, &q8, &w, &dx)),
        ("K of 6", kernel.encode(g, &mut enc, &geo, &q6, &w, &dx)),
        ("another convolution's dY", kernel.encode(g, &mut enc, &geo, &q_other, &w, &dx)),
        ("short dx", kernel.encode(g, &mut enc, &geo, &q8, &w, &short)),
        ("short w", kernel.encode(g, &mut enc, &geo, &q8, &short_w, &dx)),
    ] {
        assert_refused(what, r);
    }
    g.queue.submit([enc.finish()]);
    assert_eq!(dx.read(g).unwrap(), marker, "a refused launch wrote dx");
}

#[test]
fn fused_fp8_input_gradient_of_a_convolution_is_the_lane_gemm_then_col2im() {
    use lowbit::kernels::gemm_fp8_col2im::GemmFp8Col2im;
    use lowbit::kernels::im2col::ConvGeom;
    let g = gpu();
    let here = runs_lanes_kernel("gemm_fp8_col2im", GemmFp8Col2im::available(g));
    assert!(matches!(GemmFp8Col2im::new(g, Format::Int8, Format::Fp8E4M3), Err(Error::InvalidArgument(_))));
    if !here {
        let err = GemmFp8Col2im::new(g, Format::Fp8E4M3, Format::Fp8E4M3).err().expect("built without subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        return;
    }
    let per_row = |f: Format| QuantScheme { format: f, granularity: Granularity::PerRow, rounding: Rounding::Nearest };
    let cases = [
        (QuantScheme::per_row(Format::Fp8E5M2).stochastic(3, 1), per_row(Format::Fp8E4M3)),
        (per_row(Format::Fp8E4M3), per_row(Format::Fp8E4M3)),
        (QuantScheme::native(Format::Mxfp8).stochastic(4, 2), QuantScheme::native(Format::Mxfp8)),
    ];
    for (sa, sb) in cases {
        let (fused, gemm) =
            (GemmFp8Col2im::new(g, sa.format, sb.format).unwrap(), GemmFp8::new(g, sa.format, sb.format).unwrap());
        check_fused_packed(
            "gemm_fp8_col2im",
            (sa, sb),
            1,
            |e, geo, qa, qb, dx| fused.encode(g, e, geo, qa, qb, dx).unwrap(),
            // The SIMD product, whose bits the fused kernel keeps; not the cooperative unit's,
            // within a bound of the exact product, which GPU layouts take where the adapter has
            // one (lavapipe of Mesa 26 under LOWBIT_LAYOUTS=gpu).
            |e, qa, qb, dcols| match gemm.runs_coop(qa, qb) {
                true => gemm.encode_with(g, e, Tile::T64, qa, qb, &Epilogue::default(), dcols).unwrap(),
                false => gemm.encode(g, e, qa, qb, &Epilogue::default(), dcols).unwrap(),
            },
            reference::gemm_fp8_col2im::gemm_fp8_col2im,
            |k, taps| f32_bound(k) + taps as f64 * 2f64.powi(-23),
        );
    }
    // Refused, with nothing written: other formats than built for, SMP samples, another geometry.
    let geo = ConvGeom { batch: 1, h: 4, w: 4, c: 4, kh: 3, kw: 3, stride: 1, pad: 1 };
    let (m, n) = (geo.rows(), geo.kdim());
    let kernel = GemmFp8Col2im::new(g, Format::Fp8E4M3, Format::Fp8E4M3).unwrap();
    let a = quantized(&data(m * 8, 123, false), m, 8, per_row(Format::Fp8E4M3));
    let b = quantized(&data(n * 8, 124, false), n, 8, per_row(Format::Fp8E4M3));
    let b5 = quantized(&data(n * 8, 124, false), n, 8, per_row(Format::Fp8E5M2));
    let smp =
        quantized_samples(&data(m * 8, 125, false), m, 8, QuantScheme::per_row(Format::Fp8E4M3).stochastic(1, 0), 2);
    let marker = vec![7.0f32; geo.input_len()];
    let dx = GpuBuffer::from_slice(g, "dx", &marker).unwrap();
    let other = ConvGeom { stride: 2, ..geo };
    let mut enc = g.device.create_command_encoder(&Default::default());
    for (what, r) in [
        ("formats", kernel.encode(g, &mut enc, &geo, &a, &b5, &dx)),
        ("samples", kernel.encode(g, &mut enc, &geo, &smp, &b, &dx)),
        ("geometry", kernel.encode(g, &mut enc, &other, &a, &b, &dx)),
    ] {
        assert_refused(what, r);
    }
    g.queue.submit([enc.finish()]);
    assert_eq!(dx.read(g).unwrap(), marker, "a refused launch wrote dx");
}

#[test]
fn fp8_lane_gemm_matches_the_reference_and_gemm_fp8s_bits_where_the_adapter_has_it() {
    use lowbit::kernels::gemm_fp8_lanes::GemmFp8Lanes;
    let g = gpu();
    let here = runs_lanes_kernel("gemm_fp8_lanes", GemmFp8Lanes::available(g));
    assert!(matches!(GemmFp8Lanes::new(g, Format::Int8, Format::Fp8E4M3), Err(Error::InvalidArgument(_))));
    if !here {
        let err = GemmFp8Lanes::new(g, Format::Fp8E4M3, Format::Fp8E4M3).err().expect("built without 8-lane subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        assert!(!GemmFp8::new(g, Format::Fp8E4M3, Format::Fp8E4M3).unwrap().uses_lanes());
        return;
    }
    if !g.cpu_layouts() {
        // GPU layouts on an adapter with the lanes: the dispatcher keeps its tiles.
        assert!(!GemmFp8::new(g, Format::Fp8E4M3, Format::Fp8E4M3).unwrap().uses_lanes());
        return;
    }
    let llvmpipe = g.report().name.contains("llvmpipe");
    let cases = [
        (QuantScheme::per_row(Format::Fp8E4M3), QuantScheme::per_row(Format::Fp8E4M3)),
        (QuantScheme::per_row(Format::Fp8E5M2).stochastic(4, 1), QuantScheme::per_tensor(Format::Fp8E4M3)),
        (
            QuantScheme { granularity: Granularity::PerBlock(32), ..QuantScheme::per_row(Format::Fp8E5M2) },
            QuantScheme::per_row(Format::Fp8E4M3),
        ),
        (QuantScheme::native(Format::Mxfp8), QuantScheme::native(Format::Mxfp8).stochastic(4, 2)),
    ];
    // The last shape narrower than the tile and taller than wide: computed as Cᵀ = B·Aᵀ.
    let shapes: &[(usize, usize, usize)] =
        &[(1, 1, 1), (16, 32, 4), (33, 65, 17), (260, 70, 300), (5, 40, 2500), (300, 10, 40)];
    for (sa, sb) in cases {
        let (fa, fb) = (sa.format, sb.format);
        let kernel = GemmFp8::new(g, fa, fb).unwrap();
        assert!(kernel.uses_lanes());
        for &(m, n, k) in shapes {
            let (a, b) = (data(m * k, 101, false), data(n * k, 102, false));
            let (qa, qb) = (quantized(&a, m, k, sa), quantized(&b, n, k, sb));
            let what = format!("gemm_fp8_lanes {fa}x{fb} {m}x{n}x{k} {}/{}", sa.granularity, sb.granularity);
            let bias = data(n, 103, false);
            let old = data(m * n, 104, false);
            let biasb = common::buf(&bias);
            for variant in 0..3 {
                let amax = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
                let (epi, eref) = epilogue_variant(variant, &bias, &biasb, &old, &amax);
                let c = GpuBuffer::from_slice(g, "c", &old).unwrap();
                submit(|e| kernel.encode(g, e, &qa, &qb, &epi, &c).unwrap());
                let got = c.read(g).unwrap();
                let want = reference::gemm_fp8_lanes::gemm_fp8_lanes(
                    &qa.codes.read(g).unwrap(),
                    &qa.scales.read(g).unwrap(),
                    &qa.layout,
                    &qb.codes.read(g).unwrap(),
                    &qb.scales.read(g).unwrap(),
                    &qb.layout,
                    &eref,
                );
                check(&format!("{what} epilogue {variant}"), &got, &want, f32_bound(k));
                if variant == 2 {
                    let want_max = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
                    assert_eq!(f32::from_bits(amax.read(g).unwrap()[0]), want_max, "{what}: amax");
                }
                // gemm_fp8's tiles add the same products in the same order where they do not split
                // K; llvmpipe fuses neither kernel's multiply-adds.
                if llvmpipe && k <= 300 {
                    let tiled = GpuBuffer::from_slice(g, "c", &old).unwrap();
                    submit(|e| kernel.encode_with(g, e, Tile::T64, &qa, &qb, &epi, &tiled).unwrap());
                    common::assert_f32_bits_eq(
                        &format!("{what} epilogue {variant} vs T64"),
                        &got,
                        &tiled.read(g).unwrap(),
                    );
                }
            }
        }
    }
    // Batched products: each batch as the tiled kernel gives it.
    let kernel = GemmFp8::new(g, Format::Fp8E4M3, Format::Fp8E4M3).unwrap();
    for &(batches, m, n, kb) in &[(3, 37, 20, 48), (2, 5, 130, 70)] {
        let s = QuantScheme::per_row(Format::Fp8E4M3);
        let qa = quantized(&data(batches * m * kb, 105, false), batches * m, kb, s);
        let qb = quantized(&data(batches * n * kb, 106, false), batches * n, kb, s);
        let (c, tiled) = (
            GpuBuffer::<f32>::zeros(g, "c", batches * m * n).unwrap(),
            GpuBuffer::<f32>::zeros(g, "tiled", batches * m * n).unwrap(),
        );
        submit(|e| kernel.encode_batched(g, e, &qa, &qb, batches, &Epilogue::default(), &c).unwrap());
        submit(|e| {
            kernel.encode_batched_with(g, e, Tile::T32, &qa, &qb, batches, &Epilogue::default(), &tiled).unwrap()
        });
        let got = c.read(g).unwrap();
        if llvmpipe {
            common::assert_f32_bits_eq(&format!("batched {batches}x{m}x{n}x{kb}"), &got, &tiled.read(g).unwrap());
        }
        assert!(got.iter().all(|v| v.is_finite()) && got.iter().any(|&v| v != 0.0));
    }
}

/// Every FP8 code (finite, infinite, NaN, subnormal, ±0) under scales whose products stay normal
/// (1.5), overflow (the largest f32), are subnormal and flushed (2⁻¹²⁰ times codes below 2⁻⁶) or
/// zero: `gemm_fp8_lanes` decodes and scales them as `gemm_fp8`'s tiles do, bit for bit.
#[test]
fn fp8_lanes_decode_and_scale_every_code_as_the_tiles_do() {
    let g = gpu();
    let k = 256;
    let scales = [1.5f32, f32::MAX, 2f32.powi(-120), 0.0];
    for fmt in [Format::Fp8E4M3, Format::Fp8E5M2] {
        let kernel = GemmFp8::new(g, fmt, Format::Fp8E4M3).unwrap();
        if !kernel.uses_lanes() {
            return; // (GPU layouts: the tiles only)
        }
        let finite = |c: u32| match fmt {
            Format::Fp8E5M2 => c & 0x7c != 0x7c,
            _ => c & 0x7f != 0x7f,
        };
        // Per scale, three rows: every finite code once (zeros after), the same reversed, every code.
        let mut rows: Vec<Vec<u32>> = Vec::new();
        for _ in scales {
            let mut f: Vec<u32> = (0..256).filter(|&c| finite(c)).collect();
            f.resize(k, 0);
            let r: Vec<u32> = f.iter().rev().copied().collect();
            rows.extend([f, r, (0..256).collect()]);
        }
        let pack = |rows: &[Vec<u32>]| -> Vec<u32> {
            rows.iter()
                .flat_map(|r| r.chunks(4).map(|w| w.iter().enumerate().map(|(i, &c)| c << (8 * i)).sum::<u32>()))
                .collect()
        };
        let m = rows.len();
        let a_scales: Vec<f32> = scales.iter().flat_map(|&s| [s; 3]).collect();
        let a = QuantizedTensor {
            codes: GpuBuffer::from_slice(g, "a", &pack(&rows)).unwrap(),
            scales: GpuBuffer::from_slice(g, "a scales", &a_scales).unwrap(),
            layout: QuantLayout::new(m, k, fmt, Granularity::PerRow).unwrap(),
            samples: 1,
        };
        // B: five rows of finite E4M3 codes drawn at random, scale 0.75.
        let b_rows: Vec<Vec<u32>> = (0..5u32)
            .map(|r| {
                (0..k as u32)
                    .map(|i| lowbit::rng::draw(r, i) & 0xff)
                    .map(|c| if c & 0x7f == 0x7f { 0 } else { c })
                    .collect()
            })
            .collect();
        let b = QuantizedTensor {
            codes: GpuBuffer::from_slice(g, "b", &pack(&b_rows)).unwrap(),
            scales: GpuBuffer::from_slice(g, "b scales", &[0.75f32; 5]).unwrap(),
            layout: QuantLayout::new(5, k, Format::Fp8E4M3, Granularity::PerRow).unwrap(),
            samples: 1,
        };
        let (lanes, tiles) =
            (GpuBuffer::<f32>::zeros(g, "lanes", m * 5).unwrap(), GpuBuffer::<f32>::zeros(g, "tiles", m * 5).unwrap());
        submit(|e| kernel.encode(g, e, &a, &b, &Epilogue::default(), &lanes).unwrap());
        submit(|e| kernel.encode_with(g, e, Tile::T32, &a, &b, &Epilogue::default(), &tiles).unwrap());
        let (got, want) = (lanes.read(g).unwrap(), tiles.read(g).unwrap());
        common::assert_f32_bits_eq(&format!("{fmt} every code"), &got, &want);
        // (The products are what the test means: at scale 1.5 the finite rows finite and nonzero,
        // the row of every code not finite.)
        assert!(got[..10].iter().all(|v| v.is_finite() && *v != 0.0), "{fmt}: {:?}", &got[..10]);
        assert!(got[10..15].iter().all(|v| !v.is_finite()), "{fmt}: {:?}", &got[10..15]);
    }
}

#[test]
fn levels_lane_gemm_matches_the_reference_and_gemm_levels_bits_where_the_adapter_has_it() {
    use lowbit::kernels::gemm_levels::GemmLevels;
    use lowbit::kernels::gemm_levels_lanes::{panel, GemmLevelsLanes, Panel};
    use lowbit::kernels::tinyscript::TinyScript;
    use lowbit::tinyscript::LevelTable;
    let g = gpu();
    let here = runs_lanes_kernel("gemm_levels_lanes", GemmLevelsLanes::available(g));
    let kernel = GemmLevels::new(g).unwrap();
    if !here {
        let err = GemmLevelsLanes::new(g).err().expect("built without 8-lane subgroups");
        assert!(err.to_string().contains("subgroups"), "{err}");
        assert!(!kernel.uses_lanes());
        return;
    }
    if !g.cpu_layouts() {
        // GPU layouts on an adapter with the lanes: the dispatcher keeps its tiles.
        assert!(!kernel.uses_lanes());
        return;
    }
    assert!(kernel.uses_lanes());
    let llvmpipe = g.report().name.contains("llvmpipe");
    let ts = TinyScript::new(g).unwrap();
    // A's tables: 3 bits signed (4 levels) and unsigned (8, on nonnegative data), 4 bits unsigned
    // (16) and 8 bits signed (128); B coded in a 2-bit unsigned or 3-bit signed fitted-looking
    // table beside them.
    let tables = [(3u32, true), (3, false), (4, false), (8, true)];
    // (30, 9, 300) and (300, 10, 40) are narrower than the tile and taller than wide (computed as
    // Cᵀ: the first with a coded B only); (40, 36, 64) loads an f32 B as vec4s either way it is
    // stored; (5, 40, 2500) and (40, 9, 2100) have a K that is split without an epilogue (the
    // second as Cᵀ with a coded B). (200, 90, 64) and (200, 90, 1021) run in panels: with a coded
    // B entry `main_strip` (two row tiles a workgroup, the last one's second past M), with an f32
    // B `main_band_v4` (B stored [N, K], K = 64) or `main_band` (the others; two column tiles a
    // workgroup, the second past N); the second K fills the panels, its last step a partial one.
    let shapes: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (16, 32, 4),
        (33, 65, 17),
        (30, 9, 300),
        (300, 10, 40),
        (40, 36, 64),
        (5, 40, 2500),
        (40, 9, 2100),
        (200, 90, 64),
        (200, 90, 1021),
    ];
    for k in [64, 1021] {
        assert_eq!(panel(200, 90, k, 0, true, false), Some(Panel::Strip(2)));
        assert_eq!(panel(200, 90, k, 0, false, false), Some(Panel::Band(2)));
    }
    for (bits, signed) in tables {
        let table = LevelTable::uniform_as(bits, signed).unwrap();
        let btable = LevelTable::from_unit(if signed { 2 } else { 3 }, &[0.0, 0.05, 0.15, 1.0]).unwrap();
        for &(m, n, k) in shapes {
            let mut a = data(m * k, 111 + bits, false);
            if !signed {
                a.iter_mut().for_each(|v| *v = v.abs());
            }
            let b = data(n * k, 112, false);
            let ab = GpuBuffer::from_slice(g, "a", &a).unwrap();
            let mut enc = g.device.create_command_encoder(&Default::default());
            let q = ts
                .encode_quantize(g, &mut enc, &ab, m, k, &table, Rounding::Stochastic { seed: 3, stream: 4 })
                .unwrap();
            g.queue.submit([enc.finish()]);
            let (codes, scales) = (q.codes.read(g).unwrap(), q.scales.read(g).unwrap());
            let bias = data(n, 113, false);
            let old = data(m * n, 114, false);
            let biasb = common::buf(&bias);
            for trans_b in [false, true] {
                let bstore: Vec<f32> =
                    if trans_b { (0..n * k).map(|i| b[(i % n) * k + i / n]).collect() } else { b.clone() };
                let bsb = GpuBuffer::from_slice(g, "b", &bstore).unwrap();
                let (brows, bcols) = if trans_b { (k, n) } else { (n, k) };
                let mut enc = g.device.create_command_encoder(&Default::default());
                let qb = ts.encode_quantize(g, &mut enc, &bsb, brows, bcols, &btable, Rounding::Nearest).unwrap();
                g.queue.submit([enc.finish()]);
                for coded in [false, true] {
                    // (The panel-filling shape with one table: all of them took a minute more.)
                    if k == 1021 && (bits != 3 || !signed) {
                        continue;
                    }
                    let what =
                        format!("gemm_levels_lanes {m}x{n}x{k} {bits}b signed={signed} tb={trans_b} coded={coded}");
                    for variant in 0..3 {
                        let amax = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
                        let (epi, eref) = epilogue_variant(variant, &bias, &biasb, &old, &amax);
                        let run = |tile: Option<Tile>| {
                            let c = GpuBuffer::from_slice(g, "c", &old).unwrap();
                            submit(|e| {
                                match (tile, coded) {
                                    (None, false) => kernel.encode(g, e, &q, &bsb, n, trans_b, &epi, &c),
                                    (None, true) => kernel.encode_coded(g, e, &q, &qb, trans_b, &epi, &c),
                                    (Some(t), false) => kernel.encode_with(g, e, t, &q, &bsb, n, trans_b, &epi, &c),
                                    (Some(t), true) => kernel.encode_coded_with(g, e, t, &q, &qb, trans_b, &epi, &c),
                                }
                                .unwrap()
                            });
                            c.read(g).unwrap()
                        };
                        let got = run(None);
                        let want = if coded {
                            reference::gemm_levels_lanes::gemm_levels_lanes_coded(
                                &codes,
                                &scales,
                                &table,
                                m,
                                k,
                                &qb.codes.read(g).unwrap(),
                                &qb.scales.read(g).unwrap(),
                                &btable,
                                n,
                                trans_b,
                                &eref,
                            )
                        } else {
                            reference::gemm_levels_lanes::gemm_levels_lanes(
                                &codes, &scales, &table, m, k, &bstore, n, trans_b, &eref,
                            )
                        };
                        check(&format!("{what} epilogue {variant}"), &got, &want, f32_bound(k));
                        if variant == 2 {
                            let want_max = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
                            assert_eq!(f32::from_bits(amax.read(g).unwrap()[0]), want_max, "{what}: amax");
                        }
                        // gemm_levels' tiles add the same products in the same order where they
                        // do not split K; llvmpipe fuses neither kernel's multiply-adds.
                        if llvmpipe && k <= 300 {
                            common::assert_f32_bits_eq(
                                &format!("{what} epilogue {variant} vs T64"),
                                &got,
                                &run(Some(Tile::T64)),
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn levels_lanes_panels_keep_the_decoded_side_of_products_that_fit_and_leave_workgroups() {
    use lowbit::kernels::gemm_levels_lanes::{panel, Panel, PANEL_K, PANEL_MAX_TILES};
    // The MNIST MLP's weight gradients at batch 128 (256 × 784 and 256 × 256 over K = 128, B
    // coded): strips of 16 row tiles (25 workgroups), then of 8 (16 workgroups: 16 would leave 8).
    assert_eq!(panel(256, 784, 128, 0, true, false), Some(Panel::Strip(PANEL_MAX_TILES)));
    assert_eq!(panel(256, 256, 128, 0, true, false), Some(Panel::Strip(8)));
    // Its first layer's forward product (128 × 256 over 784, B in f32): bands of 4 column tiles.
    assert_eq!(panel(128, 256, 784, 0, false, false), Some(Panel::Band(4)));
    // No more tiles than the launch has: 3 row tiles take 2 a strip.
    assert_eq!(panel(48, 256, 64, 0, true, false), Some(Panel::Strip(2)));
    // An epilogue changes nothing here (K this short is never split); K up to PANEL_K is kept.
    assert_eq!(panel(256, 256, PANEL_K, 3, true, false), Some(Panel::Strip(8)));
    // None: a swapped launch; K past the panel; one tile along the side not kept (a row tile with
    // a coded B, a column tile with an f32 one); two that leave too few workgroups.
    assert_eq!(panel(256, 784, 128, 0, true, true), None);
    assert_eq!(panel(256, 784, PANEL_K + 1, 0, true, false), None);
    assert_eq!(panel(16, 4096, 64, 0, true, false), None);
    assert_eq!(panel(4096, 32, 64, 0, false, false), None);
    assert_eq!(panel(48, 128, 64, 0, true, false), None);
}
