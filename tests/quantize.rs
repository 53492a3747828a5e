//! The quantizer kernels match their CPU references bit for bit (codes, scales, dequantized
//! values) for every format × granularity × rounding, on awkward sizes and values; the transposing
//! quantizer equals quantizing the transpose; bad input is an error, not a panic.

mod common;
use common::{assert_f32_bits_eq, assert_u32_eq, data, gpu};
use lowbit::format::Format;
use lowbit::kernels::quantize_both::{BothExtras, QuantizeBoth, Side};
use lowbit::kernels::quantize_fused::QuantizeFused;
use lowbit::kernels::quantize_fused::ReducePath;
use lowbit::kernels::quantize_transpose_fused::QuantizeTransposeFused;
use lowbit::quant::{QuantizedTensor, Quantizer};
use lowbit::scheme::{Granularity, QuantLayout, QuantScheme, Rounding};
use lowbit::{reference, Error, GpuTensor};
use std::sync::OnceLock;

/// One side's outputs (codes, scales) of a quantize_both launch.
type Outs<'a> = (&'a lowbit::GpuBuffer<u32>, &'a lowbit::GpuBuffer<f32>);

/// The granularities (x's, xᵀ's) the both-orientation tests take for `f`: its native one both
/// ways, and for the formats without blocks of their own per row / blocks of 32 and blocks of 64
/// / per row.
fn both_granularities(f: Format) -> Vec<(Granularity, Granularity)> {
    let native = Granularity::native(f);
    let mixed = [(Granularity::PerRow, Granularity::PerBlock(32)), (Granularity::PerBlock(64), Granularity::PerRow)];
    std::iter::once((native, native)).chain(mixed.into_iter().filter(|_| f.block().is_none())).collect()
}

/// A quantize_both side of layout `layout` rounded to nearest into `(codes, scales)`.
fn nearest<'a>(layout: &'a QuantLayout, (codes, scales): Outs<'a>) -> Side<'a> {
    Side { layout, rounding: Rounding::Nearest, codes, scales }
}

/// Data for x `[rows, cols]` whose transpose L may have its rows split (quantize_both): with the
/// awkward values under 4096 rows; past that plain values (an infinity or a NaN in every long row
/// of L would hide which chunks its maxima and sums were gathered from), and each row of L's
/// largest magnitude in its first chunk (x's first row) at an odd seed, in its last (x's last
/// row) at an even one.
fn long_rows_data(rows: usize, cols: usize, seed: u32) -> Vec<f32> {
    if rows < 4096 {
        return data(rows * cols, seed, true);
    }
    let mut x = data(rows * cols, seed, false);
    let row = if seed % 2 == 1 { 0 } else { rows - 1 };
    for (j, v) in x[row * cols..(row + 1) * cols].iter_mut().enumerate() {
        *v = if j % 2 == 0 { 3.5 } else { -3.25 };
    }
    x
}

fn qz() -> &'static Quantizer {
    static Q: OnceLock<Quantizer> = OnceLock::new();
    Q.get_or_init(|| Quantizer::new(gpu()).unwrap())
}

// Includes many short rows (one thread per row) beside long ones (a workgroup per row).
// (80, 36): rows enough for a thread per row on CPU adapters, whose row length splits into vec4s
// but not into whole words of the 4- and 2-bit formats.
const SHAPES: &[(usize, usize)] = &[(1, 1), (1, 1757), (33, 65), (3, 1000), (70, 129), (2, 5000), (600, 25), (80, 36)];
const GRANULARITIES: &[Granularity] = &[
    Granularity::PerTensor,
    Granularity::PerRow,
    Granularity::PerBlock(8),
    Granularity::PerBlock(16),
    Granularity::PerBlock(32),
    Granularity::PerBlock(128),
    Granularity::PerBlock(2048),
];

fn roundings() -> [Rounding; 2] {
    [Rounding::Nearest, Rounding::Stochastic { seed: 1234, stream: 7 }]
}

fn run(
    f: impl FnOnce(&mut wgpu::CommandEncoder) -> lowbit::Result<QuantizedTensor>,
) -> (Vec<u32>, Vec<f32>, QuantizedTensor) {
    let g = gpu();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let q = f(&mut enc).unwrap();
    g.queue.submit([enc.finish()]);
    (q.codes.read(g).unwrap(), q.scales.read(g).unwrap(), q)
}

fn run_err(f: impl FnOnce(&mut wgpu::CommandEncoder) -> lowbit::Result<QuantizedTensor>) -> lowbit::Error {
    let mut enc = gpu().device.create_command_encoder(&Default::default());
    match f(&mut enc) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn reference_quantize(x: &[f32], l: &QuantLayout, r: Rounding) -> (Vec<u32>, Vec<f32>) {
    reference::quantize_fused::quantize_fused(x, l, r)
}

#[test]
fn two_pass_and_fused_match_the_reference_bit_for_bit() {
    let g = gpu();
    let mut cases = 0;
    for (si, &(rows, cols)) in SHAPES.iter().enumerate() {
        let x = data(rows * cols, si as u32, true);
        let xt = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
        for f in Format::ALL {
            for &gr in GRANULARITIES {
                for r in roundings() {
                    let scheme = QuantScheme { format: f, granularity: gr, rounding: r };
                    let Ok(l) = QuantLayout::new(rows, cols, f, gr) else {
                        // Only int2's 16-code words outgrow the 8-element block, and a
                        // block-scaled format takes only its own block.
                        let own = f.block().is_some_and(|b| gr != Granularity::PerBlock(b));
                        assert!(own || (f, gr) == (Format::Int2, Granularity::PerBlock(8)), "{f} {gr}");
                        let err = run_err(|e| qz().quantize(g, e, &xt, scheme));
                        assert!(matches!(err, lowbit::Error::InvalidArgument(_)), "{err}");
                        continue;
                    };
                    let (want_codes, want_scales) = reference_quantize(&x, &l, r);
                    let what = format!("{rows}x{cols} {f} {gr} {r:?}");
                    let (codes, scales, q) = run(|e| qz().quantize_two_pass(g, e, &xt, scheme));
                    assert_u32_eq(&format!("two-pass codes {what}"), &codes, &want_codes);
                    assert_f32_bits_eq(&format!("two-pass scales {what}"), &scales, &want_scales);
                    // The one-pass kernel (NVFP4: after a tensor-wide absmax, two launches).
                    if QuantizeFused::supports_with_tensor_amax(&l) {
                        let (codes, scales, _) = run(|e| qz().quantize_one_pass(g, e, &xt, scheme));
                        assert_u32_eq(&format!("fused codes {what}"), &codes, &want_codes);
                        assert_f32_bits_eq(&format!("fused scales {what}"), &scales, &want_scales);
                    }
                    // Dequantize the GPU's own codes and compare with the reference dequantizer.
                    let mut enc = g.device.create_command_encoder(&Default::default());
                    let back = qz().dequantize(g, &mut enc, &q).unwrap();
                    g.queue.submit([enc.finish()]);
                    let want_back = reference::dequantize::dequantize(&want_codes, &want_scales, &l);
                    assert_f32_bits_eq(&format!("dequantize {what}"), &back.read(g).unwrap(), &want_back);
                    cases += 1;
                }
            }
        }
    }
    // The kernel alone refuses NVFP4 without the tensor's maximum.
    let l = QuantLayout::new(4, 32, Format::Nvfp4, Granularity::PerBlock(16)).unwrap();
    let k = QuantizeFused::new(g, Format::Nvfp4).unwrap();
    let (xb, codes, scales) = (
        lowbit::GpuBuffer::<f32>::zeros(g, "x", 128).unwrap(),
        lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words()).unwrap(),
        lowbit::GpuBuffer::<f32>::zeros(g, "s", l.n_groups as usize).unwrap(),
    );
    let mut enc = g.device.create_command_encoder(&Default::default());
    let err = k.encode(g, &mut enc, &xb, &l, Rounding::Nearest, &codes, &scales).unwrap_err();
    assert!(matches!(err, lowbit::Error::InvalidArgument(ref m) if m.contains("maximum")), "{err}");
    let lt = QuantLayout::new(32, 4, Format::Nvfp4, Granularity::PerBlock(16)).unwrap();
    let kt = QuantizeTransposeFused::new(g, Format::Nvfp4).unwrap();
    let err = kt.encode(g, &mut enc, &xb, &lt, Rounding::Nearest, &codes, &scales).unwrap_err();
    assert!(matches!(err, lowbit::Error::InvalidArgument(ref m) if m.contains("maximum")), "{err}");
    // Every format × granularity but int2 × block8 (the block-scaled formats: their own block
    // only), both roundings.
    let plain = Format::ALL.len() - Format::BLOCK_SCALED.len();
    assert_eq!(cases, SHAPES.len() * (plain * GRANULARITIES.len() - 1 + Format::BLOCK_SCALED.len()) * 2);
}

#[test]
fn transposed_quantization_equals_quantizing_the_transpose() {
    let g = gpu();
    // Tall sources with few columns are reduced in many chunks along their rows (absmax main_t).
    for &(rows, cols) in &[(1usize, 1usize), (33, 65), (257, 9), (5, 300), (3000, 5), (700, 40)] {
        let x = data(rows * cols, 77, true);
        let mut xt_host = vec![0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                xt_host[c * rows + r] = x[r * cols + c];
            }
        }
        let xg = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
        let xtg = GpuTensor::from_slice(g, &xt_host, &[cols, rows]).unwrap();
        for f in Format::ALL {
            let grs = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![Granularity::PerTensor, Granularity::PerRow, Granularity::PerBlock(32)],
            };
            for &gr in &grs {
                for r in roundings() {
                    let scheme = QuantScheme { format: f, granularity: gr, rounding: r };
                    let what = format!("{rows}x{cols}ᵀ {f} {gr} {r:?}");
                    let (codes, scales, q) = run(|e| qz().quantize_transposed(g, e, &xg, scheme));
                    assert_eq!((q.layout.rows as usize, q.layout.cols as usize), (cols, rows));
                    let l = q.layout;
                    let amax = reference::absmax::absmax(&x, &l, true);
                    let (want_scales, inv) = reference::scale::scale(&amax, f);
                    let want = reference::quantize_transpose::quantize_transpose(&x, &inv, &l, r);
                    assert_u32_eq(&format!("transpose codes {what}"), &codes, &want);
                    assert_f32_bits_eq(&format!("transpose scales {what}"), &scales, &want_scales);
                    // The chain, whichever way quantize_transposed went on this adapter.
                    let (codes3, scales3, _) = run(|e| qz().quantize_transposed_two_pass(g, e, &xg, scheme));
                    assert_u32_eq(&format!("transpose chain codes {what}"), &codes3, &want);
                    assert_f32_bits_eq(&format!("transpose chain scales {what}"), &scales3, &want_scales);
                    let (codes2, scales2, _) = run(|e| qz().quantize_two_pass(g, e, &xtg, scheme));
                    assert_u32_eq(&format!("transpose vs quantize(xᵀ) {what}"), &codes, &codes2);
                    assert_f32_bits_eq(&format!("transpose scales vs quantize(xᵀ) {what}"), &scales, &scales2);
                }
            }
        }
    }
}

#[test]
fn the_fused_transposing_quantizer_is_the_two_pass_chain() {
    // `quantize_transposed` takes the one-pass kernel for per-row scales (the test above checks
    // it through the quantizer); here the kernel itself, on sizes around its 32-row workgroups,
    // against the chain's reference, and its refusals.
    let g = gpu();
    // x is [rows, cols]; L = xᵀ is [cols, rows]; the sums are x's column sums (col_sum's chunks of
    // 64 rows: one, two, three and 47 of them here).
    let colsum = lowbit::kernels::col_sum::ColSum::new(g).unwrap();
    // (33, 1024): L's rows a multiple of 4 and many (quads of four rows a thread on CPU adapters,
    // two quads at 1024 rows), and too few rows of x for every row of L to hold the same largest
    // value. (65, 1028), (70, 2052) and
    // (9, 4100): two, four and eight quads of L's rows per thread there, the last thread one, runs
    // of 64 columns and the col_sum chunks crossed.
    let shapes = [(1usize, 1usize), (64, 1), (1, 64), (65, 129), (130, 7), (128, 784), (3000, 5), (33, 1024)];
    for &(rows, cols) in shapes.iter().chain(&[(65, 1028), (70, 2052), (9, 4100)]) {
        let x = data(rows * cols, 91 + rows as u32, true);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        // The sums of values with specials are NaN or infinite; finite values check the order.
        let xf: Vec<f32> = x.iter().map(|v| if v.is_finite() { *v } else { 0.5 }).collect();
        let xfb = lowbit::GpuBuffer::from_slice(g, "x finite", &xf).unwrap();
        // Subnormals as the adapter's arithmetic sees them (flushed on NVIDIA).
        let want_sums =
            common::as_adapter_sees(&reference::col_sum::col_sum(&common::as_adapter_sees(&xf), rows, cols));
        let col_sums = lowbit::GpuBuffer::<f32>::zeros(g, "col_sum", cols).unwrap();
        common::submit_with(|e| colsum.encode(g, e, &xfb, rows, cols, &col_sums).unwrap());
        assert_f32_bits_eq(&format!("col_sum {rows}x{cols}"), &col_sums.read(g).unwrap(), &want_sums);
        for f in Format::ALL.into_iter().filter(|f| !f.needs_tensor_amax()) {
            let grans = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![Granularity::PerRow, Granularity::PerBlock(32), Granularity::PerBlock(64)],
            };
            // Both reductions, on any adapter: the workgroup trees and a thread per row.
            let paths = [ReducePath::Tree, ReducePath::PerThread];
            for (path, k) in paths.map(|path| (path, QuantizeTransposeFused::with_reduce_path(g, f, path).unwrap())) {
                for &gr in &grans {
                    let l = QuantLayout::new(cols, rows, f, gr).unwrap();
                    assert!(QuantizeTransposeFused::supports(&l), "{f} {gr}");
                    for r in roundings() {
                        let what = format!("{path:?} {rows}x{cols}ᵀ {f} {gr} {r:?}");
                        let sums = Some(lowbit::GpuBuffer::<f32>::zeros(g, "s", cols).unwrap());
                        for (src, sums) in [(&xb, None), (&xfb, sums)] {
                            let codes = lowbit::GpuBuffer::<u32>::zeros(g, "codes", l.words()).unwrap();
                            let scales = lowbit::GpuBuffer::<f32>::zeros(g, "scales", l.n_groups as usize).unwrap();
                            common::submit_with(|e| {
                                k.encode_with_sums(g, e, src, &l, r, &codes, &scales, sums.as_ref()).unwrap()
                            });
                            let host = if std::ptr::eq(src, &xfb) { &xf } else { &x };
                            let (want_codes, want_scales, want) =
                                reference::quantize_transpose_fused::quantize_transpose_fused_sums(host, &l, r);
                            assert_u32_eq(
                                &format!("fused transpose codes {what}"),
                                &codes.read(g).unwrap(),
                                &want_codes,
                            );
                            assert_f32_bits_eq(
                                &format!("fused transpose scales {what}"),
                                &scales.read(g).unwrap(),
                                &want_scales,
                            );
                            if let Some(s) = &sums {
                                // The sums as col_sum's (the same order; subnormals as the adapter's
                                // arithmetic sees them, like want_sums).
                                let (_, _, seen) = reference::quantize_transpose_fused::quantize_transpose_fused_sums(
                                    &common::as_adapter_sees(host),
                                    &l,
                                    r,
                                );
                                let seen = common::as_adapter_sees(&seen);
                                assert_f32_bits_eq(&format!("fused sums {what}"), &s.read(g).unwrap(), &seen);
                                assert_eq!(seen, want_sums);
                                if !common::flushes_subnormals() {
                                    assert_eq!(want, want_sums);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let k = QuantizeTransposeFused::new(g, Format::Int8).unwrap();
    let xb = lowbit::GpuBuffer::<f32>::zeros(g, "x", 64).unwrap();
    let (codes, scales) =
        (lowbit::GpuBuffer::<u32>::zeros(g, "c", 64).unwrap(), lowbit::GpuBuffer::<f32>::zeros(g, "s", 64).unwrap());
    let mut enc = g.device.create_command_encoder(&Default::default());
    let l = QuantLayout::new(8, 8, Format::Int8, Granularity::PerTensor).unwrap();
    assert!(!QuantizeTransposeFused::supports(&l), "one scale for the tensor: the two-pass chain");
    assert!(k.encode(g, &mut enc, &xb, &l, Rounding::Nearest, &codes, &scales).is_err());
    let l = QuantLayout::new(8, 8, Format::Int8, Granularity::PerRow).unwrap();
    let sums = lowbit::GpuBuffer::<f32>::zeros(g, "sums", 7).unwrap();
    let (c, s) =
        (lowbit::GpuBuffer::<u32>::zeros(g, "c", 16).unwrap(), lowbit::GpuBuffer::<f32>::zeros(g, "s", 8).unwrap());
    let err = k.encode_with_sums(g, &mut enc, &xb, &l, Rounding::Nearest, &c, &s, Some(&sums)).unwrap_err();
    assert!(err.to_string().contains("sums has 7"), "{err}");
    let l = QuantLayout::new(8, 8, Format::Nvfp4, Granularity::PerBlock(16)).unwrap();
    assert!(!QuantizeTransposeFused::supports(&l), "NVFP4 needs the tensor's maximum first");
    let l = QuantLayout::new(8, 8, Format::Int4, Granularity::PerRow).unwrap();
    assert!(k.encode(g, &mut enc, &xb, &l, Rounding::Nearest, &codes, &scales).is_err(), "format mismatch");
}

#[test]
fn packing_order_is_low_bits_first() {
    let g = gpu();
    let x = [1.0f32, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0, 7.0];
    let xg = GpuTensor::from_slice(g, &x, &[1, 9]).unwrap();
    let (codes, scales, _) = run(|e| qz().quantize(g, e, &xg, QuantScheme::per_tensor(Format::Int4)));
    assert_eq!(scales, vec![1.0]);
    assert_eq!(codes, vec![0xCDEF_4321, 0x0000_0007]);
}

#[test]
fn all_zero_and_tiny_groups_quantize_to_zero() {
    let g = gpu();
    let x = [0.0f32, 0.0, 1e-39, -1e-40, 5.0, 0.0, 0.0, 0.0];
    let xg = GpuTensor::from_slice(g, &x, &[2, 4]).unwrap();
    for f in Format::ALL {
        let (codes, scales, _) = run(|e| qz().quantize_two_pass(g, e, &xg, QuantScheme::native(f)));
        assert_eq!(scales[0], 0.0, "{f}: a row of zeros and subnormals has scale 0");
        assert_eq!(codes[0], 0, "{f}");
        assert!(scales[1] > 0.0);
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let g = gpu();
    assert!(matches!(GpuTensor::from_slice(g, &[1.0, 2.0, 3.0], &[2, 2]), Err(Error::Shape { .. })));
    assert!(matches!(GpuTensor::from_slice(g, &[], &[0, 4]), Err(Error::Empty(_))));
    assert!(matches!(GpuTensor::from_slice(g, &[1.0], &[]), Err(Error::Shape { .. })));
    assert!(matches!(QuantLayout::new(4, 4, Format::Int8, Granularity::PerBlock(24)), Err(Error::InvalidArgument(_))));
    assert!(matches!(QuantLayout::new(4, 4, Format::Int8, Granularity::PerBlock(4)), Err(Error::InvalidArgument(_))));
    assert!(matches!(QuantLayout::new(0, 4, Format::Int8, Granularity::PerRow), Err(Error::Empty(_))));
    assert!(matches!(
        QuantLayout::new(1 << 20, 1 << 13, Format::Int8, Granularity::PerRow),
        Err(Error::InvalidArgument(_))
    ));
    // Larger than one binding: refused before any allocation, never truncated.
    let huge = (g.report().max_storage_binding / 4 + 1) as usize;
    assert!(matches!(GpuTensor::zeros(g, &[huge]), Err(Error::TooLarge { .. })));
    // Kernels check what they are given.
    let x = GpuTensor::from_slice(g, &[1.0; 12], &[3, 4]).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(
        qz().quantize_transposed(
            g,
            &mut enc,
            &GpuTensor::from_slice(g, &[1.0; 8], &[2, 2, 2]).unwrap(),
            QuantScheme::per_row(Format::Int8)
        ),
        Err(Error::Shape { .. })
    ));
    let q = qz().quantize(g, &mut enc, &x, QuantScheme::per_row(Format::Int8)).unwrap();
    let wrong = QuantLayout::new(4, 3, Format::Int8, Granularity::PerRow).unwrap();
    let k = lowbit::kernels::dequantize::Dequantize::new(g, Format::Int8).unwrap();
    let out = lowbit::GpuBuffer::<f32>::zeros(g, "out", 12).unwrap();
    assert!(matches!(k.encode(g, &mut enc, &q.codes, &q.scales, &wrong, &out), Err(Error::Shape { .. })));
    let l4 = QuantLayout::new(3, 4, Format::Int4, Granularity::PerRow).unwrap();
    assert!(matches!(k.encode(g, &mut enc, &q.codes, &q.scales, &l4, &out), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        qz().quantize_one_pass(g, &mut enc, &x, QuantScheme::per_tensor(Format::Int8)),
        Err(Error::InvalidArgument(_))
    ));
    g.queue.submit([enc.finish()]);
    assert!("nope".parse::<Format>().is_err());
}

/// Dequantize's vec4 entries, on both paths whatever the adapter (a thread per word, and the
/// teams a CPU adapter takes): every format on layouts whose rows are whole words, per tensor, per
/// row and in blocks, with rows of fewer words than a team has threads (a thread crosses rows
/// between its words) and teams that cross rows; bit for bit against the reference, into an
/// output that held NaNs. Rows ending in a partial word keep the scalar entry, which the test
/// above checks.
#[test]
fn dequantize_stores_whole_words_as_vec4s_on_both_paths() {
    use lowbit::kernels::dequantize::Dequantize;
    use lowbit::kernels::VecPath;
    let g = gpu();
    let shapes = [(1, 16), (37, 16), (5, 48), (130, 512), (3, 4096)];
    let mut vectorised = 0;
    for f in Format::ALL {
        let grans = match f.block() {
            Some(b) => vec![Granularity::PerBlock(b)],
            None => vec![
                Granularity::PerTensor,
                Granularity::PerRow,
                Granularity::PerBlock(16),
                Granularity::PerBlock(32),
                Granularity::PerBlock(2048),
            ],
        };
        let kernels = [VecPath::PerThread, VecPath::Teams].map(|path| Dequantize::with_path(g, f, path).unwrap());
        for (si, &(rows, cols)) in shapes.iter().enumerate() {
            for &gr in &grans {
                let Ok(l) = QuantLayout::new(rows, cols, f, gr) else { continue };
                let x = data(rows * cols, 50 + si as u32, true);
                let (codes, scales) = reference_quantize(&x, &l, Rounding::Stochastic { seed: 9, stream: 1 });
                let want = reference::dequantize::dequantize(&codes, &scales, &l);
                // Every format's words hold 4, 8 or 16 codes (int3's 4-bit slots): all are vec4s.
                assert!(Dequantize::vectorised(&l).is_some(), "{rows}x{cols} {f} {gr}");
                vectorised += 1;
                let codes = lowbit::GpuBuffer::from_slice(g, "codes", &codes).unwrap();
                let scales = lowbit::GpuBuffer::from_slice(g, "scales", &scales).unwrap();
                for k in &kernels {
                    let out = lowbit::GpuBuffer::from_slice(g, "out", &vec![f32::NAN; rows * cols]).unwrap();
                    let mut enc = g.device.create_command_encoder(&Default::default());
                    k.encode(g, &mut enc, &codes, &scales, &l, &out).unwrap();
                    g.queue.submit([enc.finish()]);
                    let what = format!("dequantize {rows}x{cols} {f} {gr} {:?}", k.path());
                    assert_f32_bits_eq(&what, &out.read(g).unwrap(), &want);
                }
            }
        }
    }
    assert!(vectorised >= 100, "{vectorised} vectorised layouts");
    // Rows ending in a partial word take the scalar entry.
    for (f, cols) in [(Format::Int4, 20), (Format::Int2, 40), (Format::Int8, 1757)] {
        assert_eq!(
            Dequantize::vectorised(&QuantLayout::new(3, cols, f, Granularity::PerRow).unwrap()),
            None,
            "{f} {cols}"
        );
    }
    assert_eq!(
        Dequantize::vectorised(&QuantLayout::new(3, 64, Format::Int4, Granularity::PerBlock(32)).unwrap()),
        Some(5)
    );
}

#[test]
fn subnormal_inputs_flush_to_zero_where_the_inverse_scale_is_huge() {
    // A row whose maximum is a few qmax·2^-126: its scale is barely normal and 1/s near 2^126, so a
    // subnormal x that were scaled unflushed would land on ±1 and above (ftz(x) · inv: 0); normal
    // values of the same size, and ones halfway between codes, round as the host spec does.
    let tiny = f32::MIN_POSITIVE;
    for f in Format::ALL {
        let amax = f.qmax() * tiny * 3.0;
        let mut row: Vec<f32> = vec![
            amax,
            -amax * 0.5,
            f32::from_bits(0x007f_ffff),
            -f32::from_bits(0x0040_0001),
            tiny,
            -tiny * 1.5,
            amax / f.qmax() * 2.5,
            -amax / f.qmax() * 0.5,
        ];
        // One block of the block-scaled formats.
        row.resize(32, 0.0);
        for rounding in [Rounding::Nearest, Rounding::Stochastic { seed: 3, stream: 4 }] {
            let inv = row_codes_match_the_reference(f, &row, rounding);
            // (NVFP4's tensor scale, amax / 2688, is not normal here: s = 0 for the whole row.)
            if f != Format::Nvfp4 {
                assert!(inv[0] > 1e37, "{f}: 1/s = {} is not near 2^126", inv[0]);
            }
        }
    }
}

/// Quantizes `row` (one row of 32 values) in format `f` at its native granularity with
/// `rounding`, by the two-pass and (where it takes the layout) the one-pass quantizer, each
/// checked against the reference's codes; returns the reference's inverse scales.
fn row_codes_match_the_reference(f: Format, row: &[f32], rounding: Rounding) -> Vec<f32> {
    let g = gpu();
    let x = GpuTensor::from_slice(g, row, &[1, 32]).unwrap();
    let s = QuantScheme { rounding, ..QuantScheme::native(f) };
    let l = QuantLayout::new(1, 32, f, s.granularity).unwrap();
    let (_, inv) = reference::scale::scale(&reference::absmax::absmax(row, &l, false), f);
    let want = reference::quantize::quantize(row, &inv, &l, rounding);
    for one_pass in [false, true] {
        if one_pass && !QuantizeFused::supports_with_tensor_amax(&l) {
            continue;
        }
        let (codes, _, _) =
            run(|e| if one_pass { qz().quantize_one_pass(g, e, &x, s) } else { qz().quantize_two_pass(g, e, &x, s) });
        assert_u32_eq(&format!("{f} {rounding:?} (one pass {one_pass})"), &codes, &want);
    }
    inv
}

#[test]
fn nvfp4_of_a_small_tensor_reduces_its_maximum_in_the_quantizers_launch() {
    // quantize_reducing_amax: one launch where the tensor fits one workgroup, absmax and the
    // one-pass quantizer otherwise; codes, scales and the maximum handed back are those of absmax
    // then quantize_with_amax (and the reference), awkward values included.
    let g = gpu();
    let limit = QuantizeFused::whole_max_values(g);
    // resnet20's stem and stage-3 weights, ragged blocks, one value, and one past the limit.
    let shapes = [(16usize, 27usize), (64, 576), (33, 65), (1, 1), (3, 1000), (1, limit + 1)];
    for (rows, cols) in shapes {
        let x = data(rows * cols, 150, true);
        let xt = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
        for rounding in roundings() {
            let s = QuantScheme { rounding, ..QuantScheme::native(Format::Nvfp4) };
            let l = QuantLayout::new(rows, cols, Format::Nvfp4, s.granularity).unwrap();
            let one = rows * cols <= limit;
            assert_eq!(QuantizeFused::fits_whole(g, &l), one, "{rows}x{cols}");
            let mut rec = lowbit::Recorder::new(g, "whole");
            let (q, amax) = qz().quantize_reducing_amax(g, &mut rec, &xt, s).unwrap();
            let dispatches = rec.dispatches();
            g.queue.submit([rec.finish()]);
            let what = format!("nvfp4 {rows}x{cols} {rounding:?}");
            assert_eq!(dispatches, if one { 1 } else { 2 }, "{what}: launches");
            let mut enc = g.device.create_command_encoder(&Default::default());
            let want_amax = qz().tensor_amax(g, &mut enc, &xt).unwrap();
            let chain = qz().quantize_with_amax(g, &mut enc, &xt, s, &want_amax).unwrap();
            g.queue.submit([enc.finish()]);
            assert_eq!(amax.read(g).unwrap(), want_amax.read(g).unwrap(), "{what}: maximum");
            let (codes, scales) = (q.codes.read(g).unwrap(), q.scales.read(g).unwrap());
            assert_u32_eq(&format!("{what}: codes vs the chain"), &codes, &chain.codes.read(g).unwrap());
            assert_f32_bits_eq(&format!("{what}: scales vs the chain"), &scales, &chain.scales.read(g).unwrap());
            let (wc, ws) = reference_quantize(&x, &l, rounding);
            assert_u32_eq(&format!("{what}: codes vs the reference"), &codes, &wc);
            assert_f32_bits_eq(&format!("{what}: scales vs the reference"), &scales, &ws);
        }
    }
    // Refused: a format without a tensor-wide scale, and the one-launch entry past its limit.
    let xt = GpuTensor::from_slice(g, &[1.0; 32], &[2, 16]).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let e = qz().quantize_reducing_amax(g, &mut enc, &xt, QuantScheme::per_row(Format::Int8)).err().unwrap();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let big = QuantLayout::new(1, limit + 16, Format::Nvfp4, Granularity::PerBlock(16)).unwrap();
    let k = QuantizeFused::new(g, Format::Nvfp4).unwrap();
    let (xb, cb, sb, ab) = (
        lowbit::GpuBuffer::<f32>::zeros(g, "x", limit + 16).unwrap(),
        lowbit::GpuBuffer::<u32>::zeros(g, "codes", big.words()).unwrap(),
        lowbit::GpuBuffer::<f32>::zeros(g, "scales", big.n_groups as usize).unwrap(),
        lowbit::GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap(),
    );
    let e = k.encode_reducing_tensor_amax(g, &mut enc, &xb, &big, Rounding::Nearest, &ab, &cb, &sb).err().unwrap();
    assert!(e.to_string().contains("at most"), "{e}");
}

#[test]
fn nvfp4_of_a_weight_in_both_orientations_takes_one_launch_with_its_maximum() {
    // quantize_reducing_amax_both: W and Wᵀ (the forward's and the input gradient's operands) with
    // W's maximum, in one launch where W fits one workgroup (main_whole_both), two otherwise
    // (absmax, then main_group_both: a thread per block of either); the bits of
    // quantize_reducing_amax and quantize_transposed_with_amax (and the references), awkward
    // values and ragged blocks both ways included.
    let g = gpu();
    let limit = QuantizeFused::whole_max_values(g);
    let shapes = [(16usize, 144usize), (64, 576), (33, 65), (1, 1), (3, 1000), (1, limit + 1), (300, 333)];
    let s = QuantScheme::native(Format::Nvfp4);
    for (rows, cols) in shapes {
        let x = data(rows * cols, 151, true);
        let xt = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
        let what = format!("nvfp4 {rows}x{cols}");
        let mut rec = lowbit::Recorder::new(g, "both");
        let (q, qt, amax) = qz().quantize_reducing_amax_both(g, &mut rec, &xt, s, s).unwrap();
        let dispatches = rec.dispatches();
        g.queue.submit([rec.finish()]);
        assert_eq!(dispatches, if rows * cols <= limit { 1 } else { 2 }, "{what}: launches");
        let mut enc = g.device.create_command_encoder(&Default::default());
        let want_amax = qz().tensor_amax(g, &mut enc, &xt).unwrap();
        let chain = qz().quantize_with_amax(g, &mut enc, &xt, s, &want_amax).unwrap();
        let chain_t = qz().quantize_transposed_with_amax(g, &mut enc, &xt, s, &want_amax).unwrap();
        g.queue.submit([enc.finish()]);
        assert_eq!(amax.read(g).unwrap(), want_amax.read(g).unwrap(), "{what}: maximum");
        for (side, got, want) in [("W", &q, &chain), ("Wᵀ", &qt, &chain_t)] {
            let (codes, scales) = (got.codes.read(g).unwrap(), got.scales.read(g).unwrap());
            assert_u32_eq(&format!("{what} {side}: codes"), &codes, &want.codes.read(g).unwrap());
            assert_f32_bits_eq(&format!("{what} {side}: scales"), &scales, &want.scales.read(g).unwrap());
        }
        let lt = QuantLayout::new(cols, rows, Format::Nvfp4, s.granularity).unwrap();
        let (wc, ws) =
            lowbit::reference::quantize_transpose_fused::quantize_transpose_fused(&x, &lt, Rounding::Nearest);
        assert_u32_eq(&format!("{what} Wᵀ: codes vs the reference"), &qt.codes.read(g).unwrap(), &wc);
        assert_f32_bits_eq(&format!("{what} Wᵀ: scales vs the reference"), &qt.scales.read(g).unwrap(), &ws);
    }
    // Refused: stochastic rounding, two formats, a format without a tensor-wide scale (also by
    // the kernel's entry given the maximum).
    let xt = GpuTensor::from_slice(g, &[1.0; 32], &[2, 16]).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let sr = QuantScheme { rounding: Rounding::Stochastic { seed: 1, stream: 2 }, ..s };
    let mx = QuantScheme::native(Format::Mxfp4);
    for (a, b) in [(sr, s), (s, sr), (s, mx), (mx, mx)] {
        let e = qz().quantize_reducing_amax_both(g, &mut enc, &xt, a, b).err().unwrap();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    let (l, lt) = (
        QuantLayout::new(2, 16, Format::Mxfp4, Granularity::PerBlock(32)).unwrap(),
        QuantLayout::new(16, 2, Format::Mxfp4, Granularity::PerBlock(32)).unwrap(),
    );
    let buffers = |l: &QuantLayout| {
        (
            lowbit::GpuBuffer::<u32>::zeros(g, "codes", l.words()).unwrap(),
            lowbit::GpuBuffer::<f32>::zeros(g, "scales", l.n_groups as usize).unwrap(),
        )
    };
    let ((c, sc), (ct, sct)) = (buffers(&l), buffers(&lt));
    let amax = lowbit::GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
    let mx_kernel = QuantizeFused::new(g, Format::Mxfp4).unwrap();
    let e = mx_kernel
        .encode_both_with_tensor_amax(g, &mut enc, xt.buffer(), (&l, &lt), &amax, (&c, &sc), (&ct, &sct))
        .err()
        .unwrap();
    assert!(e.to_string().contains("NVFP4"), "{e}");
}

#[test]
fn a_small_weight_in_both_orientations_takes_one_launch() {
    // quantize_both: W and Wᵀ (the forward's and the input gradient's operands) of a format
    // without a tensor-wide scale, in one launch where W has at most whole_max_values values or
    // the launch reads vec4s (quantize_both: a thread per group of either, or per four rows of
    // Wᵀ), otherwise the two quantizers; the bits of
    // quantize and quantize_transposed and of the references, with per-row and per-block scales
    // each way, ragged words and blocks, awkward values and rows of one value included.
    let g = gpu();
    let limit = QuantizeFused::whole_max_values(g);
    // (128x784: past the limit, one launch on a CPU adapter through the vec4 entry where the
    // format packs codes in fours; 4100x8: Wᵀ's rows split into pieces there, after a launch that
    // takes their maxima per chunk, where Wᵀ has per-row scales; 65x1028 and 9x4100: two and
    // eight quads of Wᵀ's rows a thread there, the last thread one; the last one past the limit
    // everywhere. 4100x8: W's short rows a thread each there, QuantizeBoth::short_rows.)
    let shapes = [
        (16usize, 144usize),
        (64, 576),
        (33, 65),
        (1, 1),
        (3, 1000),
        (7, 5),
        (128, 784),
        (4100, 8),
        (65, 1028),
        (9, 4100),
        (1, limit + 1),
    ];
    let (mut formats, mut split, mut short) = (0, 0, 0);
    for f in Format::ALL.into_iter().filter(|f| !f.needs_tensor_amax()) {
        formats += 1;
        let native = Granularity::native(f);
        for (ga, gb) in both_granularities(f) {
            let (s, st) = (
                QuantScheme { granularity: ga, ..QuantScheme::native(f) },
                QuantScheme { granularity: gb, ..QuantScheme::native(f) },
            );
            for (i, (rows, cols)) in shapes.into_iter().enumerate() {
                if i == shapes.len() - 1 && ga != native {
                    continue; // (the fallback once a format)
                }
                let x = long_rows_data(rows, cols, 157 + i as u32);
                let xt = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
                let what = format!("{f:?} {ga}/{gb} {rows}x{cols}");
                let mut rec = lowbit::Recorder::new(g, "both");
                let (q, qt) = qz().quantize_both(g, &mut rec, &xt, s, st).unwrap();
                let dispatches = rec.dispatches();
                g.queue.submit([rec.finish()]);
                let mut rec = lowbit::Recorder::new(g, "apart");
                let apart = qz().quantize(g, &mut rec, &xt, s).unwrap();
                let apart_t = qz().quantize_transposed(g, &mut rec, &xt, st).unwrap();
                let apart_dispatches = rec.dispatches();
                g.queue.submit([rec.finish()]);
                let l = QuantLayout::new(rows, cols, f, ga).unwrap();
                let lt = QuantLayout::new(cols, rows, f, gb).unwrap();
                let one = rows * cols <= limit || QuantizeBoth::reads_vec4s(g, &l);
                let launches = QuantizeBoth::launches(g, &l, &lt) as u64;
                split += (launches == 2) as usize;
                short += QuantizeBoth::short_rows(g, &l, 1).is_some() as usize;
                assert_eq!(dispatches, if one { launches } else { apart_dispatches }, "{what}: launches");
                assert!(apart_dispatches >= 2, "{what}: the two quantizers apart");
                assert_eq!(lowbit::quant::Quantizer::quantizes_both_in_one_pass(g, &l, &lt), one, "{what}");
                let refs = [
                    reference::quantize_fused::quantize_fused(&x, &l, Rounding::Nearest),
                    reference::quantize_transpose_fused::quantize_transpose_fused(&x, &lt, Rounding::Nearest),
                ];
                for ((side, got, want), r) in [("W", &q, &apart), ("Wᵀ", &qt, &apart_t)].into_iter().zip(refs) {
                    assert_eq!(got.layout, want.layout, "{what} {side}: layout");
                    let (codes, scales) = (got.codes.read(g).unwrap(), got.scales.read(g).unwrap());
                    assert_u32_eq(&format!("{what} {side}: codes"), &codes, &want.codes.read(g).unwrap());
                    assert_f32_bits_eq(&format!("{what} {side}: scales"), &scales, &want.scales.read(g).unwrap());
                    assert_u32_eq(&format!("{what} {side}: codes vs the reference"), &codes, &r.0);
                    assert_f32_bits_eq(&format!("{what} {side}: scales vs the reference"), &scales, &r.1);
                }
            }
        }
    }
    assert!(formats >= 8, "every format without a tensor-wide scale: {formats}");
    // Where the launch reads vec4s, the long rows of Wᵀ were split (per-row Wᵀ of 4100x8 in each
    // format packing codes in fours: int8, int4, int2, log4, fp8 E4M3 and E5M2, fp4).
    assert!(!g.cpu_layouts() || split >= 6, "L's rows split: {split}");
    // There, W's short rows (4100x8, per-row W) took the thread-per-row path in each such format.
    assert!(!g.cpu_layouts() || short >= 6, "short rows: {short}");
    // Per-tensor scales take the two quantizers (no launch of this kernel groups a whole tensor).
    let xt = GpuTensor::from_slice(g, &data(64, 3, true), &[8, 8]).unwrap();
    let pt = QuantScheme { granularity: Granularity::PerTensor, ..QuantScheme::native(Format::Int8) };
    let mut rec = lowbit::Recorder::new(g, "per tensor");
    let (q, _) = qz().quantize_both(g, &mut rec, &xt, pt, pt).unwrap();
    assert!(rec.dispatches() > 1, "per-tensor scales: the chains");
    g.queue.submit([rec.finish()]);
    assert_eq!(q.layout.granularity, Granularity::PerTensor);
    // Refused: stochastic rounding, two formats, a format with a tensor-wide scale.
    let mut enc = g.device.create_command_encoder(&Default::default());
    let s = QuantScheme::native(Format::Int8);
    let sr = s.stochastic(1, 2);
    let nv = QuantScheme::native(Format::Nvfp4);
    let i4 = QuantScheme::native(Format::Int4);
    for (a, b) in [(sr, s), (s, sr), (s, i4), (nv, nv)] {
        let e = qz().quantize_both(g, &mut enc, &xt, a, b).err().unwrap();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    // The kernel itself refuses what it does not take, recording nothing: a tensor past the
    // limit, a transpose of another shape or format, NVFP4 (its entry is quantize_fused's
    // main_whole_both), and outputs of the wrong length.
    let k = QuantizeBoth::new(g, Format::Int8).unwrap();
    let out = |l: &QuantLayout| {
        (
            lowbit::GpuBuffer::<u32>::zeros(g, "codes", l.words()).unwrap(),
            lowbit::GpuBuffer::<f32>::zeros(g, "scales", l.n_groups as usize).unwrap(),
        )
    };
    let big = GpuTensor::zeros(g, &[1, limit + 1]).unwrap();
    let row = Granularity::PerRow;
    let cases = [
        (
            &big,
            QuantLayout::new(1, limit + 1, Format::Int8, row).unwrap(),
            QuantLayout::new(limit + 1, 1, Format::Int8, row).unwrap(),
        ),
        (&xt, QuantLayout::new(8, 8, Format::Int8, row).unwrap(), QuantLayout::new(4, 16, Format::Int8, row).unwrap()),
        (&xt, QuantLayout::new(8, 8, Format::Int8, row).unwrap(), QuantLayout::new(8, 8, Format::Int4, row).unwrap()),
        (&xt, QuantLayout::new(8, 8, Format::Int4, row).unwrap(), QuantLayout::new(8, 8, Format::Int4, row).unwrap()),
    ];
    let mut rec = lowbit::Recorder::new(g, "refused");
    for (x, l, lt) in &cases {
        let (o, ot) = (out(l), out(lt));
        let e = k
            .encode(
                g,
                &mut rec,
                x.buffer(),
                (nearest(l, (&o.0, &o.1)), nearest(lt, (&ot.0, &ot.1))),
                &BothExtras::default(),
            )
            .err()
            .unwrap();
        assert!(matches!(e, Error::InvalidArgument(_) | Error::Shape { .. }), "{e}");
    }
    let nv = QuantizeBoth::new(g, Format::Nvfp4).unwrap();
    let l = QuantLayout::new(8, 16, Format::Nvfp4, Granularity::native(Format::Nvfp4)).unwrap();
    let lt = QuantLayout::new(16, 8, Format::Nvfp4, Granularity::native(Format::Nvfp4)).unwrap();
    let x16 = GpuTensor::zeros(g, &[8, 16]).unwrap();
    let (o, ot) = (out(&l), out(&lt));
    assert!(
        nv.encode(
            g,
            &mut rec,
            x16.buffer(),
            (nearest(&l, (&o.0, &o.1)), nearest(&lt, (&ot.0, &ot.1))),
            &BothExtras::default()
        )
        .is_err(),
        "NVFP4"
    );
    let l = QuantLayout::new(8, 8, Format::Int8, row).unwrap();
    let (o, ot) = (out(&l), out(&l));
    let short = lowbit::GpuBuffer::<f32>::zeros(g, "scales", 7).unwrap();
    for outs in [((&o.0, &short), (&ot.0, &ot.1)), ((&o.0, &o.1), (&ot.0, &short))] {
        let e = k
            .encode(g, &mut rec, xt.buffer(), (nearest(&l, outs.0), nearest(&l, outs.1)), &BothExtras::default())
            .err()
            .unwrap();
        assert!(matches!(e, Error::Shape { .. } | Error::InvalidArgument(_)), "{e}");
    }
    assert_eq!(rec.dispatches(), 0, "nothing recorded");
}

/// One side of a two-sided launch (`got`, `k` samples) against the same tensor quantized apart
/// (`want`) and against the reference's codes and scales.
fn side_matches(what: &str, got: &QuantizedTensor, want: &QuantizedTensor, k: u32, r: &(Vec<u32>, Vec<f32>)) {
    let g = gpu();
    assert_eq!((got.layout, got.samples), (want.layout, k), "{what}: layout");
    let (codes, scales) = (got.codes.read(g).unwrap(), got.scales.read(g).unwrap());
    assert_u32_eq(&format!("{what}: codes"), &codes, &want.codes.read(g).unwrap());
    assert_f32_bits_eq(&format!("{what}: scales"), &scales, &want.scales.read(g).unwrap());
    assert_u32_eq(&format!("{what}: codes vs the reference"), &codes, &r.0);
    assert_f32_bits_eq(&format!("{what}: scales vs the reference"), &scales, &r.1);
}

#[test]
fn a_small_gradient_in_both_orientations_takes_one_launch() {
    // quantize_grad_both: a layer's dY (for dX) and dYᵀ (for dW) with the bias gradient (dY's
    // column sums), ReLU's mask read inside and SMP's samples, each side with its own stream, in
    // one launch (quantize_both) where dY has at most whole_max_values values (or any number
    // where it reads vec4s, QuantizeBoth::reads_vec4s), otherwise the
    // quantizers apart: the bits of quantize(_masked, _samples) and
    // quantize_transposed_samples_with_sums, and of the reference, for every format without a
    // tensor-wide scale, per-row and per-block each way, ragged words, blocks and rows.
    let g = gpu();
    let limit = QuantizeFused::whole_max_values(g);
    // (rows, cols, mask, samples); 512x256 past the limit (one launch on a CPU adapter through
    // the vec4 entry where the format packs codes in fours; 4100x16 and 8200x4 there with dYᵀ's
    // rows split into pieces, after a launch that takes their maxima and sums per chunk, where dYᵀ
    // has per-row scales; 65x1028 with two quads of dYᵀ's rows a thread), the last one past it
    // everywhere (64 rows: the masked quantizer of dY takes it in one pass there too). 300x32 and
    // 8200x4: dY's short rows a thread each there (QuantizeBoth::short_rows), masked or not.
    let shapes = [
        (16usize, 10usize, true, 1u32),
        (300, 32, true, 1),
        (128, 256, true, 2),
        (33, 65, false, 1),
        (1, 1, true, 3),
        (7, 5, false, 2),
        (3, 1000, true, 1),
        (512, 256, true, 2),
        (4100, 16, true, 2),
        (8200, 4, false, 1),
        (65, 1028, true, 2),
        (64, limit / 64 + 1, true, 2),
    ];
    let (sd, st) = (Rounding::Stochastic { seed: 9, stream: 3 }, Rounding::Stochastic { seed: 9, stream: 11 });
    let (mut formats, mut split, mut short) = (0, 0, 0);
    for f in Format::ALL.into_iter().filter(|f| !f.needs_tensor_amax()) {
        formats += 1;
        let native = Granularity::native(f);
        for (ga, gb) in both_granularities(f) {
            let (s, s_t) = (
                QuantScheme { granularity: ga, rounding: sd, format: f },
                QuantScheme { granularity: gb, rounding: st, format: f },
            );
            for (i, (rows, cols, masked, k)) in shapes.into_iter().enumerate() {
                if i == shapes.len() - 1 && ga != native {
                    continue; // (the fallback once a format)
                }
                let x = long_rows_data(rows, cols, 211 + i as u32);
                let y = data(rows * cols, 223 + i as u32, false);
                let what = format!("{f:?} {ga}/{gb} {rows}x{cols} masked {masked} samples {k}");
                let xt = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
                let yb = lowbit::GpuBuffer::from_slice(g, "y", &y).unwrap();
                let mask = masked.then_some(&yb);
                let sums = [0, 1].map(|_| lowbit::GpuBuffer::<f32>::zeros(g, "sums", cols).unwrap());
                let mut rec = lowbit::Recorder::new(g, "both");
                let (q, qt) = qz().quantize_grad_both(g, &mut rec, &xt, mask, (s, s_t), k, &sums[0]).unwrap();
                let dispatches = rec.dispatches();
                g.queue.submit([rec.finish()]);
                let mut rec = lowbit::Recorder::new(g, "apart");
                let apart_t = match (k, mask) {
                    (1, Some(m)) => qz().quantize_transposed_with_sums_masked(g, &mut rec, &xt, m, s_t, &sums[1]),
                    (1, None) => qz().quantize_transposed_with_sums(g, &mut rec, &xt, s_t, &sums[1]),
                    _ => qz().quantize_transposed_samples_with_sums(g, &mut rec, &xt, mask, s_t, k, &sums[1]),
                }
                .unwrap();
                let apart = match (k, mask) {
                    (1, Some(m)) => qz().quantize_masked(g, &mut rec, &xt, m, s),
                    (1, None) => qz().quantize(g, &mut rec, &xt, s),
                    (_, Some(m)) => qz().quantize_samples_masked(g, &mut rec, &xt, m, s, k),
                    (_, None) => qz().quantize_samples(g, &mut rec, &xt, s, k),
                }
                .unwrap();
                let apart_dispatches = rec.dispatches();
                g.queue.submit([rec.finish()]);
                let l = QuantLayout::new(rows, cols, f, ga).unwrap();
                let lt = QuantLayout::new(cols, rows, f, gb).unwrap();
                let one = rows * cols <= limit || QuantizeBoth::reads_vec4s(g, &l);
                assert_eq!(Quantizer::quantizes_grad_both_in_one_pass(g, &l, &lt), one, "{what}");
                let launches = QuantizeBoth::launches(g, &l, &lt) as u64;
                split += (launches == 2) as usize;
                short += QuantizeBoth::short_rows(g, &l, k).is_some() as usize;
                assert_eq!(dispatches, if one { launches } else { apart_dispatches }, "{what}: launches");
                assert!(apart_dispatches >= 2, "{what}: the two quantizers apart");
                let (r, rt, rsums) =
                    reference::quantize_both::quantize_both(&x, masked.then_some(&y[..]), (&l, sd), (&lt, st), k);
                for ((side, got, want), r) in [("dY", &q, &apart), ("dYᵀ", &qt, &apart_t)].into_iter().zip([r, rt]) {
                    side_matches(&format!("{what} {side}"), got, want, k, &r);
                }
                let got_sums = sums[0].read(g).unwrap();
                assert_f32_bits_eq(&format!("{what}: sums"), &got_sums, &sums[1].read(g).unwrap());
                // (Subnormals as the adapter's arithmetic sees them: flushed on NVIDIA.)
                let seen = common::as_adapter_sees(&x);
                let masked_x = match masked {
                    true => reference::relu_backward::relu_backward(&y, &seen),
                    false => seen,
                };
                let want = reference::col_sum::col_sum(&masked_x, rows, cols);
                assert_f32_bits_eq(
                    &format!("{what}: sums vs the reference"),
                    &got_sums,
                    &common::as_adapter_sees(&want),
                );
                assert_eq!(rsums.len(), cols, "{what}: the reference's sums");
            }
        }
    }
    assert!(formats >= 8, "every format without a tensor-wide scale: {formats}");
    // Where the launch reads vec4s, the long rows of dYᵀ were split (per-row dYᵀ of both long
    // shapes in each format packing codes in fours).
    assert!(!g.cpu_layouts() || split >= 12, "L's rows split: {split}");
    // There, dY's short rows took the thread-per-row path: 300x32 in every format packing codes
    // in fours, 8200x4 in those packing four a word (int8, both FP8s), with per-row dY.
    assert!(!g.cpu_layouts() || short >= 10, "short rows: {short}");
    // Refused, recording nothing: a format with a tensor-wide scale, two formats, SMP samples with
    // nearest rounding on either side or none at all, per-tensor scales (no one-pass sums).
    let xt = GpuTensor::from_slice(g, &data(64, 3, true), &[8, 8]).unwrap();
    let sums = lowbit::GpuBuffer::<f32>::zeros(g, "sums", 8).unwrap();
    let i8s = QuantScheme::native(Format::Int8).stochastic(1, 2);
    let cases = [
        (QuantScheme::native(Format::Nvfp4), QuantScheme::native(Format::Nvfp4), 1),
        (i8s, QuantScheme::native(Format::Int4), 1),
        (i8s, QuantScheme::native(Format::Int8), 2),
        (QuantScheme::native(Format::Int8), i8s, 2),
        (i8s, i8s, 0),
        (i8s, QuantScheme { granularity: Granularity::PerTensor, ..i8s }, 1),
    ];
    let mut rec = lowbit::Recorder::new(g, "refused");
    for (a, b, k) in cases {
        let e = qz().quantize_grad_both(g, &mut rec, &xt, None, (a, b), k, &sums).err().unwrap();
        assert!(matches!(e, Error::InvalidArgument(_) | Error::Shape { .. }), "{a:?} {b:?} {k}: {e}");
    }
    // A mask where dY takes the two-pass quantizer (few long rows, past one launch): refused before
    // dYᵀ's launch is recorded.
    let long = GpuTensor::from_slice(g, &data(2 * 40001, 5, false), &[2, 40001]).unwrap();
    let mask = lowbit::GpuBuffer::from_slice(g, "mask", &data(2 * 40001, 6, false)).unwrap();
    let long_sums = lowbit::GpuBuffer::<f32>::zeros(g, "sums", 40001).unwrap();
    let e = qz().quantize_grad_both(g, &mut rec, &long, Some(&mask), (i8s, i8s), 1, &long_sums).err().unwrap();
    assert!(matches!(e, Error::InvalidArgument(ref m) if m.contains("apply the mask first")), "{e}");
    // The kernel refuses sums or a mask of the wrong length.
    let kb = QuantizeBoth::new(g, Format::Int8).unwrap();
    let l = QuantLayout::new(8, 8, Format::Int8, Granularity::PerRow).unwrap();
    let out = || {
        (
            lowbit::GpuBuffer::<u32>::zeros(g, "codes", l.words()).unwrap(),
            lowbit::GpuBuffer::<f32>::zeros(g, "scales", l.n_groups as usize).unwrap(),
        )
    };
    let (o, ot) = (out(), out());
    let short = lowbit::GpuBuffer::<f32>::zeros(g, "short", 7).unwrap();
    for extras in [
        BothExtras { sums: Some(&short), ..Default::default() },
        BothExtras { mask: Some(&short), ..Default::default() },
    ] {
        let sides = (nearest(&l, (&o.0, &o.1)), nearest(&l, (&ot.0, &ot.1)));
        let e = kb.encode(g, &mut rec, xt.buffer(), sides, &extras).err().unwrap();
        assert!(matches!(e, Error::Shape { .. } | Error::InvalidArgument(_)), "{e}");
    }
    assert_eq!(rec.dispatches(), 0, "nothing recorded");
}

#[test]
fn products_below_the_normal_range_quantize_as_the_host_spec_says() {
    // A row whose maximum is huge: 1/s is tiny, so normal x give products x·(1/s) that are
    // subnormal (±1e-12 · 127/1e30 ≈ ±1.3e-40) or far below one code step; the host spec flushes
    // the product (code 0: never −0's code, nor a stochastic step up from a subnormal).
    let mut row: Vec<f32> = vec![1e30, -1e-12, 1e-12, 3e-9, -2e-38, 1.5e-38, -4e20, 5e27];
    row.resize(32, 1e-13);
    for f in Format::ALL {
        for rounding in [Rounding::Nearest, Rounding::Stochastic { seed: 5, stream: 6 }] {
            row_codes_match_the_reference(f, &row, rounding);
        }
    }
}

#[test]
fn a_group_without_finite_values_follows_one_rule_on_host_and_device() {
    // A row whose only nonzero is ±inf or NaN has amax 0, so s = 0: every code that stands for a
    // finite value is 0, the FP8 formats keep their own NaN and (E5M2) ±inf codes, and
    // dequantization gives a non-finite code's own value (src/format/mod.rs).
    let g = gpu();
    let rows: [[f32; 4]; 3] =
        [[f32::INFINITY, 0.0, 0.0, 0.0], [0.0, f32::NEG_INFINITY, 0.0, 0.0], [0.0, 0.0, f32::NAN, 0.0]];
    for f in Format::ALL {
        for (r, row) in rows.iter().enumerate() {
            let x = GpuTensor::from_slice(g, row, &[1, 4]).unwrap();
            for one_pass in [false, true] {
                let s = QuantScheme::native(f);
                if one_pass
                    && !QuantizeFused::supports_with_tensor_amax(&QuantLayout::new(1, 4, f, s.granularity).unwrap())
                {
                    continue;
                }
                let mut enc = g.device.create_command_encoder(&Default::default());
                let q = if one_pass {
                    qz().quantize_one_pass(g, &mut enc, &x, s).unwrap()
                } else {
                    qz().quantize_two_pass(g, &mut enc, &x, s).unwrap()
                };
                let back = qz().dequantize(g, &mut enc, &q).unwrap();
                g.queue.submit([enc.finish()]);
                assert_eq!(q.scales.read(g).unwrap(), vec![0.0], "{f} row {r}: no finite nonzero, s = 0");
                let got = back.read(g).unwrap();
                // The documented result.
                let want: Vec<f32> = row
                    .iter()
                    .map(|&v| match (f, v) {
                        (Format::Fp8E5M2, v) if v.is_infinite() => v,
                        (f, v) if v.is_nan() && f.is_fp8() => f32::NAN,
                        _ => 0.0,
                    })
                    .collect();
                assert_f32_bits_eq(&format!("{f} row {r} dequantized (one pass {one_pass})"), &got, &want);
                // The host spec gives the same codes.
                let l = q.layout;
                let (sc, inv) = reference::scale::scale(&reference::absmax::absmax(row, &l, false), f);
                assert_eq!(sc, vec![0.0]);
                let codes = reference::quantize::quantize(row, &inv, &l, Rounding::Nearest);
                assert_u32_eq(&format!("{f} row {r} codes"), &q.codes.read(g).unwrap(), &codes);
                assert_f32_bits_eq(
                    &format!("{f} row {r} host"),
                    &reference::dequantize::dequantize(&codes, &sc, &l),
                    &want,
                );
            }
        }
    }
}

/// Per-block and per-row groups give the same bits whether a workgroup tree or one thread
/// reduces each (`ReducePath`: the adapter picks one; both are checked here on whatever adapter
/// runs this).
#[test]
fn both_reduce_paths_match_the_reference() {
    let g = gpu();
    for f in Format::ALL {
        // The tree path's per-row teams also with a fill of 0: these few rows' balanced teams.
        let kernels = [ReducePath::Tree, ReducePath::PerThread]
            .map(|path| (format!("{path:?}"), QuantizeFused::with_reduce_path(g, f, path).unwrap()))
            .into_iter()
            .chain([(
                "Tree, fill 0".to_string(),
                QuantizeFused::with_reduce_path(g, f, ReducePath::Tree).unwrap().with_team_fill(0),
            )]);
        let kernels: Vec<_> = kernels.collect();
        for (si, &(rows, cols)) in SHAPES.iter().enumerate() {
            let x = data(rows * cols, 40 + si as u32, true);
            let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
            let whole = QuantLayout::new(rows, cols, Format::Fp4E2M1, Granularity::PerTensor).unwrap();
            let amax =
                lowbit::GpuBuffer::from_slice(g, "amax", &reference::absmax::absmax(&x, &whole, false)[..1]).unwrap();
            let groups = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => [8, 16, 32, 128].map(Granularity::PerBlock).into_iter().chain([Granularity::PerRow]).collect(),
            };
            for gr in groups {
                let Ok(l) = QuantLayout::new(rows, cols, f, gr) else { continue };
                for r in roundings() {
                    let (want_codes, want_scales) = reference_quantize(&x, &l, r);
                    for (path, k) in &kernels {
                        let codes = lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words()).unwrap();
                        let scales = lowbit::GpuBuffer::<f32>::zeros(g, "s", l.n_groups as usize).unwrap();
                        common::submit_with(|e| {
                            k.encode_with_tensor_amax(g, e, &xb, &l, r, &amax, &codes, &scales).unwrap()
                        });
                        let what = format!("{path} {rows}x{cols} {f} {gr} {r:?}");
                        assert_u32_eq(&format!("codes {what}"), &codes.read(g).unwrap(), &want_codes);
                        assert_f32_bits_eq(&format!("scales {what}"), &scales.read(g).unwrap(), &want_scales);
                    }
                }
            }
        }
    }
}

/// `absmax` gives the reference's maxima on either reduce path (workgroup trees, or a thread per
/// span on CPU adapters: vec4 loads where rows split into vec4s), in both orientations, with and
/// without the tensor slot (NVFP4), for groups of every kind.
#[test]
fn absmax_paths_match_the_reference() {
    use lowbit::kernels::absmax::Absmax;
    let g = gpu();
    let kernels =
        [ReducePath::Tree, ReducePath::PerThread].map(|path| (path, Absmax::with_reduce_path(g, path).unwrap()));
    let mut cases = 0;
    // (80, 36) and (4, 600): rows that split into vec4s; (3, 1000) spans several THREAD_SPANs.
    for (si, &(rows, cols)) in SHAPES.iter().chain(&[(4, 600), (9, 64)]).enumerate() {
        let x = data(rows * cols, 90 + si as u32, true);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        for (f, gr) in [(Format::Int8, Granularity::PerTensor), (Format::Int8, Granularity::PerRow)]
            .into_iter()
            .chain([8, 16, 32, 2048].map(|b| (Format::Int4, Granularity::PerBlock(b))))
            .chain([(Format::Nvfp4, Granularity::PerBlock(16)), (Format::Mxfp8, Granularity::PerBlock(32))])
        {
            for transposed in [false, true] {
                // Transposed, the logical tensor is [cols, rows] read from x as stored.
                let (lr, lc) = if transposed { (cols, rows) } else { (rows, cols) };
                let Ok(l) = QuantLayout::new(lr, lc, f, gr) else { continue };
                let want = reference::absmax::absmax(&x, &l, transposed);
                for (path, k) in &kernels {
                    let amax = lowbit::GpuBuffer::<u32>::zeros(g, "amax", l.amax_len()).unwrap();
                    common::submit_with(|e| k.encode(g, e, &xb, &l, transposed, &amax).unwrap());
                    let what = format!("{path:?} {lr}x{lc} {f} {gr} transposed {transposed}");
                    assert_u32_eq(&what, &amax.read(g).unwrap(), &want);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases >= 2 * 2 * 8 * SHAPES.len(), "{cases}");
}

/// `quantize` (the chain's second launch) gives the reference's scales and codes from absmax's
/// maxima on either layout (a thread per word, or per run of words on CPU adapters: vec4 loads
/// where rows split into vec4s), for every format and grouping, both roundings, one and three
/// stacked samples; it refuses several samples with nearest rounding and short outputs, recording
/// nothing.
#[test]
fn quantize_paths_match_the_reference() {
    use lowbit::kernels::quantize::Quantize;
    let g = gpu();
    let mut cases = 0;
    for f in Format::ALL {
        let kernels = [ReducePath::Tree, ReducePath::PerThread]
            .map(|path| (path, Quantize::with_reduce_path(g, f, path).unwrap()));
        for (si, &(rows, cols)) in SHAPES.iter().chain(&[(4, 600)]).enumerate() {
            let x = data(rows * cols, 60 + si as u32, true);
            let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
            for &gr in GRANULARITIES {
                let Ok(l) = QuantLayout::new(rows, cols, f, gr) else { continue };
                let amax = reference::absmax::absmax(&x, &l, false);
                let amaxb = lowbit::GpuBuffer::from_slice(g, "amax", &amax).unwrap();
                for (r, samples) in
                    roundings().into_iter().map(|r| (r, 1)).chain([(Rounding::Stochastic { seed: 3, stream: 5 }, 3)])
                {
                    let (want, want_scales) = reference::quantize::from_maxima(&x, &amax, &l, r, samples);
                    for (path, k) in &kernels {
                        let n = samples as usize;
                        let codes = lowbit::GpuBuffer::<u32>::zeros(g, "c", n * l.words()).unwrap();
                        let scales = lowbit::GpuBuffer::<f32>::zeros(g, "s", n * l.n_groups as usize).unwrap();
                        common::submit_with(|e| k.encode(g, e, &xb, &amaxb, &l, r, samples, &codes, &scales).unwrap());
                        let what = format!("{path:?} {rows}x{cols} {f} {gr} {r:?} x{samples}");
                        assert_u32_eq(&what, &codes.read(g).unwrap(), &want);
                        assert_f32_bits_eq(&format!("scales {what}"), &scales.read(g).unwrap(), &want_scales);
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases > 3 * 2 * SHAPES.len() * Format::ALL.len(), "{cases}");
    let l = QuantLayout::new(4, 16, Format::Int8, Granularity::PerRow).unwrap();
    let k = Quantize::new(g, Format::Int8).unwrap();
    let xb = lowbit::GpuBuffer::<f32>::zeros(g, "x", 64).unwrap();
    let amax = lowbit::GpuBuffer::<u32>::zeros(g, "amax", 4).unwrap();
    let codes = lowbit::GpuBuffer::<u32>::zeros(g, "c", 2 * l.words()).unwrap();
    let scales = lowbit::GpuBuffer::<f32>::zeros(g, "s", 8).unwrap();
    let mut rec = lowbit::Recorder::new(g, "refusals");
    let err = k.encode(g, &mut rec, &xb, &amax, &l, Rounding::Nearest, 2, &codes, &scales).unwrap_err();
    assert!(err.to_string().contains("stochastic"), "{err}");
    let sr = Rounding::Stochastic { seed: 1, stream: 0 };
    let short = lowbit::GpuBuffer::<f32>::zeros(g, "s", 4).unwrap();
    let err = k.encode(g, &mut rec, &xb, &amax, &l, sr, 2, &codes, &short).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert_eq!(rec.dispatches(), 0, "a refusal records nothing");
}

/// The masked quantizers (ReLU's backward read inside the quantizer: dY counts as 0 where
/// Y is not above 0) give the bits of quantizing what `relu_backward` writes: one pass over x,
/// and over xᵀ with its row sums, on both reduce paths (the vec4 and four-rows-per-thread entries
/// included); the quantizer refuses a layout its one-pass kernel does not take.
#[test]
fn masked_quantizers_equal_quantizing_relu_backward() {
    let g = gpu();
    let relu = lowbit::kernels::relu_backward::ReluBackward::new(g).unwrap();
    let mut cases = 0;
    let kernels: Vec<_> = Format::ALL
        .into_iter()
        .filter(|f| !f.needs_tensor_amax())
        .flat_map(|f| {
            [ReducePath::Tree, ReducePath::PerThread].map(|path| {
                let k = QuantizeFused::with_reduce_path(g, f, path).unwrap();
                (f, path, k, QuantizeTransposeFused::with_reduce_path(g, f, path).unwrap())
            })
        })
        .collect();
    // Rows of vec4s (80x36); a thread per group (130x7: blocks); four rows of xᵀ per thread
    // (33x1024).
    for (si, &(rows, cols)) in [(80usize, 36usize), (130, 7), (33, 1024)].iter().enumerate() {
        let n = rows * cols;
        let dy = data(n, 70 + si as u32, true);
        // Y: positive, ±0, negative, NaN and infinite values where dY's are not (relu_backward
        // keeps dY only where Y > 0).
        let y: Vec<f32> = data(n, 80 + si as u32, false)
            .into_iter()
            .enumerate()
            .map(|(i, v)| match i % 11 {
                0 => 0.0,
                1 => -0.0,
                2 => f32::NAN,
                3 => f32::INFINITY,
                4 => f32::NEG_INFINITY,
                _ => v,
            })
            .collect();
        let (dyb, yb) =
            (lowbit::GpuBuffer::from_slice(g, "dy", &dy).unwrap(), lowbit::GpuBuffer::from_slice(g, "y", &y).unwrap());
        let gb = lowbit::GpuBuffer::<f32>::zeros(g, "g", n).unwrap();
        common::submit_with(|e| relu.encode(g, e, &yb, &dyb, &gb).unwrap());
        for (f, path, k, kt) in &kernels {
            let (f, path) = (*f, *path);
            let grans = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![Granularity::PerRow, Granularity::PerBlock(32)],
            };
            {
                for &gr in &grans {
                    for r in roundings() {
                        let what = format!("{path:?} {rows}x{cols} {f} {gr} {r:?}");
                        if let Ok(l) = QuantLayout::new(rows, cols, f, gr) {
                            let out = |masked: bool| {
                                let c = lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words()).unwrap();
                                let s = lowbit::GpuBuffer::<f32>::zeros(g, "s", l.n_groups as usize).unwrap();
                                common::submit_with(|e| match masked {
                                    true => k.encode_masked(g, e, &dyb, &yb, &l, r, &c, &s).unwrap(),
                                    false => k.encode(g, e, &gb, &l, r, &c, &s).unwrap(),
                                });
                                (c.read(g).unwrap(), s.read(g).unwrap())
                            };
                            let ((c1, s1), (c0, s0)) = (out(true), out(false));
                            assert_u32_eq(&format!("masked codes {what}"), &c1, &c0);
                            assert_f32_bits_eq(&format!("masked scales {what}"), &s1, &s0);
                            cases += 1;
                        }
                        // xᵀ: L is [cols, rows], with the sums.
                        let Ok(lt) = QuantLayout::new(cols, rows, f, gr) else { continue };
                        let sums = true;
                        let out = |masked: bool| {
                            let c = lowbit::GpuBuffer::<u32>::zeros(g, "c", lt.words()).unwrap();
                            let s = lowbit::GpuBuffer::<f32>::zeros(g, "s", lt.n_groups as usize).unwrap();
                            let sm = lowbit::GpuBuffer::<f32>::zeros(g, "sums", cols).unwrap();
                            let sm_opt = sums.then_some(&sm);
                            common::submit_with(|e| match masked {
                                true => kt.encode_with_sums_masked(g, e, &dyb, &yb, &lt, r, &c, &s, sm_opt).unwrap(),
                                false => kt.encode_with_sums(g, e, &gb, &lt, r, &c, &s, sm_opt).unwrap(),
                            });
                            (c.read(g).unwrap(), s.read(g).unwrap(), sm.read(g).unwrap())
                        };
                        let ((c1, s1, m1), (c0, s0, m0)) = (out(true), out(false));
                        assert_u32_eq(&format!("masked transposed codes {what}"), &c1, &c0);
                        assert_f32_bits_eq(&format!("masked transposed scales {what}"), &s1, &s0);
                        assert_f32_bits_eq(&format!("masked transposed sums {what}"), &m1, &m0);
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases > 50, "{cases}");
    // The quantizer's entry point: the same bits through quantize_masked; a layout the one-pass
    // kernel does not take (few long rows: the two-pass chain) is refused.
    let (rows, cols) = (80, 36);
    let dy = lowbit::GpuTensor::from_slice(g, &data(rows * cols, 1, true), &[rows, cols]).unwrap();
    let y = lowbit::GpuBuffer::from_slice(g, "y", &data(rows * cols, 2, true)).unwrap();
    let gb = lowbit::GpuBuffer::<f32>::zeros(g, "g", rows * cols).unwrap();
    common::submit_with(|e| relu.encode(g, e, &y, dy.buffer(), &gb).unwrap());
    let gt = GpuTensor::from_buffer(gb, &[rows, cols]).unwrap();
    let scheme = QuantScheme { format: Format::Int8, granularity: Granularity::PerRow, rounding: roundings()[1] };
    let (c1, s1, _) = run(|e| qz().quantize_masked(g, e, &dy, &y, scheme));
    let (c0, s0, _) = run(|e| qz().quantize(g, e, &gt, scheme));
    assert_u32_eq("quantize_masked codes", &c1, &c0);
    assert_f32_bits_eq("quantize_masked scales", &s1, &s0);
    // NVFP4: the tensor maximum reduced from the masked values, then the masked one-pass kernel
    // (one sample and SMP's two).
    let nv = QuantScheme { format: Format::Nvfp4, granularity: Granularity::PerBlock(16), rounding: roundings()[1] };
    let (c1, s1, _) = run(|e| qz().quantize_masked(g, e, &dy, &y, nv));
    let (c0, s0, _) = run(|e| qz().quantize(g, e, &gt, nv));
    assert_u32_eq("NVFP4 quantize_masked codes", &c1, &c0);
    assert_f32_bits_eq("NVFP4 quantize_masked scales", &s1, &s0);
    // Given the masked tensor's maximum (the rotation's input maximum in training): one launch.
    let a = lowbit::GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
    common::submit_with(|e| {
        let t = qz().tensor_amax(g, e, &gt).unwrap();
        e.copy_buffer_to_buffer(t.buffer(), 0, a.buffer(), 0, 4);
    });
    let (c1, s1, _) = run(|e| qz().quantize_masked_with_amax(g, e, &dy, &y, nv, &a));
    assert_u32_eq("NVFP4 quantize_masked_with_amax codes", &c1, &c0);
    assert_f32_bits_eq("NVFP4 quantize_masked_with_amax scales", &s1, &s0);
    let err = run_err(|e| qz().quantize_masked_with_amax(g, e, &dy, &y, scheme, &a));
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("no tensor-wide scale")), "{err}");
    let (c1, s1, _) = run(|e| qz().quantize_samples_masked(g, e, &dy, &y, nv, 2));
    let (c0, s0, _) = run(|e| qz().quantize_samples(g, e, &gt, nv, 2));
    assert_u32_eq("NVFP4 quantize_samples_masked codes", &c1, &c0);
    assert_f32_bits_eq("NVFP4 quantize_samples_masked scales", &s1, &s0);
    let long = lowbit::GpuTensor::from_slice(g, &data(2 * 40000, 3, false), &[2, 40000]).unwrap();
    let long_mask = lowbit::GpuBuffer::from_slice(g, "m", &data(2 * 40000, 4, false)).unwrap();
    let err = run_err(|e| qz().quantize_masked(g, e, &long, &long_mask, scheme));
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("apply the mask first")), "{err}");
}

/// absmax reading x masked by Y (ReLU's backward inside the reduction) gives the maxima of what
/// `relu_backward` writes: every entry of both reduce paths (per row, per block, per tensor with
/// and without the tensor slot, transposed; vec4 and flat readers included).
#[test]
fn masked_absmax_is_the_absmax_of_relu_backward() {
    use lowbit::kernels::absmax::Absmax;
    let g = gpu();
    let mut cases = 0;
    for (si, &(rows, cols)) in [(80usize, 36usize), (130, 7), (33, 1024), (3, 5000)].iter().enumerate() {
        let n = rows * cols;
        let dy = data(n, 150 + si as u32, true);
        let y: Vec<f32> = data(n, 160 + si as u32, true)
            .into_iter()
            .enumerate()
            .map(|(i, v)| if i % 9 == 4 { -0.0 } else { v })
            .collect();
        let relu = reference::relu_backward::relu_backward(&common::as_adapter_sees(&y), &dy);
        let buf = |v: &[f32]| lowbit::GpuBuffer::from_slice(g, "x", v).unwrap();
        let (dyb, yb) = (buf(&dy), buf(&y));
        for path in [ReducePath::Tree, ReducePath::PerThread] {
            let k = Absmax::with_reduce_path(g, path).unwrap();
            for (f, gr) in [
                (Format::Int8, Granularity::PerRow),
                (Format::Int8, Granularity::PerBlock(32)),
                (Format::Int8, Granularity::PerTensor),
                (Format::Nvfp4, Granularity::PerBlock(16)),
            ] {
                for transposed in [false, true] {
                    // Transposed: the logical tensor is [cols, rows], stored as x.
                    let (r, c) = if transposed { (cols, rows) } else { (rows, cols) };
                    let Ok(l) = QuantLayout::new(r, c, f, gr) else { continue };
                    let amax = lowbit::GpuBuffer::<u32>::zeros(g, "amax", l.amax_len()).unwrap();
                    common::submit_with(|e| k.encode_masked(g, e, &dyb, &yb, &l, transposed, &amax).unwrap());
                    let want = reference::absmax::absmax(&common::as_adapter_sees(&relu), &l, transposed);
                    let what = format!("{path:?} {r}x{c} {f} {gr} transposed {transposed}");
                    assert_u32_eq(&format!("masked absmax {what}"), &amax.read(g).unwrap(), &want);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases >= 50, "{cases}");
}

/// SMP's samples in one launch: sample j of `encode_samples` is the reference's quantization with
/// stream + j — of x, or with a mask of what `relu_backward` writes — in both orientations (xᵀ
/// with its row sums, written once), on both reduce paths (vec4 and four-rows-per-thread entries
/// included), NVFP4 with its tensor maximum; the quantizer takes one launch for a one-pass layout,
/// stacks the chain's samples elsewhere (the same bits), and refuses nearest rounding.
#[test]
fn smp_samples_in_one_launch_are_the_reference_per_stream() {
    use lowbit::reference::{quantize_fused::quantize_fused, quantize_transpose_fused as qtf};
    const K: u32 = 3;
    let g = gpu();
    let (seed, stream) = (99u32, 0xffff_fffeu32); // streams wrap: 0xfffffffe, 0xffffffff, 0
    let at = |j: u32| Rounding::Stochastic { seed, stream: stream.wrapping_add(j) };
    let formats = [Format::Int8, Format::Int4, Format::Log4, Format::Int3, Format::Nvfp4];
    let kernels: Vec<_> = formats
        .into_iter()
        .flat_map(|f| {
            [ReducePath::Tree, ReducePath::PerThread].map(|path| {
                let k = QuantizeFused::with_reduce_path(g, f, path).unwrap();
                (f, path, k, QuantizeTransposeFused::with_reduce_path(g, f, path).unwrap())
            })
        })
        .collect();
    let mut cases = 0;
    // (65, 1028): xᵀ in two quads of rows per thread on CPU adapters.
    for (si, &(rows, cols)) in [(80usize, 36usize), (130, 7), (33, 1024), (65, 1028)].iter().enumerate() {
        let n = rows * cols;
        let (dy, y) = (data(n, 120 + si as u32, true), data(n, 130 + si as u32, false));
        let relu = reference::relu_backward::relu_backward(&y, &dy);
        let buf = |v: &[f32]| lowbit::GpuBuffer::from_slice(g, "x", v).unwrap();
        let (dyb, yb) = (buf(&dy), buf(&y));
        for (f, path, k, kt) in &kernels {
            let (f, path) = (*f, *path);
            let grans = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![Granularity::PerRow, Granularity::PerBlock(32)],
            };
            // NVFP4: its block scales read the tensor's maximum (of x as the kernel reads it).
            let whole = QuantLayout::new(rows, cols, Format::Fp4E2M1, Granularity::PerTensor).unwrap();
            let amax_of = |v: &[f32]| {
                let a = reference::absmax::absmax(v, &whole, false);
                lowbit::GpuBuffer::from_slice(g, "amax", &a[..1]).unwrap()
            };
            for &gr in &grans {
                for masked in [false, true] {
                    if masked && f.needs_tensor_amax() {
                        continue;
                    }
                    let src = if masked { &relu } else { &dy };
                    let mask = masked.then_some(&yb);
                    let t = f.needs_tensor_amax().then(|| amax_of(src));
                    let what = format!("{path:?} {rows}x{cols} {f} {gr} masked {masked}");
                    if let Ok(l) = QuantLayout::new(rows, cols, f, gr) {
                        let c = lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words() * K as usize).unwrap();
                        let s = lowbit::GpuBuffer::<f32>::zeros(g, "s", l.n_groups as usize * K as usize).unwrap();
                        common::submit_with(|e| {
                            k.encode_samples(g, e, &dyb, mask, t.as_ref(), &l, at(0), K, &c, &s).unwrap()
                        });
                        let (c, s) = (c.read(g).unwrap(), s.read(g).unwrap());
                        let (w, ng) = (l.words(), l.n_groups as usize);
                        for j in 0..K as usize {
                            let (wc, ws) = quantize_fused(src, &l, at(j as u32));
                            assert_u32_eq(&format!("codes of sample {j} {what}"), &c[j * w..(j + 1) * w], &wc);
                            assert_f32_bits_eq(&format!("scales of sample {j} {what}"), &s[j * ng..(j + 1) * ng], &ws);
                        }
                        cases += 1;
                    }
                    // xᵀ: L is [cols, rows], with the sums (NVFP4's too: the kernel takes both).
                    let Ok(lt) = QuantLayout::new(cols, rows, f, gr) else { continue };
                    let sums = true;
                    let c = lowbit::GpuBuffer::<u32>::zeros(g, "c", lt.words() * K as usize).unwrap();
                    let s = lowbit::GpuBuffer::<f32>::zeros(g, "s", lt.n_groups as usize * K as usize).unwrap();
                    let sm = lowbit::GpuBuffer::<f32>::zeros(g, "sums", cols).unwrap();
                    let sm_opt = sums.then_some(&sm);
                    common::submit_with(|e| {
                        kt.encode_samples(g, e, &dyb, mask, t.as_ref(), &lt, at(0), K, &c, &s, sm_opt).unwrap()
                    });
                    let (c, s) = (c.read(g).unwrap(), s.read(g).unwrap());
                    let (w, ng) = (lt.words(), lt.n_groups as usize);
                    for j in 0..K as usize {
                        let (wc, ws) = qtf::quantize_transpose_fused(src, &lt, at(j as u32));
                        let what = format!("transposed sample {j} {what}");
                        assert_u32_eq(&format!("codes {what}"), &c[j * w..(j + 1) * w], &wc);
                        assert_f32_bits_eq(&format!("scales {what}"), &s[j * ng..(j + 1) * ng], &ws);
                        if sums && j == 0 {
                            // (Subnormals as the adapter's arithmetic sees them: flushed on NVIDIA.)
                            let seen = common::as_adapter_sees(src);
                            let (_, _, wsum) = qtf::quantize_transpose_fused_sums(&seen, &lt, at(0));
                            let wsum = common::as_adapter_sees(&wsum);
                            assert_f32_bits_eq(&format!("sums {what}"), &sm.read(g).unwrap(), &wsum);
                        }
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 100, "{cases}");

    // The quantizer: one launch where the one-pass kernel serves the layout, no copies; the
    // chain's samples stacked elsewhere (few long rows); the same bits as quantizing per stream.
    // The transposed chain (per-tensor scales) takes two launches for any number of samples.
    let scheme = |r| QuantScheme { format: Format::Log4, granularity: Granularity::PerRow, rounding: r };
    for (rows, cols, one_launch) in [(80usize, 36usize, true), (2, 40000, false)] {
        let x = data(rows * cols, 140, true);
        let xt = GpuTensor::from_slice(g, &x, &[rows, cols]).unwrap();
        let mut rec = lowbit::Recorder::new(g, "smp");
        let q = qz().quantize_samples(g, &mut rec, &xt, scheme(at(0)), K).unwrap();
        let (dispatches, passes) = (rec.dispatches(), rec.passes());
        g.queue.submit([rec.finish()]);
        assert_eq!(q.samples, K);
        if one_launch {
            assert_eq!((dispatches, passes), (1, 1), "{rows}x{cols}: one launch writes every sample");
        }
        let (c, s) = (q.codes.read(g).unwrap(), q.scales.read(g).unwrap());
        let l = q.layout;
        let (w, ng) = (l.words(), l.n_groups as usize);
        for j in 0..K as usize {
            let (wc, ws) = reference_quantize(&x, &l, at(j as u32));
            assert_u32_eq(&format!("quantize_samples {rows}x{cols} codes {j}"), &c[j * w..(j + 1) * w], &wc);
            assert_f32_bits_eq(&format!("quantize_samples {rows}x{cols} scales {j}"), &s[j * ng..(j + 1) * ng], &ws);
        }
        // xᵀ, with the sums where the one launch takes it (per-tensor scales: the chain per sample).
        let gran = if one_launch { Granularity::PerRow } else { Granularity::PerTensor };
        let st = QuantScheme { granularity: gran, ..scheme(at(0)) };
        let mut rec = lowbit::Recorder::new(g, "smp t");
        let q = qz().quantize_transposed_samples(g, &mut rec, &xt, st, K).unwrap();
        let want = if one_launch { 1 } else { 2 };
        assert_eq!((rec.dispatches(), rec.passes()), (want, 1), "{rows}x{cols}ᵀ {gran}: launches");
        g.queue.submit([rec.finish()]);
        let (c, s) = (q.codes.read(g).unwrap(), q.scales.read(g).unwrap());
        let l = q.layout;
        let (w, ng) = (l.words(), l.n_groups as usize);
        for j in 0..K as usize {
            let (wc, ws) = qtf::quantize_transpose_fused(&x, &l, at(j as u32));
            let what = format!("quantize_transposed_samples {rows}x{cols} {gran} sample {j}");
            assert_u32_eq(&format!("{what} codes"), &c[j * w..(j + 1) * w], &wc);
            assert_f32_bits_eq(&format!("{what} scales"), &s[j * ng..(j + 1) * ng], &ws);
        }
    }
    let x = GpuTensor::from_slice(g, &data(80 * 36, 141, false), &[80, 36]).unwrap();
    let err = run_err(|e| qz().quantize_samples(g, e, &x, scheme(Rounding::Nearest), K));
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("stochastic")), "{err}");
    let err = run_err(|e| qz().quantize_samples(g, e, &x, scheme(at(0)), 0));
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("at least 1")), "{err}");
    let long = GpuTensor::from_slice(g, &data(2 * 40000, 142, false), &[2, 40000]).unwrap();
    let mask = lowbit::GpuBuffer::from_slice(g, "m", &data(2 * 40000, 143, false)).unwrap();
    let err = run_err(|e| qz().quantize_samples_masked(g, e, &long, &mask, scheme(at(0)), K));
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("apply the mask first")), "{err}");
    // The kernels refuse nearest rounding for stacked samples too.
    let (_, _, k, kt) = &kernels[0];
    let l = QuantLayout::new(80, 36, Format::Int8, Granularity::PerRow).unwrap();
    let lt = QuantLayout::new(36, 80, Format::Int8, Granularity::PerRow).unwrap();
    let c = lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words() * 2).unwrap();
    let s = lowbit::GpuBuffer::<f32>::zeros(g, "s", 80 * 2).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let near = Rounding::Nearest;
    let err = k.encode_samples(g, &mut enc, x.buffer(), None, None, &l, near, 2, &c, &s).unwrap_err();
    assert!(err.to_string().contains("stochastic"), "{err}");
    let st = lowbit::GpuBuffer::<f32>::zeros(g, "s", 36 * 2).unwrap();
    let err = kt.encode_samples(g, &mut enc, x.buffer(), None, None, &lt, near, 2, &c, &st, None).unwrap_err();
    assert!(err.to_string().contains("stochastic"), "{err}");
}

/// The transposed chain's second launch alone: `quantize_transpose` from absmax's maxima writes
/// the scales (`group_scale`'s rule, NVFP4's from the tensor slot) and the codes of every
/// stacked sample, bit for bit the reference, for every format at per tensor, per row and per
/// block (the block-scaled formats their own block), ragged words, one row and rows past one
/// workgroup; it refuses several samples with nearest rounding, zero samples and short outputs.
#[test]
fn quantize_transpose_turns_the_maxima_into_scales_and_every_sample() {
    use lowbit::kernels::absmax::Absmax;
    use lowbit::kernels::quantize_transpose::QuantizeTranspose;
    let g = gpu();
    let absmax = Absmax::new(g).unwrap();
    let (mut cases, mut rows4) = (0, 0);
    // On a CPU adapter entry main_rows4 takes per-row and per-tensor scales where L's rows come in
    // fours: 300 x 33, and 8 x 5000, whose rows run over several 64-word pieces in every format;
    // 1028 x 300 takes two quads of rows a thread (4 bits and fewer) or four (wider codes), and
    // 516 x 2100 (three formats) eight with int8 and FP8 E5M2, four with log4; their last threads
    // take one quad.
    for &(rows, cols) in &[(1usize, 40usize), (37, 300), (300, 33), (8, 5000), (1028, 300), (516, 2100)] {
        // x is [cols, rows]: L = xᵀ is [rows, cols].
        let x = data(rows * cols, 150 + rows as u32, true);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        for f in Format::ALL {
            if cols == 2100 && ![Format::Int8, Format::Fp8E5M2, Format::Log4].contains(&f) {
                continue;
            }
            let kernel = QuantizeTranspose::new(g, f).unwrap();
            let grans = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![Granularity::PerTensor, Granularity::PerRow, Granularity::PerBlock(32)],
            };
            for gran in grans {
                let l = QuantLayout::new(rows, cols, f, gran).unwrap();
                let takes =
                    g.cpu_layouts() && matches!(gran, Granularity::PerRow | Granularity::PerTensor) && rows % 4 == 0;
                assert_eq!(kernel.takes_rows4(&l), takes, "{f} {gran} {rows}x{cols}: entry main_rows4");
                rows4 += takes as usize;
                let amax_host = reference::absmax::absmax(&x, &l, true);
                // NVFP4's tensor slot: the maximum over the whole tensor, as absmax leaves it.
                let amax = lowbit::GpuBuffer::<u32>::zeros(g, "amax", l.amax_len()).unwrap();
                common::submit_with(|e| absmax.encode(g, e, &xb, &l, true, &amax).unwrap());
                assert_u32_eq(&format!("absmax {f} {gran} {rows}x{cols}"), &amax.read(g).unwrap(), &amax_host);
                for (r, samples) in [
                    (Rounding::Nearest, 1),
                    (Rounding::Stochastic { seed: 7, stream: 3 }, 1),
                    (Rounding::Stochastic { seed: 9, stream: 1 }, 3),
                ] {
                    let codes = lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words() * samples).unwrap();
                    let scales = lowbit::GpuBuffer::<f32>::zeros(g, "s", l.n_groups as usize * samples).unwrap();
                    common::submit_with(|e| {
                        kernel.encode(g, e, &xb, &amax, &l, r, samples as u32, &codes, &scales).unwrap()
                    });
                    let (wc, ws) = reference::quantize_transpose::from_maxima(&x, &amax_host, &l, r, samples as u32);
                    let what = format!("{f} {gran} {rows}x{cols} {r:?} x{samples}");
                    assert_u32_eq(&format!("codes {what}"), &codes.read(g).unwrap(), &wc);
                    assert_f32_bits_eq(&format!("scales {what}"), &scales.read(g).unwrap(), &ws);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 100, "{cases}");
    assert!(!g.cpu_layouts() || rows4 >= 20, "{rows4} layouts on entry main_rows4");
    // Refusals.
    let l = QuantLayout::new(8, 16, Format::Int8, Granularity::PerRow).unwrap();
    let kernel = QuantizeTranspose::new(g, Format::Int8).unwrap();
    let xb = lowbit::GpuBuffer::<f32>::zeros(g, "x", 128).unwrap();
    let amax = lowbit::GpuBuffer::<u32>::zeros(g, "amax", l.amax_len()).unwrap();
    let codes = lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words() * 2).unwrap();
    let scales = lowbit::GpuBuffer::<f32>::zeros(g, "s", 16).unwrap();
    let sr = Rounding::Stochastic { seed: 1, stream: 0 };
    let mut rec = lowbit::Recorder::new(g, "refusals");
    let err = kernel.encode(g, &mut rec, &xb, &amax, &l, Rounding::Nearest, 2, &codes, &scales).unwrap_err();
    assert!(err.to_string().contains("stochastic"), "{err}");
    let err = kernel.encode(g, &mut rec, &xb, &amax, &l, sr, 0, &codes, &scales).unwrap_err();
    assert!(err.to_string().contains("0 samples"), "{err}");
    let short = lowbit::GpuBuffer::<f32>::zeros(g, "s", 8).unwrap();
    let err = kernel.encode(g, &mut rec, &xb, &amax, &l, sr, 2, &codes, &short).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert_eq!(rec.dispatches(), 0, "a refusal records nothing");
}

/// Batched transposes in one launch (attention's operands stored the other way): the codes and
/// scales of transposing every matrix of the stack and quantizing the result, on both reduce paths
/// (the four-rows-per-thread entry where the matrices' rows come in fours), per row and per block,
/// NVFP4 with its tensor maximum; rows that are not whole matrices are refused.
#[test]
fn batched_transposes_quantize_in_one_launch() {
    let g = gpu();
    let mut cases = 0;
    let formats = [Format::Int8, Format::Log4, Format::Int3, Format::Mxfp8, Format::Nvfp4];
    // (batches, k, rows per matrix): L is [batches · rows, k].
    // (2, 70, 1028): four quads of L's rows per thread on CPU adapters, one thread's quads in both
    // matrices.
    for (si, &(batches, k, rows)) in
        [(4usize, 24usize, 64usize), (3, 40, 7), (2, 16, 100), (1, 33, 32), (2, 70, 1028)].iter().enumerate()
    {
        let x = data(batches * k * rows, 150 + si as u32, true);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        // The stack of transposes, on the host.
        let mut xt = vec![0f32; x.len()];
        for b in 0..batches {
            for c in 0..k {
                for r in 0..rows {
                    xt[(b * rows + r) * k + c] = x[(b * k + c) * rows + r];
                }
            }
        }
        let whole = QuantLayout::new(batches * k, rows, Format::Fp4E2M1, Granularity::PerTensor).unwrap();
        let amax =
            lowbit::GpuBuffer::from_slice(g, "amax", &reference::absmax::absmax(&x, &whole, false)[..1]).unwrap();
        for f in formats {
            let grans = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![Granularity::PerRow, Granularity::PerBlock(16)],
            };
            for path in [ReducePath::Tree, ReducePath::PerThread] {
                let kt = QuantizeTransposeFused::with_reduce_path(g, f, path).unwrap();
                for &gr in &grans {
                    let Ok(l) = QuantLayout::new(batches * rows, k, f, gr) else { continue };
                    for r in roundings() {
                        let (want_c, want_s) = reference_quantize(&xt, &l, r);
                        let c = lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words()).unwrap();
                        let s = lowbit::GpuBuffer::<f32>::zeros(g, "s", l.n_groups as usize).unwrap();
                        let t = f.needs_tensor_amax().then_some(&amax);
                        common::submit_with(|e| kt.encode_batched(g, e, &xb, &l, rows as u32, r, t, &c, &s).unwrap());
                        let what = format!("{path:?} {batches}x[{k}, {rows}] {f} {gr} {r:?}");
                        assert_u32_eq(&format!("batched codes {what}"), &c.read(g).unwrap(), &want_c);
                        assert_f32_bits_eq(&format!("batched scales {what}"), &s.read(g).unwrap(), &want_s);
                        cases += 1;
                    }
                }
            }
        }
        // Through the quantizer (the adapter's path).
        let scheme = QuantScheme { format: Format::Int8, granularity: Granularity::PerRow, rounding: roundings()[1] };
        let (c, s, q) = run(|e| qz().quantize_batched_transposed(g, e, &xb, (batches, k, rows), scheme));
        assert_eq!((q.layout.rows as usize, q.layout.cols as usize), (batches * rows, k));
        let (want_c, want_s) = reference_quantize(&xt, &q.layout, scheme.rounding);
        assert_u32_eq("quantize_batched_transposed codes", &c, &want_c);
        assert_f32_bits_eq("quantize_batched_transposed scales", &s, &want_s);
    }
    assert!(cases > 60, "{cases}");
    let kt = QuantizeTransposeFused::new(g, Format::Int8).unwrap();
    let l = QuantLayout::new(10, 8, Format::Int8, Granularity::PerRow).unwrap();
    let (xb, c, s) = (
        lowbit::GpuBuffer::<f32>::zeros(g, "x", 80).unwrap(),
        lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words()).unwrap(),
        lowbit::GpuBuffer::<f32>::zeros(g, "s", 10).unwrap(),
    );
    let mut enc = g.device.create_command_encoder(&Default::default());
    let err = kt.encode_batched(g, &mut enc, &xb, &l, 4, Rounding::Nearest, None, &c, &s).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let x = lowbit::GpuBuffer::<f32>::zeros(g, "x", 79).unwrap();
    let err = run_err(|e| qz().quantize_batched_transposed(g, e, &x, (2, 8, 5), QuantScheme::per_row(Format::Int8)));
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn the_fused_unfold_and_quantizer_is_im2col_then_the_one_pass_quantizer() {
    use lowbit::kernels::im2col::{ConvGeom, Im2col};
    use lowbit::kernels::im2col_quantize::Im2colQuantize;
    let g = gpu();
    let im2col = Im2col::new(g).unwrap();
    let geoms = [
        // Rows of 25 values (no vec4 packing), padding on every side.
        ConvGeom { batch: 2, h: 9, w: 7, c: 1, kh: 5, kw: 5, stride: 1, pad: 2 },
        // Rows of 36 values (vec4 packing for the formats with codes per word in fours).
        ConvGeom { batch: 2, h: 6, w: 5, c: 4, kh: 3, kw: 3, stride: 2, pad: 1 },
        // Rows of 15 values, a 1×3 kernel past the stride, no padding.
        ConvGeom { batch: 1, h: 7, w: 9, c: 5, kh: 1, kw: 3, stride: 3, pad: 0 },
        // Rows of 27 values (CIFAR's first convolution), and of 50: past what a CPU adapter's
        // codes entry for short rows holds (the others but the 36 fit it).
        ConvGeom { batch: 2, h: 5, w: 4, c: 3, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvGeom { batch: 1, h: 6, w: 5, c: 2, kh: 5, kw: 5, stride: 2, pad: 2 },
    ];
    let short: Vec<bool> = geoms.iter().map(|geom| Im2colQuantize::short_rows(g, geom)).collect();
    assert_eq!(short, [true, false, true, true, false].map(|s| s && g.cpu_layouts()));
    let mut cases = 0;
    for (gi, geom) in geoms.iter().enumerate() {
        let mut x = data(geom.input_len(), 50 + gi as u32, true);
        // An all-zero image row somewhere: rows of zeros quantize to zero codes.
        x[..geom.w * geom.c].iter_mut().for_each(|v| *v = 0.0);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        for f in Format::ALL {
            let Ok(l) = QuantLayout::new(geom.rows(), geom.kdim(), f, Granularity::PerRow) else {
                continue;
            };
            if !Im2colQuantize::supports(&l) {
                assert!(f.needs_tensor_amax(), "{f}");
                continue;
            }
            for r in roundings() {
                let what = format!("{geom:?} {f} {r:?}");
                let scheme = QuantScheme { format: f, granularity: Granularity::PerRow, rounding: r };
                // Outputs start as NaN: every value of cols must be written.
                let cols =
                    lowbit::GpuBuffer::from_slice(g, "cols", &vec![f32::NAN; geom.rows() * geom.kdim()]).unwrap();
                let (codes, scales, _) = run(|e| qz().unfold_quantize(g, e, geom, &xb, Some(&cols), scheme));
                let (want_cols, want_codes, want_scales) = reference::im2col_quantize::im2col_quantize(&x, geom, &l, r);
                assert_f32_bits_eq(&format!("cols {what}"), &cols.read(g).unwrap(), &want_cols);
                assert_u32_eq(&format!("codes {what}"), &codes, &want_codes);
                assert_f32_bits_eq(&format!("scales {what}"), &scales, &want_scales);
                // Without cols (the codes entries): the same codes and scales.
                let (codes1, scales1, _) = run(|e| qz().unfold_quantize(g, e, geom, &xb, None, scheme));
                assert_u32_eq(&format!("codes without cols {what}"), &codes1, &want_codes);
                assert_f32_bits_eq(&format!("scales without cols {what}"), &scales1, &want_scales);
                // And the two launches it fuses, on the device.
                let cols2 = lowbit::GpuBuffer::<f32>::zeros(g, "cols2", geom.rows() * geom.kdim()).unwrap();
                let (codes2, scales2, _) = run(|e| {
                    im2col.encode_unfold(g, e, geom, &xb, &cols2)?;
                    let t = GpuTensor::from_buffer(cols2.clone(), &[geom.rows(), geom.kdim()])?;
                    qz().quantize(g, e, &t, scheme)
                });
                assert_u32_eq(&format!("codes vs im2col + quantize {what}"), &codes, &codes2);
                assert_f32_bits_eq(&format!("scales vs im2col + quantize {what}"), &scales, &scales2);
                cases += 1;
            }
        }
    }
    // Every per-row format but NVFP4's (tensor-wide scale), both roundings, every geometry.
    let per_row = Format::ALL.iter().filter(|f| f.block().is_none()).count();
    assert_eq!(cases, geoms.len() * per_row * 2);
    // The quantized convolution takes it on every adapter, for per-row layouts.
    let geom = geoms[0];
    for (f, gr, takes) in [
        (Format::Int8, Granularity::PerRow, true),
        (Format::Log4, Granularity::PerRow, true),
        (Format::Int8, Granularity::PerBlock(32), false),
        (Format::Mxfp8, Granularity::PerBlock(32), false),
    ] {
        let l = QuantLayout::new(geom.rows(), 32, f, gr).unwrap();
        assert_eq!(Quantizer::unfolds_in_one_pass(g, &l), takes, "{f} {gr}");
    }
    // What it does not take is an error, with nothing recorded.
    let cols = lowbit::GpuBuffer::<f32>::zeros(g, "cols", geom.rows() * geom.kdim()).unwrap();
    let xb = lowbit::GpuBuffer::<f32>::zeros(g, "x", geom.input_len()).unwrap();
    let block =
        QuantScheme { format: Format::Int8, granularity: Granularity::PerBlock(32), rounding: Rounding::Nearest };
    let err = run_err(|e| qz().unfold_quantize(g, e, &geom, &xb, Some(&cols), block));
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("apart")), "{err}");
    let short = lowbit::GpuBuffer::<f32>::zeros(g, "short", geom.input_len() - 1).unwrap();
    let err = run_err(|e| qz().unfold_quantize(g, e, &geom, &short, Some(&cols), QuantScheme::per_row(Format::Int8)));
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn the_team_per_row_unfold_is_the_thread_per_row_unfold() {
    // im2col_quantize on a GPU's layouts (entry main_rows: a team of threads per row, several rows
    // a workgroup) and on a CPU's (a thread per row), in one process on this adapter: cols, codes
    // and scales bit for bit against the reference, with cols and without, for teams of one
    // thread up to rows of more words than a workgroup has threads.
    use lowbit::kernels::im2col::ConvGeom;
    use lowbit::kernels::im2col_quantize::Im2colQuantize;
    let g = gpu();
    let (gc, gg) = (g.with_layouts(lowbit::Layouts::Cpu), g.with_layouts(lowbit::Layouts::Gpu));
    let geoms = [
        // Rows of 9 values: int8 3 words (teams of 4, 64 rows a workgroup, the last one partly
        // filled), int2 one word (teams of one thread).
        ConvGeom { batch: 3, h: 11, w: 10, c: 1, kh: 3, kw: 3, stride: 1, pad: 1 },
        // 3 channels: words that straddle taps; stride 2.
        ConvGeom { batch: 2, h: 9, w: 7, c: 3, kh: 3, kw: 3, stride: 2, pad: 1 },
        // Rows of 1,152 values: int8 288 words, past a workgroup's 256 threads.
        ConvGeom { batch: 1, h: 5, w: 6, c: 128, kh: 3, kw: 3, stride: 1, pad: 1 },
        // A 1×1 projection at stride 2 (vec4s: int4's rows of 2.5 words, the last one short).
        ConvGeom { batch: 3, h: 8, w: 8, c: 20, kh: 1, kw: 1, stride: 2, pad: 0 },
        // 4 channels through vec4s: int4's words of two quads straddle taps, int2's of four cross
        // from one tap row to the next; 16 channels: int8 rows of 36 words (with a fill of 0,
        // teams of 4 threads of 9 words).
        ConvGeom { batch: 2, h: 7, w: 6, c: 4, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvGeom { batch: 2, h: 6, w: 5, c: 16, kh: 3, kw: 3, stride: 2, pad: 1 },
    ];
    assert_eq!([1, 3, 4, 5, 288, 300].map(lowbit::kernels::row_team), [1, 4, 4, 8, 256, 256]);
    // Teams that leave the fewest threads idle, for rows enough to fill a GPU: 3 words, one
    // thread; 36 and 288 (int8, 16 and 128 channels), 9 words a thread; 196 (a row of 784 int8
    // values), 16 threads of 13 words, as 4 threads would take 49 each, past TEAM_WORDS; a power
    // of two, row_team's; 4,097 words, more than a workgroup takes at TEAM_WORDS, 256 threads.
    use lowbit::kernels::{balanced_team, TEAM_FILL, TEAM_WORDS};
    assert_eq!((TEAM_WORDS, TEAM_FILL), (16, 1 << 17));
    let teams = [1, 3, 4, 5, 36, 196, 256, 288, 4097].map(|w| balanced_team(w, TEAM_FILL, TEAM_FILL));
    assert_eq!(teams, [1, 1, 4, 1, 4, 16, 256, 32, 256]);
    // Fewer rows: teams doubled until rows · team reaches TEAM_FILL, at most row_team's.
    let few = [(36, TEAM_FILL / 4), (36, TEAM_FILL / 4 - 1), (36, TEAM_FILL / 16), (36, 1), (196, 128), (5, 9)];
    assert_eq!(few.map(|(w, r)| balanced_team(w, r, TEAM_FILL)), [4, 8, 16, 64, 256, 8]);
    // A fill of 0 keeps the balanced teams for any rows.
    assert_eq!(few.map(|(w, r)| balanced_team(w, r, 0)), [4, 4, 4, 4, 16, 1]);
    // The fill comes from the Gpu (LOWBIT_FILL or Gpu::with_fill), and a kernel's
    // with_team_fill overrides it.
    let gb = gg.with_fill(0);
    // (TEAM_FILL unless LOWBIT_FILL says otherwise.)
    assert_eq!((gg.fill(), gb.fill(), gb.report().fill), (g.fill(), 0, 0));
    let mut cases = 0;
    for (gi, geom) in geoms.iter().enumerate() {
        let mut x = data(geom.input_len(), 190 + gi as u32, true);
        // An all-zero image row: rows of zeros quantize to zero codes.
        x[..geom.w * geom.c].iter_mut().for_each(|v| *v = 0.0);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        for f in Format::ALL {
            let Ok(l) = QuantLayout::new(geom.rows(), geom.kdim(), f, Granularity::PerRow) else {
                // (Block-scaled formats keep their blocks.)
                assert!(f.block().is_some(), "{f}");
                continue;
            };
            if !Im2colQuantize::supports(&l) {
                continue;
            }
            let (kc, kg) = (Im2colQuantize::new(&gc, f).unwrap(), Im2colQuantize::new(&gg, f).unwrap());
            assert!(!kc.uses_teams() && kg.uses_teams(), "{f}");
            // These few rows get row_team's teams; with a fill of 0, the balanced ones (several
            // words a thread).
            let kb = Im2colQuantize::new(&gb, f).unwrap();
            assert_eq!((kg.team_fill(), kb.team_fill(), kb.uses_teams()), (g.fill(), 0, true), "{f}");
            assert_eq!(Im2colQuantize::new(&gb, f).unwrap().with_team_fill(7).team_fill(), 7, "{f}");
            for r in roundings() {
                let (want_cols, want_codes, want_scales) = reference::im2col_quantize::im2col_quantize(&x, geom, &l, r);
                for (layout, k, gl) in [("cpu", &kc, &gc), ("gpu", &kg, &gg), ("gpu balanced", &kb, &gb)] {
                    for with_cols in [true, false] {
                        let what = format!("{geom:?} {f} {r:?} {layout} layouts, cols {with_cols}");
                        // Outputs start as NaN or 0xffffffff: every value must be written.
                        let cols = lowbit::GpuBuffer::from_slice(g, "cols", &vec![f32::NAN; want_cols.len()]).unwrap();
                        let (codes, scales) = unwritten(g, &l, 1);
                        common::submit_with(|e| {
                            k.encode(gl, e, geom, &xb, with_cols.then_some(&cols), &l, r, &codes, &scales).unwrap()
                        });
                        assert_u32_eq(&format!("codes {what}"), &codes.read(g).unwrap(), &want_codes);
                        assert_f32_bits_eq(&format!("scales {what}"), &scales.read(g).unwrap(), &want_scales);
                        let got_cols = cols.read(g).unwrap();
                        match with_cols {
                            true => assert_f32_bits_eq(&format!("cols {what}"), &got_cols, &want_cols),
                            false => assert!(got_cols.iter().all(|v| v.is_nan()), "{what}: cols written"),
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    // Every per-row format but NVFP4's, both roundings, both layouts (the GPU's with both fills),
    // with and without cols.
    let per_row = Format::ALL.iter().filter(|f| f.block().is_none() && !f.needs_tensor_amax()).count();
    assert_eq!(cases, geoms.len() * per_row * 2 * 3 * 2);
}

#[test]
fn the_tiled_transposing_unfold_is_the_thread_per_row_one() {
    // im2col_quantize_transpose on a GPU's layouts (neighbouring rows of L, pieces of a row a
    // thread: per block main_blocks, per row main_rows or, for long rows, main_maxima then
    // main_tiles) and on a CPU's (a thread per row), in one process on this adapter: codes and
    // scales bit for bit against the reference, per row and per block, one sample and two, for
    // rows of many pieces, more rows than a tile has and rows of fewer columns than a piece.
    use lowbit::kernels::im2col::ConvGeom;
    use lowbit::kernels::im2col_quantize_transpose::{Im2colQuantizeTranspose, PIECE_COLS, PIECE_WORDS, ROWS_MAX_COLS};
    let g = gpu();
    let (gc, gg) = (g.with_layouts(lowbit::Layouts::Cpu), g.with_layouts(lowbit::Layouts::Gpu));
    let geoms = [
        // Rows of 2,250 columns, past ROWS_MAX_COLS: per row the maxima then the codes, 141
        // pieces of maxima (8 a workgroup, the last one short), 141 of codes (int8).
        ConvGeom { batch: 3, h: 30, w: 25, c: 2, kh: 3, kw: 3, stride: 1, pad: 1 },
        // Rows of 396 columns: one launch per row, pieces of 4 words (int8: 25 a row, 8 lanes).
        ConvGeom { batch: 3, h: 12, w: 11, c: 3, kh: 3, kw: 3, stride: 1, pad: 1 },
        // 360 rows (12 tiles of 32, the last one part full) of 12 columns; stride 2.
        ConvGeom { batch: 2, h: 5, w: 4, c: 40, kh: 3, kw: 3, stride: 2, pad: 1 },
        // A 1×1 convolution: 8 rows of 324 columns.
        ConvGeom { batch: 4, h: 9, w: 9, c: 8, kh: 1, kw: 1, stride: 1, pad: 0 },
        // 5×5 taps, padding 2: 50 rows of 180 columns.
        ConvGeom { batch: 2, h: 10, w: 9, c: 2, kh: 5, kw: 5, stride: 1, pad: 2 },
    ];
    assert!(geoms[0].rows() as u32 > ROWS_MAX_COLS && (geoms[1].rows() as u32) < ROWS_MAX_COLS);
    assert_eq!((PIECE_COLS, PIECE_WORDS), (16, 4));
    let mut cases = 0;
    for (gi, geom) in geoms.iter().enumerate() {
        // The long rows without the special values: their 1e30 every 97 values would be every
        // piece's maximum, the row's whichever pieces were met.
        let mut x = data(geom.input_len(), 210 + gi as u32, gi > 0);
        // An all-zero image row: groups of zeros quantize to zero codes.
        x[..geom.w * geom.c].iter_mut().for_each(|v| *v = 0.0);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        for f in Format::ALL {
            let grans = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![
                    Granularity::PerRow,
                    Granularity::PerBlock(32),
                    Granularity::PerBlock(64),
                    Granularity::PerBlock(128),
                ],
            };
            for gr in grans {
                let Ok(l) = QuantLayout::new(geom.kdim(), geom.rows(), f, gr) else {
                    continue;
                };
                if !Im2colQuantizeTranspose::supports(&l) {
                    assert!(f.needs_tensor_amax(), "{f} {gr}");
                    continue;
                }
                let (kc, kg) =
                    (Im2colQuantizeTranspose::new(&gc, f).unwrap(), Im2colQuantizeTranspose::new(&gg, f).unwrap());
                assert!(!kc.uses_tiles() && kg.uses_tiles(), "{f}");
                let r = Rounding::Stochastic { seed: 77, stream: 3 };
                for (rounding, samples) in [(Rounding::Nearest, 1), (r, 1), (r, 2)] {
                    let mut want = (Vec::new(), Vec::new());
                    for j in 0..samples {
                        let rj = match rounding {
                            Rounding::Stochastic { seed, stream } => Rounding::Stochastic { seed, stream: stream + j },
                            n => n,
                        };
                        let (c, s) = reference::im2col_quantize_transpose::im2col_quantize_transpose(&x, geom, &l, rj);
                        want.0.extend(c);
                        want.1.extend(s);
                    }
                    for (layout, k, gl) in [("cpu", &kc, &gc), ("gpu", &kg, &gg)] {
                        let what = format!("{geom:?} {f} {gr} {rounding:?} ×{samples} {layout} layouts");
                        // Outputs start as NaN or 0xffffffff: every value must be written.
                        let (codes, scales) = unwritten(g, &l, samples as usize);
                        common::submit_with(|e| {
                            k.encode(gl, e, geom, &xb, &l, rounding, samples, &codes, &scales).unwrap()
                        });
                        assert_u32_eq(&format!("codes {what}"), &codes.read(g).unwrap(), &want.0);
                        assert_f32_bits_eq(&format!("scales {what}"), &scales.read(g).unwrap(), &want.1);
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases > 150, "{cases}");
}

#[test]
fn a_convolutions_x_and_xt_from_its_input_are_quantized_together() {
    // unfold_quantize_both: a convolution's unfolded X (per row, for the forward) and its Xᵀ (per
    // row or per block, for the weight gradient), both from the input, in one launch
    // (im2col_quantize's main_both_v4) on a CPU adapter where the channels come in fours, else the
    // two launches; the bits of unfold_quantize and unfold_quantize_transposed and of the
    // references either way, each side with its own rounding.
    use lowbit::kernels::im2col::ConvGeom;
    use lowbit::kernels::im2col_quantize::Im2colQuantize;
    let g = gpu();
    // (unfold_geoms: one channel and five take the two launches.) And one whose 90 rows of cols
    // end in a short tile of pixels and whose output rows of 6 pixels split tiles (entry
    // main_tiles_v4, 4 and 8 codes a word); two at stride 1 for main_maxima_v4's runs, one whose
    // tap columns' runs share a core of pixels, each with its own edges (no padding), and one
    // whose runs share none (an image row narrower than the kernel).
    let geoms = unfold_geoms();
    let tail = [
        ConvGeom { batch: 3, h: 5, w: 6, c: 8, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvGeom { batch: 2, h: 6, w: 7, c: 4, kh: 3, kw: 3, stride: 1, pad: 0 },
        ConvGeom { batch: 2, h: 4, w: 3, c: 4, kh: 3, kw: 5, stride: 1, pad: 2 },
    ];
    let mut cases = 0;
    let mut tiled = [0; 2];
    for (gi, geom) in geoms.iter().chain(&tail).enumerate() {
        let mut x = data(geom.input_len(), 170 + gi as u32, true);
        x[..geom.w * geom.c].iter_mut().for_each(|v| *v = 0.0);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        for f in Format::ALL.into_iter().filter(|f| !f.needs_tensor_amax()) {
            let grans_t = match f.block() {
                Some(b) => vec![Granularity::PerBlock(b)],
                None => vec![Granularity::PerRow, Granularity::PerBlock(32)],
            };
            for gt in grans_t {
                let Ok(l) = QuantLayout::new(geom.rows(), geom.kdim(), f, Granularity::PerRow) else {
                    continue;
                };
                let Ok(lt) = QuantLayout::new(geom.kdim(), geom.rows(), f, gt) else {
                    continue;
                };
                if !Im2colQuantize::supports(&l) {
                    // (Block-scaled formats keep their blocks: no per-row cols.)
                    assert!(f.block().is_some(), "{f}");
                    continue;
                }
                // Each side's rounding the other's opposite; and where the tiles run, the same
                // too (their entry is built for each pair).
                let st = Rounding::Stochastic { seed: 1234, stream: 9 };
                let mut pairs: Vec<(Rounding, Rounding)> =
                    roundings().into_iter().zip([st, Rounding::Nearest]).collect();
                if Im2colQuantize::takes_tiles(geom, &l, &lt) {
                    pairs.extend(roundings().into_iter().zip([Rounding::Nearest, st]));
                }
                for (r, r_t) in pairs {
                    let what = format!("{geom:?} {f} {gt} {r:?} {r_t:?}");
                    let (s, s_t) = (
                        QuantScheme { format: f, granularity: Granularity::PerRow, rounding: r },
                        QuantScheme { format: f, granularity: gt, rounding: r_t },
                    );
                    let mut rec = lowbit::Recorder::new(g, "both");
                    let (q, qt) = qz().unfold_quantize_both(g, &mut rec, geom, &xb, (s, s_t)).unwrap();
                    let dispatches = rec.dispatches();
                    g.queue.submit([rec.finish()]);
                    let one = g.cpu_layouts() && geom.c % 4 == 0;
                    assert_eq!(Quantizer::unfolds_both_together(g, geom, &l, &lt), one, "{what}");
                    // Together: x's maxima, then both sides' codes (or L's scales, then the tiles,
                    // for 4 or 8 codes a word, channels in those and L per row), or the latter
                    // alone where the taps share no pixels (1x1); apart: the two unfolding
                    // quantizers.
                    assert_eq!(Im2colQuantize::takes_maxima(geom), geom.kh * geom.kw > geom.stride.pow(2), "{what}");
                    let tiles = Im2colQuantize::takes_tiles(geom, &l, &lt);
                    let per_word = f.per_word() as usize;
                    let want_tiles = Im2colQuantize::takes_maxima(geom)
                        && matches!(per_word, 4 | 8)
                        && f != Format::Log4
                        && geom.c % per_word == 0
                        && gt == Granularity::PerRow;
                    assert_eq!(Im2colQuantize::tiles_take(f), matches!(per_word, 4 | 8) && f != Format::Log4, "{f}");
                    assert_eq!(tiles, want_tiles, "{what}");
                    if one && tiles {
                        tiled[per_word / 8] += 1;
                    }
                    let together = match (Im2colQuantize::takes_maxima(geom), tiles) {
                        (true, true) => 3,
                        (true, false) => 2,
                        (false, _) => 1,
                    };
                    assert_eq!(dispatches, if one { together } else { 2 }, "{what}: launches");
                    let mut rec = lowbit::Recorder::new(g, "apart");
                    let apart = qz().unfold_quantize(g, &mut rec, geom, &xb, None, s).unwrap();
                    let apart_t = qz().unfold_quantize_transposed(g, &mut rec, geom, &xb, s_t).unwrap();
                    g.queue.submit([rec.finish()]);
                    let (r0, r1) = reference::im2col_quantize::im2col_quantize_both(&x, geom, (&l, r), (&lt, r_t));
                    for ((side, got, want), r) in [("X", &q, &apart), ("Xᵀ", &qt, &apart_t)].into_iter().zip([r0, r1])
                    {
                        assert_eq!(got.layout, want.layout, "{what} {side}: layout");
                        let (codes, scales) = (got.codes.read(g).unwrap(), got.scales.read(g).unwrap());
                        assert_u32_eq(&format!("{what} {side}: codes"), &codes, &want.codes.read(g).unwrap());
                        assert_f32_bits_eq(&format!("{what} {side}: scales"), &scales, &want.scales.read(g).unwrap());
                        assert_u32_eq(&format!("{what} {side}: codes vs the reference"), &codes, &r.0);
                        assert_f32_bits_eq(&format!("{what} {side}: scales vs the reference"), &scales, &r.1);
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 50, "{cases}");
    // The tiles ran for both widths of word where the adapter quantizes both together.
    if g.cpu_layouts() {
        assert!(tiled.iter().all(|&n| n >= 4), "{tiled:?}");
    }
    // Refused, recording nothing: two formats; and by the kernel, channels not in fours, a
    // per-block cols, a layout of the wrong shape, short outputs.
    let geom = geoms[2];
    let xb = lowbit::GpuBuffer::from_slice(g, "x", &data(geom.input_len(), 3, false)).unwrap();
    let mut rec = lowbit::Recorder::new(g, "refused");
    let two = (QuantScheme::per_row(Format::Int8), QuantScheme::per_row(Format::Int4));
    assert!(qz().unfold_quantize_both(g, &mut rec, &geom, &xb, two).is_err(), "two formats");
    // An Xᵀ the transposed unfold refuses (per tensor), where the two launches would be taken:
    // refused before X's launch is recorded.
    let (five, x5) = (geoms[3], lowbit::GpuBuffer::from_slice(g, "x", &data(geoms[3].input_len(), 4, false)).unwrap());
    let per_tensor = QuantScheme { granularity: Granularity::PerTensor, ..QuantScheme::per_row(Format::Int8) };
    let pair = (QuantScheme::per_row(Format::Int8), per_tensor);
    assert!(qz().unfold_quantize_both(g, &mut rec, &five, &x5, pair).is_err(), "Xᵀ per tensor");
    let k = Im2colQuantize::new(g, Format::Int8).unwrap();
    let row = Granularity::PerRow;
    let lay = |geom: &ConvGeom, gr| QuantLayout::new(geom.rows(), geom.kdim(), Format::Int8, gr).unwrap();
    let lay_t = |geom: &ConvGeom| QuantLayout::new(geom.kdim(), geom.rows(), Format::Int8, row).unwrap();
    let cases = [
        (&five, &x5, lay(&five, row), lay_t(&five)),
        (&geom, &xb, lay(&geom, Granularity::PerBlock(32)), lay_t(&geom)),
        (&geom, &xb, lay_t(&geom), lay(&geom, row)),
    ];
    for (gm, x, l, lt) in &cases {
        let (o, ot) = ((codes_buf(g, l, 1), scales_buf(g, l, 1)), (codes_buf(g, lt, 1), scales_buf(g, lt, 1)));
        let e =
            k.encode_both(g, &mut rec, gm, x, (nearest(l, (&o.0, &o.1)), nearest(lt, (&ot.0, &ot.1)))).err().unwrap();
        assert!(matches!(e, Error::InvalidArgument(_) | Error::Shape { .. }), "{e}");
    }
    let (l, lt) = (lay(&geom, row), lay_t(&geom));
    let short = lowbit::GpuBuffer::<f32>::zeros(g, "short", 3).unwrap();
    let (o, ot) = ((codes_buf(g, &l, 1), scales_buf(g, &l, 1)), (codes_buf(g, &lt, 1), scales_buf(g, &lt, 1)));
    for sides in [((&o.0, &short), (&ot.0, &ot.1)), ((&o.0, &o.1), (&ot.0, &short))] {
        let e = k.encode_both(g, &mut rec, &geom, &xb, (nearest(&l, sides.0), nearest(&lt, sides.1))).err().unwrap();
        assert!(matches!(e, Error::Shape { .. }), "{e}");
    }
    assert_eq!(rec.dispatches(), 0, "nothing recorded");
}

#[test]
fn the_unfolded_transposing_quantizer_is_im2col_then_the_transposing_quantizer() {
    use lowbit::kernels::im2col::Im2col;
    use lowbit::kernels::im2col_quantize_transpose::Im2colQuantizeTranspose;
    let g = gpu();
    let im2col = Im2col::new(g).unwrap();
    let geoms = unfold_geoms();
    let grans = [Granularity::PerRow, Granularity::PerBlock(32), Granularity::PerBlock(64)];
    let mut cases = 0;
    for (gi, geom) in geoms.iter().enumerate() {
        let mut x = data(geom.input_len(), 70 + gi as u32, true);
        // An all-zero image row: groups of zeros quantize to zero codes.
        x[..geom.w * geom.c].iter_mut().for_each(|v| *v = 0.0);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        let cols = lowbit::GpuBuffer::<f32>::zeros(g, "cols", geom.rows() * geom.kdim()).unwrap();
        for f in Format::ALL {
            for gr in grans {
                let gr = match (f.block(), gr) {
                    (Some(b), Granularity::PerRow) => Granularity::PerBlock(b),
                    (Some(_), _) => continue,
                    _ => gr,
                };
                let Ok(l) = QuantLayout::new(geom.kdim(), geom.rows(), f, gr) else {
                    continue;
                };
                if !Im2colQuantizeTranspose::supports(&l) {
                    assert!(f.needs_tensor_amax(), "{f} {gr}");
                    continue;
                }
                for r in roundings() {
                    let what = format!("{geom:?} {f} {gr} {r:?}");
                    let scheme = QuantScheme { format: f, granularity: gr, rounding: r };
                    let (codes, scales, q) = run(|e| qz().unfold_quantize_transposed(g, e, geom, &xb, scheme));
                    assert_eq!((q.layout.rows as usize, q.layout.cols as usize), (geom.kdim(), geom.rows()));
                    let (want_codes, want_scales) =
                        reference::im2col_quantize_transpose::im2col_quantize_transpose(&x, geom, &l, r);
                    assert_u32_eq(&format!("codes {what}"), &codes, &want_codes);
                    assert_f32_bits_eq(&format!("scales {what}"), &scales, &want_scales);
                    // And the two launches it replaces, on the device.
                    let (codes2, scales2, _) = run(|e| {
                        im2col.encode_unfold(g, e, geom, &xb, &cols)?;
                        let t = GpuTensor::from_buffer(cols.clone(), &[geom.rows(), geom.kdim()])?;
                        qz().quantize_transposed(g, e, &t, scheme)
                    });
                    assert_u32_eq(&format!("codes vs im2col + quantize_transposed {what}"), &codes, &codes2);
                    assert_f32_bits_eq(&format!("scales vs im2col + quantize_transposed {what}"), &scales, &scales2);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 100, "{cases}");
    // Few long rows per row (a first convolution's taps of one and of three channels): on a CPU
    // adapter split into pieces of CPU_PIECE_COLS columns, a thread each, in two launches (the
    // pieces' maxima, then the packing; the last piece short), every format, both roundings and
    // SMP's samples: the reference's bits.
    use lowbit::kernels::im2col::ConvGeom;
    use lowbit::kernels::im2col_quantize_transpose::CPU_PIECE_COLS;
    let long = [
        ConvGeom { batch: 2, h: 48, w: 45, c: 1, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvGeom { batch: 5, h: 60, w: 58, c: 3, kh: 3, kw: 3, stride: 2, pad: 1 },
    ];
    let mut split = 0;
    for (gi, geom) in long.iter().enumerate() {
        assert!(geom.rows() > 2 * CPU_PIECE_COLS as usize && geom.rows() % CPU_PIECE_COLS as usize != 0);
        let mut x = data(geom.input_len(), 95 + gi as u32, true);
        // The largest values in the last image rows, which only the last, short piece of each row
        // of L reaches: every row's maximum and scale come from another thread's piece.
        let tail = x.len() - 2 * geom.w * geom.c;
        x[tail..].iter_mut().for_each(|v| *v *= 8.0);
        let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
        for f in Format::ALL.into_iter().filter(|f| f.block().is_none()) {
            let l = QuantLayout::new(geom.kdim(), geom.rows(), f, Granularity::PerRow).unwrap();
            let k = Im2colQuantizeTranspose::new(g, f).unwrap();
            assert_eq!(Im2colQuantizeTranspose::splits_rows(g, &l), g.cpu_layouts(), "{geom:?}");
            for (r, samples) in roundings().into_iter().zip([1, 2]) {
                let what = format!("{geom:?} {f} {r:?} {samples} samples");
                let codes = lowbit::GpuBuffer::<u32>::zeros(g, "codes", samples * l.words()).unwrap();
                let scales = lowbit::GpuBuffer::<f32>::zeros(g, "scales", samples * l.n_groups as usize).unwrap();
                let mut rec = lowbit::Recorder::new(g, "long rows");
                k.encode(g, &mut rec, geom, &xb, &l, r, samples as u32, &codes, &scales).unwrap();
                let launches = rec.dispatches();
                g.queue.submit([rec.finish()]);
                if Im2colQuantizeTranspose::splits_rows(g, &l) {
                    assert_eq!(launches, 2, "{what}");
                    split += 1;
                }
                let (codes, scales) = (codes.read(g).unwrap(), scales.read(g).unwrap());
                let (w, n) = (l.words(), l.n_groups as usize);
                for j in 0..samples {
                    let rj = match r {
                        Rounding::Stochastic { seed, stream } => {
                            Rounding::Stochastic { seed, stream: stream + j as u32 }
                        }
                        Rounding::Nearest => r,
                    };
                    let (wc, ws) = reference::im2col_quantize_transpose::im2col_quantize_transpose(&x, geom, &l, rj);
                    assert_u32_eq(&format!("codes {what} sample {j}"), &codes[j * w..(j + 1) * w], &wc);
                    assert_f32_bits_eq(&format!("scales {what} sample {j}"), &scales[j * n..(j + 1) * n], &ws);
                }
            }
        }
    }
    if g.cpu_layouts() {
        assert!(split >= 20, "{split}");
    }
    // SMP: stacked samples, sample j bit for bit the quantization with stream + j alone.
    let geom = geoms[2];
    let x = data(geom.input_len(), 90, true);
    let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
    let l = QuantLayout::new(geom.kdim(), geom.rows(), Format::Int4, Granularity::PerRow).unwrap();
    let k = Im2colQuantizeTranspose::new(g, Format::Int4).unwrap();
    let codes = lowbit::GpuBuffer::<u32>::zeros(g, "codes", 3 * l.words()).unwrap();
    let scales = lowbit::GpuBuffer::<f32>::zeros(g, "scales", 3 * l.n_groups as usize).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    k.encode(g, &mut enc, &geom, &xb, &l, Rounding::Stochastic { seed: 5, stream: 2 }, 3, &codes, &scales).unwrap();
    g.queue.submit([enc.finish()]);
    let (codes, scales) = (codes.read(g).unwrap(), scales.read(g).unwrap());
    for j in 0..3 {
        let r = Rounding::Stochastic { seed: 5, stream: 2 + j as u32 };
        let (wc, ws) = reference::im2col_quantize_transpose::im2col_quantize_transpose(&x, &geom, &l, r);
        assert_u32_eq(&format!("sample {j} codes"), &codes[j * l.words()..(j + 1) * l.words()], &wc);
        let n = l.n_groups as usize;
        assert_f32_bits_eq(&format!("sample {j} scales"), &scales[j * n..(j + 1) * n], &ws);
    }
    // Samples need stochastic rounding.
    let mut enc = g.device.create_command_encoder(&Default::default());
    let err = k.encode(g, &mut enc, &geom, &xb, &l, Rounding::Nearest, 2, &codes_buf(g, &l, 2), &scales_buf(g, &l, 2));
    assert!(matches!(err, Err(Error::InvalidArgument(ref m)) if m.contains("stochastic")), "{err:?}");
    // The quantized convolution takes it on every adapter, without a tensor-wide scale.
    for (f, gr, takes) in [
        (Format::Int8, Granularity::PerRow, true),
        (Format::Log4, Granularity::PerRow, true),
        (Format::Mxfp8, Granularity::PerBlock(32), true),
        (Format::Nvfp4, Granularity::PerBlock(16), false),
    ] {
        let l = QuantLayout::new(144, 112, f, gr).unwrap();
        assert_eq!(Quantizer::unfolds_transposed(g, &l), takes, "{f} {gr}");
    }
    // What it does not take is an error, with nothing recorded.
    let tensor = QuantScheme { format: Format::Int8, granularity: Granularity::PerTensor, rounding: Rounding::Nearest };
    let err = run_err(|e| qz().unfold_quantize_transposed(g, e, &geom, &xb, tensor));
    assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("apart")), "{err}");
    let short = lowbit::GpuBuffer::<f32>::zeros(g, "short", geom.input_len() - 1).unwrap();
    let err = run_err(|e| qz().unfold_quantize_transposed(g, e, &geom, &short, QuantScheme::per_row(Format::Int8)));
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let wrong = QuantLayout::new(geom.rows(), geom.kdim(), Format::Int4, Granularity::PerRow).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let err = k.encode(
        g,
        &mut enc,
        &geom,
        &xb,
        &wrong,
        Rounding::Nearest,
        1,
        &codes_buf(g, &wrong, 1),
        &scales_buf(g, &wrong, 1),
    );
    assert!(matches!(err, Err(Error::Shape { .. })), "{err:?}");
}

/// Convolution geometries for the unfolding quantizers' tests: L = colsᵀ of 25 rows (one channel:
/// the scalar entries), padding on every side; 4 channels, stride 2 (vec4 entries where L has
/// rows enough); 16 channels, 3×3, padding 1: 144 rows of L, rows of 2·8·7 = 112 pixels; a 1×3
/// kernel past the stride, no padding, 5 channels, taps reaching past the image; a 1×1
/// projection with stride 2 (resnet's shortcut), 8 channels.
fn unfold_geoms() -> [lowbit::kernels::im2col::ConvGeom; 5] {
    use lowbit::kernels::im2col::ConvGeom;
    [
        ConvGeom { batch: 2, h: 9, w: 7, c: 1, kh: 5, kw: 5, stride: 1, pad: 2 },
        ConvGeom { batch: 2, h: 6, w: 5, c: 4, kh: 3, kw: 3, stride: 2, pad: 1 },
        ConvGeom { batch: 2, h: 8, w: 7, c: 16, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvGeom { batch: 1, h: 7, w: 9, c: 5, kh: 1, kw: 3, stride: 3, pad: 0 },
        ConvGeom { batch: 3, h: 8, w: 8, c: 8, kh: 1, kw: 1, stride: 2, pad: 0 },
    ]
}

/// Codes and scales for `samples` samples of `l` that start as 0xffffffff and NaN, so that a
/// value left unwritten shows.
fn unwritten(g: &lowbit::Gpu, l: &QuantLayout, samples: usize) -> (lowbit::GpuBuffer<u32>, lowbit::GpuBuffer<f32>) {
    (
        lowbit::GpuBuffer::from_slice(g, "codes", &vec![u32::MAX; samples * l.words()]).unwrap(),
        lowbit::GpuBuffer::from_slice(g, "scales", &vec![f32::NAN; samples * l.n_groups as usize]).unwrap(),
    )
}

fn codes_buf(g: &lowbit::Gpu, l: &QuantLayout, samples: usize) -> lowbit::GpuBuffer<u32> {
    lowbit::GpuBuffer::zeros(g, "codes", l.words() * samples).unwrap()
}

fn scales_buf(g: &lowbit::Gpu, l: &QuantLayout, samples: usize) -> lowbit::GpuBuffer<f32> {
    lowbit::GpuBuffer::zeros(g, "scales", l.n_groups as usize * samples).unwrap()
}

#[test]
fn a_gradient_and_its_transpose_from_given_maxima_take_one_launch() {
    // On a GPU's layouts, where batch norm's backward writes dYᵀ's group maxima: dY (for dX) and
    // dYᵀ (for dW) in one launch of quantize_both's
    // `main_given`, each side with its own rounding and stream, SMP's samples stacked: the bits of
    // quantize(_samples) and quantize_transposed_given_maxima apart, and of the reference, for
    // every format without a tensor-wide scale, dY per row and per block, dYᵀ per row, per block
    // and per tensor. dY per tensor (the two-pass quantizer's) keeps the two launches, with the
    // same bits.
    let g = gpu();
    let gg = g.with_layouts(lowbit::Layouts::Gpu);
    let q = Quantizer::new(&gg).unwrap();
    let (sd, st) = (Rounding::Stochastic { seed: 21, stream: 4 }, Rounding::Stochastic { seed: 21, stream: 12 });
    // dY [rows, cols]: a ragged one, a convolution's dY of 16 channels over 16 32×32 images (one
    // thread of a row's team a word), rows longer than a team's 256 words (several words a thread),
    // and a dYᵀ whose rows the one-pass kernel would take alone (64 channels over 16 8×8 images).
    let shapes = [(2049, 33), (16384, 16), (2200, 1100), (1024, 64)];
    let (mut one, mut apart) = (0, 0);
    for (i, (rows, cols)) in shapes.into_iter().enumerate() {
        let x = long_rows_data(rows, cols, 170 + i as u32);
        let xt = GpuTensor::from_slice(&gg, &x, &[rows, cols]).unwrap();
        for f in Format::ALL.into_iter().filter(|f| !f.needs_tensor_amax()) {
            let grans = [
                (Granularity::PerRow, Granularity::PerRow),
                (Granularity::PerRow, Granularity::PerBlock(32)),
                (Granularity::PerRow, Granularity::PerTensor),
                (Granularity::PerBlock(32), Granularity::PerRow),
                (Granularity::PerTensor, Granularity::PerRow),
            ];
            for (ga, gb) in grans {
                let (Ok(l), Ok(lt)) = (QuantLayout::new(rows, cols, f, ga), QuantLayout::new(cols, rows, f, gb)) else {
                    continue;
                };
                if i > 0 && (gb, ga) != (Granularity::PerRow, Granularity::PerRow) && f != Format::Int8 {
                    continue; // (every pairing once a format on the first shape; int8's on all)
                }
                let maxima = lowbit::GpuBuffer::from_slice(g, "m", &reference::absmax::absmax(&x, &lt, true)).unwrap();
                for (rs, k) in [((Rounding::Nearest, Rounding::Nearest), 1), ((sd, st), 1), ((sd, st), 2)] {
                    let (s, s_t) = (
                        QuantScheme { format: f, granularity: ga, rounding: rs.0 },
                        QuantScheme { format: f, granularity: gb, rounding: rs.1 },
                    );
                    let what = format!("{f} {ga}/{gb} over {rows}x{cols}, {rs:?}, {k} samples");
                    let takes = Quantizer::quantizes_grad_both_given_maxima_in_one_pass(&gg, &l, &lt);
                    assert_eq!(takes, ga != Granularity::PerTensor, "{what}");
                    let mut rec = lowbit::Recorder::new(&gg, "both");
                    let (qd, qdt) =
                        q.quantize_grad_both_given_maxima(&gg, &mut rec, &xt, (s, s_t), k, &maxima).unwrap();
                    let both = rec.dispatches();
                    (one, apart) = (one + takes as usize, apart + !takes as usize);
                    let wt = q.quantize_transposed_given_maxima(&gg, &mut rec, &xt, s_t, k, &maxima).unwrap();
                    let w = match k {
                        1 => q.quantize(&gg, &mut rec, &xt, s).unwrap(),
                        _ => q.quantize_samples(&gg, &mut rec, &xt, s, k).unwrap(),
                    };
                    let two = rec.dispatches() - both;
                    assert!(two >= 2, "{what}: {two} launches apart");
                    assert_eq!(both, if takes { 1 } else { two }, "{what}: launches");
                    g.queue.submit([rec.finish()]);
                    let m = reference::absmax::absmax(&x, &lt, true);
                    let (r, rt) = reference::quantize_both::from_maxima(&x, &m, (&l, rs.0), (&lt, rs.1), k);
                    for (side, got, want, r) in [("dY", &qd, &w, r), ("dYᵀ", &qdt, &wt, rt)] {
                        side_matches(&format!("{what} {side}"), got, want, k, &r);
                    }
                }
            }
        }
    }
    assert!(one >= 8 * 3 * 3 && apart >= 3 * 3, "one launch {one}, two {apart}");
    // Refused, recording nothing: NVFP4's tensor scale, two formats, SMP with nearest rounding on
    // either side, maxima of the wrong length (on the CPU's layouts too, where the two launches
    // run).
    let long = GpuTensor::from_slice(g, &data(3000 * 4, 180, false), &[3000, 4]).unwrap();
    let gc = g.with_layouts(lowbit::Layouts::Cpu);
    let qc = Quantizer::new(&gc).unwrap();
    let i8s = QuantScheme::per_row(Format::Int8).stochastic(1, 2);
    let nv = QuantScheme::native(Format::Nvfp4);
    let cases = [
        (&q, &gg, (nv, nv), 1, 4 * 188 + 1, "without a tensor-wide scale"),
        (&q, &gg, (i8s, QuantScheme::per_row(Format::Int4)), 1, 4, "without a tensor-wide scale"),
        (&q, &gg, (QuantScheme::per_row(Format::Int8), i8s), 2, 4, "stochastic rounding"),
        (&q, &gg, (i8s, QuantScheme::per_row(Format::Int8)), 2, 4, "stochastic rounding"),
        (&q, &gg, (i8s, i8s), 1, 3, "maxima has 3 elements"),
        (&qc, &gc, (i8s, i8s), 1, 3, "maxima has 3 elements"),
    ];
    for (q, gl, schemes, k, n, why) in cases {
        let m = lowbit::GpuBuffer::<u32>::zeros(g, "m", n).unwrap();
        let mut rec = lowbit::Recorder::new(gl, "refused");
        let Err(err) = q.quantize_grad_both_given_maxima(gl, &mut rec, &long, schemes, k, &m) else {
            panic!("{schemes:?}, {k} samples: taken");
        };
        assert!(err.to_string().contains(why), "{schemes:?}: {err}");
        assert_eq!(rec.dispatches(), 0, "{err}: recorded before refusing");
    }
    // The kernel's entry on a CPU's layouts, and with buffers of the wrong length: refused.
    let l = QuantLayout::new(3000, 4, Format::Int8, Granularity::PerRow).unwrap();
    let lt = QuantLayout::new(4, 3000, Format::Int8, Granularity::PerRow).unwrap();
    let (o, ot) = ((codes_buf(g, &l, 1), scales_buf(g, &l, 1)), (codes_buf(g, &lt, 1), scales_buf(g, &lt, 1)));
    let m = lowbit::GpuBuffer::<u32>::zeros(g, "m", 4).unwrap();
    let short_m = lowbit::GpuBuffer::<u32>::zeros(g, "m", 3).unwrap();
    let short_x = lowbit::GpuBuffer::<f32>::zeros(g, "x", 11).unwrap();
    for (gl, xb, mb, why) in
        [(&gc, long.buffer(), &m, "CPU's"), (&gg, long.buffer(), &short_m, "maxima"), (&gg, &short_x, &m, "x")]
    {
        let kb = QuantizeBoth::new(gl, Format::Int8).unwrap();
        let mut rec = lowbit::Recorder::new(gl, "refused");
        let sides = (nearest(&l, (&o.0, &o.1)), nearest(&lt, (&ot.0, &ot.1)));
        let err = kb.encode_given(gl, &mut rec, xb, sides, 1, mb).err().unwrap();
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(rec.dispatches(), 0, "{err}: recorded before refusing");
    }
}

#[test]
fn the_transposed_chain_from_given_maxima_is_the_chain() {
    // On a GPU's layouts, where L = xᵀ's long rows take the two-pass chain: the chain's second
    // launch alone, given absmax's maxima of x (as batch norm's backward writes them), gives
    // quantize_transposed's bits (and quantize_transposed_samples', every sample), per row, per
    // block and per tensor. Layouts that do not take the chain there, and maxima of the wrong
    // length, are refused before anything is recorded.
    let g = gpu();
    let gg = g.with_layouts(lowbit::Layouts::Gpu);
    let q = Quantizer::new(&gg).unwrap();
    let mut cases = 0;
    // L's rows of 2,049 and 5,000 values (past FUSED_T_MAX_COLS), 33 and 3 of them.
    for (r, c) in [(2049, 33), (5000, 3)] {
        let x = long_rows_data(r, c, 150 + c as u32);
        let xt = GpuTensor::from_slice(&gg, &x, &[r, c]).unwrap();
        for f in [Format::Int8, Format::Int4, Format::Log4, Format::Fp8E5M2, Format::Int2] {
            for gran in [Granularity::PerRow, Granularity::PerTensor, Granularity::PerBlock(32)] {
                let lt = QuantLayout::new(c, r, f, gran).unwrap();
                assert!(Quantizer::transposes_from_maxima(&gg, &lt), "{f} {gran} over {c}x{r}");
                let maxima = lowbit::GpuBuffer::from_slice(g, "m", &reference::absmax::absmax(&x, &lt, true)).unwrap();
                for (rounding, k) in roundings().into_iter().flat_map(|r| [(r, 1), (r, 3)]) {
                    if k > 1 && rounding == Rounding::Nearest {
                        continue;
                    }
                    let s = QuantScheme { format: f, granularity: gran, rounding };
                    let what = format!("{f} {gran} {rounding:?} over {c}x{r}, {k} samples");
                    let mut rec = lowbit::Recorder::new(&gg, "given");
                    let got = q.quantize_transposed_given_maxima(&gg, &mut rec, &xt, s, k, &maxima).unwrap();
                    assert_eq!(rec.dispatches(), 1, "{what}: one launch");
                    let want = match k {
                        1 => q.quantize_transposed(&gg, &mut rec, &xt, s).unwrap(),
                        _ => q.quantize_transposed_samples(&gg, &mut rec, &xt, s, k).unwrap(),
                    };
                    g.queue.submit([rec.finish()]);
                    assert_u32_eq(&format!("{what}: codes"), &got.codes.read(g).unwrap(), &want.codes.read(g).unwrap());
                    let (gs, ws) = (got.scales.read(g).unwrap(), want.scales.read(g).unwrap());
                    assert_f32_bits_eq(&format!("{what}: scales"), &gs, &ws);
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 2 * 5 * 3 * 3);
    // Rows the one-pass kernel takes (on the GPU's layouts, and every row on the CPU's) are taken
    // too (the trainer gives maxima there where dY is quantized in the same launch): the bits of
    // quantize_transposed.
    let gc = g.with_layouts(lowbit::Layouts::Cpu);
    let qc = Quantizer::new(&gc).unwrap();
    let long = GpuTensor::from_slice(g, &data(3000 * 4, 160, false), &[3000, 4]).unwrap();
    let short = GpuTensor::from_slice(g, &data(2048 * 4, 161, false), &[2048, 4]).unwrap();
    let near = |format, granularity| QuantScheme { format, granularity, rounding: Rounding::Nearest };
    let int8 = near(Format::Int8, Granularity::PerRow);
    for (q, gl, x) in [(&q, &gg, &short), (&qc, &gc, &long), (&qc, &gc, &short)] {
        let lt = QuantLayout::new(4, x.shape()[0], Format::Int8, Granularity::PerRow).unwrap();
        assert!(!Quantizer::transposes_from_maxima(gl, &lt), "{:?}: the one-pass kernel's", x.shape());
        let xs = x.read(g).unwrap();
        let maxima = lowbit::GpuBuffer::from_slice(g, "m", &reference::absmax::absmax(&xs, &lt, true)).unwrap();
        let mut rec = lowbit::Recorder::new(gl, "given");
        let got = q.quantize_transposed_given_maxima(gl, &mut rec, x, int8, 1, &maxima).unwrap();
        assert_eq!(rec.dispatches(), 1, "{:?}: one launch", x.shape());
        let want = q.quantize_transposed(gl, &mut rec, x, int8).unwrap();
        g.queue.submit([rec.finish()]);
        assert_u32_eq("short rows: codes", &got.codes.read(g).unwrap(), &want.codes.read(g).unwrap());
        assert_f32_bits_eq("short rows: scales", &got.scales.read(g).unwrap(), &want.scales.read(g).unwrap());
    }
    // Refused: NVFP4's tensor scale, a maxima buffer of the wrong length; nothing recorded.
    let cases = [
        (&q, &gg, &long, near(Format::Int8, Granularity::PerBlock(32)), 4 * 93, "maxima has 372 elements"),
        (&q, &gg, &long, near(Format::Nvfp4, Granularity::PerBlock(16)), 4 * 188 + 1, "tensor-wide scale"),
        (&qc, &gc, &long, near(Format::Nvfp4, Granularity::PerBlock(16)), 4 * 188 + 1, "tensor-wide scale"),
        (&q, &gg, &long, int8, 3, "maxima has 3 elements"),
        (&qc, &gc, &short, int8, 5, "maxima has 5 elements"),
        (&q, &gg, &long, near(Format::Int8, Granularity::PerTensor), 4, "maxima has 4 elements"),
    ];
    for (q, gl, x, s, n, why) in cases {
        let m = lowbit::GpuBuffer::<u32>::zeros(g, "m", n).unwrap();
        let mut rec = lowbit::Recorder::new(gl, "refused");
        let Err(err) = q.quantize_transposed_given_maxima(gl, &mut rec, x, s, 1, &m) else {
            panic!("{} {} over {:?}: taken", s.format, s.granularity, x.shape());
        };
        assert!(err.to_string().contains(why), "{} {} over {:?}: {err}", s.format, s.granularity, x.shape());
        assert_eq!(rec.dispatches(), 0, "{err}: recorded before refusing");
    }
}
