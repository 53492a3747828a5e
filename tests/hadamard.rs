//! The block Hadamard rotation: bit-exact against its reference, orthogonal, invisible to a GEMM
//! of two rotated operands, and (its purpose) lower variance for quantized gradients with
//! outliers, while staying unbiased.

mod common;
use common::{assert_f32_bits_eq, data, gpu};
use lowbit::format::Format;
use lowbit::kernels::gemm::Epilogue;
use lowbit::kernels::gemm_f32::{GemmF32, GemmShape};
use lowbit::kernels::hadamard::{Axis, Hadamard};
use lowbit::quant::Quantizer;
use lowbit::scheme::QuantScheme;
use lowbit::{reference, Error, GpuBuffer, GpuTensor};

fn rotate(k: &Hadamard, x: &[f32], rows: usize, cols: usize, block: u32, axis: Axis) -> Vec<f32> {
    let g = gpu();
    let xb = GpuBuffer::from_slice(g, "x", x).unwrap();
    let out = GpuBuffer::<f32>::zeros(g, "out", x.len()).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    k.encode(g, &mut enc, &xb, &out, rows, cols, block, axis).unwrap();
    g.queue.submit([enc.finish()]);
    out.read(g).unwrap()
}

#[test]
fn matches_reference_and_is_orthogonal() {
    let k = Hadamard::new(gpu()).unwrap();
    for &(rows, cols, block, axis) in &[
        (3, 64, 16, Axis::Cols),
        (128, 10, 32, Axis::Rows),
        (7, 256, 256, Axis::Cols),
        (64, 5, 2, Axis::Rows),
        (9, 96, 8, Axis::Cols),
    ] {
        let x = data(rows * cols, 21, false);
        let y = rotate(&k, &x, rows, cols, block, axis);
        assert_f32_bits_eq(
            &format!("hadamard {rows}x{cols} B={block} {axis:?}"),
            &y,
            &reference::hadamard::hadamard(&x, rows, cols, block as usize, axis),
        );
        // H is symmetric and orthogonal: applying it twice gives x back (up to 2·log2(B) roundings).
        let z = rotate(&k, &y, rows, cols, block, axis);
        let norm: f32 = x.iter().map(|v| v.abs()).fold(0.0, f32::max);
        for (a, b) in x.iter().zip(&z) {
            assert!((a - b).abs() <= 1e-5 * norm, "H·H ≠ I: {a} vs {b}");
        }
    }
}

#[test]
fn rotating_both_operands_along_k_leaves_the_product_unchanged() {
    let g = gpu();
    let (m, n, kd, block) = (20, 12, 128, 32);
    let a = data(m * kd, 31, false);
    let b = data(n * kd, 32, false);
    let h = Hadamard::new(g).unwrap();
    let ar = rotate(&h, &a, m, kd, block, Axis::Cols);
    let br = rotate(&h, &b, n, kd, block, Axis::Cols);
    let gemm = GemmF32::new(g).unwrap();
    let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
    let (ab, bb) = (GpuBuffer::from_slice(g, "a", &ar).unwrap(), GpuBuffer::from_slice(g, "b", &br).unwrap());
    let mut enc = g.device.create_command_encoder(&Default::default());
    gemm.encode(g, &mut enc, &ab, &bb, GemmShape::nt(m, n, kd), &Epilogue::default(), &c).unwrap();
    g.queue.submit([enc.finish()]);
    let want = reference::gemm_f32::gemm_f32(&a, &b, m, n, kd, false, false, &Default::default());
    for (i, v) in c.read(g).unwrap().iter().enumerate() {
        // Rotation adds log2(B) roundings per operand element, the GEMM K + 4 (see tests/gemm.rs).
        let tol = ((kd + 4 + 2 * 5) as f64) * 2f64.powi(-24) * want.magnitude[i] * 4.0;
        assert!(((*v as f64) - want.value[i]).abs() <= tol, "output {i}: {v} vs {}", want.value[i]);
    }
}

#[test]
fn rotation_lowers_the_variance_of_a_quantized_gradient_with_outliers() {
    // G has a few large outliers per row (as neural gradients do); int4 per-row stochastic
    // quantization of G then spends its range on them. Estimator of G·Xᵀ over T seeds: plain
    // Q(G)·Xᵀ versus rotated Q(G·H)·(X·H)ᵀ. Both must be unbiased (Z = 6 standard errors); the
    // rotated one's summed variance must be below MAX_RATIO of the plain one.
    const T: u32 = 48;
    const Z: f64 = 6.0;
    const MAX_RATIO: f64 = 0.5;
    let g = gpu();
    let (m, n, kd, block) = (8usize, 8usize, 256usize, 64u32);
    let mut gd: Vec<f32> = data(m * kd, 41, false).iter().map(|v| v * 0.01).collect();
    for r in 0..m {
        gd[r * kd + (r * 37) % kd] = 3.0;
        gd[r * kd + (r * 91 + 5) % kd] = -2.5;
    }
    let xd = data(n * kd, 42, false);
    let target = reference::gemm_f32::gemm_f32(&gd, &xd, m, n, kd, false, false, &Default::default()).value;
    let h = Hadamard::new(g).unwrap();
    let qz = Quantizer::new(g).unwrap();
    let gemm = GemmF32::new(g).unwrap();
    let mut total = Vec::new();
    for rotated in [false, true] {
        let (gsrc, xsrc) = if rotated {
            (rotate(&h, &gd, m, kd, block, Axis::Cols), rotate(&h, &xd, n, kd, block, Axis::Cols))
        } else {
            (gd.clone(), xd.clone())
        };
        let gt = GpuTensor::from_slice(g, &gsrc, &[m, kd]).unwrap();
        let xb = GpuBuffer::from_slice(g, "x", &xsrc).unwrap();
        let (mut s1, mut s2) = (vec![0f64; m * n], vec![0f64; m * n]);
        for t in 0..T {
            let c = GpuBuffer::<f32>::zeros(g, "c", m * n).unwrap();
            let mut enc = g.device.create_command_encoder(&Default::default());
            let q = qz.quantize(g, &mut enc, &gt, QuantScheme::per_row(Format::Int4).stochastic(t, 3)).unwrap();
            let d = qz.dequantize(g, &mut enc, &q).unwrap();
            gemm.encode(g, &mut enc, d.buffer(), &xb, GemmShape::nt(m, n, kd), &Epilogue::default(), &c).unwrap();
            g.queue.submit([enc.finish()]);
            for (i, v) in c.read(g).unwrap().into_iter().enumerate() {
                s1[i] += v as f64;
                s2[i] += (v as f64).powi(2);
            }
        }
        let tt = T as f64;
        let mut vsum = 0.0;
        for i in 0..m * n {
            let mean = s1[i] / tt;
            let var = ((s2[i] - tt * mean * mean) / (tt - 1.0)).max(0.0);
            vsum += var;
            assert!(
                (mean - target[i]).abs() <= Z * (var / tt).sqrt() + 1e-4 * target[i].abs() + 1e-6,
                "rotated={rotated} output {i}: mean {mean} target {}",
                target[i]
            );
        }
        total.push(vsum);
    }
    let ratio = total[1] / total[0];
    eprintln!("variance with rotation / without: {ratio:.3}");
    assert!(ratio < MAX_RATIO, "rotation should cut the variance: ratio {ratio}");
}

#[test]
fn bad_blocks_are_errors() {
    let g = gpu();
    let k = Hadamard::new(g).unwrap();
    let x = GpuBuffer::<f32>::zeros(g, "x", 60).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(k.encode(g, &mut enc, &x, &x, 6, 10, 4, Axis::Cols), Err(Error::Shape { .. })));
    assert!(matches!(k.encode(g, &mut enc, &x, &x, 6, 10, 3, Axis::Cols), Err(Error::InvalidArgument(_))));
    assert!(matches!(k.encode(g, &mut enc, &x, &x, 6, 10, 512, Axis::Cols), Err(Error::InvalidArgument(_))));
    g.queue.submit([enc.finish()]);
}

#[test]
fn the_random_hadamard_transform_matches_its_reference_and_keeps_products() {
    use lowbit::kernels::hadamard::RANDOM_SIGNS;
    let g = gpu();
    let k = Hadamard::new(g).unwrap();
    let (rows, cols, block) = (64, 24, 16u32);
    let x = data(rows * cols, 41, false);
    let y = data(rows * cols, 42, false);
    let run = |v: &[f32]| {
        let (xb, out) = (GpuBuffer::from_slice(g, "x", v).unwrap(), GpuBuffer::<f32>::zeros(g, "o", v.len()).unwrap());
        common::submit_with(|e| {
            k.encode_signed(g, e, &xb, &out, (rows, cols), block, Axis::Rows, RANDOM_SIGNS).unwrap()
        });
        out.read(g).unwrap()
    };
    let (xr, yr) = (run(&x), run(&y));
    let want = reference::hadamard::hadamard_signed(&x, rows, cols, block as usize, Axis::Rows, RANDOM_SIGNS);
    assert_f32_bits_eq("random hadamard", &xr, &want);
    // Some signs flip, not all: it is not the plain transform.
    let plain = reference::hadamard::hadamard(&x, rows, cols, block as usize, Axis::Rows);
    assert!(xr != plain);
    let flips = (0..block as usize).filter(|&i| reference::hadamard::negated(RANDOM_SIGNS, i)).count();
    assert!(flips > 0 && flips < block as usize, "{flips} of {block} signs flip");
    // (D H)(D H)ᵀ = I: xᵀy over the rotated dimension is unchanged (per column pair).
    for c in 0..cols {
        let dot =
            |a: &[f32], b: &[f32]| (0..rows).map(|r| a[r * cols + c] as f64 * b[r * cols + c] as f64).sum::<f64>();
        let (before, after) = (dot(&x, &y), dot(&xr, &yr));
        assert!((before - after).abs() <= 1e-5 * (1.0 + before.abs()), "column {c}: {before} vs {after}");
    }
}

/// The rotation that also writes its output's tensor maximum (for NVFP4 operands): the maximum is
/// bit for bit `absmax` over the output (NaN, ±inf and subnormals skipped, a stale value in the
/// buffer cleared), and NVFP4's quantizers given it produce the bits they produce without it.
#[test]
fn the_rotation_writes_its_tensor_maximum_for_nvfp4() {
    use lowbit::kernels::hadamard::RANDOM_SIGNS;
    use lowbit::scheme::{Granularity, QuantLayout, Rounding};
    let g = gpu();
    let k = Hadamard::new(g).unwrap();
    let qz = Quantizer::new(g).unwrap();
    // (rows, cols, block, signs, specials); rows of 4096 take the transposing chain.
    for &(rows, cols, block, signs, specials) in &[
        (64, 48, 16u32, RANDOM_SIGNS, false),
        (128, 32, 32, 0, true),
        (48, 16, 16, RANDOM_SIGNS, true),
        (4096, 16, 16, RANDOM_SIGNS, false),
    ] {
        let what = format!("{rows}x{cols} B={block} signs={signs:#x} specials={specials}");
        let x = data(rows * cols, 51, specials);
        let xb = GpuBuffer::from_slice(g, "x", &x).unwrap();
        let (out, plain) =
            (GpuBuffer::<f32>::zeros(g, "out", x.len()).unwrap(), GpuBuffer::<f32>::zeros(g, "p", x.len()).unwrap());
        let amax = GpuBuffer::from_slice(g, "amax", &[0x7f00_0000u32]).unwrap();
        common::submit_with(|e| {
            k.encode_signed_with_amax(g, e, &xb, &out, (rows, cols), block, Axis::Rows, signs, &amax).unwrap();
            k.encode_signed(g, e, &xb, &plain, (rows, cols), block, Axis::Rows, signs).unwrap();
        });
        let y = out.read(g).unwrap();
        assert_f32_bits_eq(&what, &y, &plain.read(g).unwrap());
        let whole = QuantLayout::new(rows, cols, Format::Fp4E2M1, Granularity::PerTensor).unwrap();
        let want = reference::absmax::absmax(&y, &whole, false);
        let got = amax.read(g).unwrap();
        common::assert_u32_eq(&format!("{what}: tensor maximum"), &got, &want[..1]);
        assert!(got[0] > 0, "{what}: a maximum of 0");
        // Given the maximum, NVFP4's quantizers need no reduction of their own, with the same bits.
        let t = GpuTensor::from_buffer(out.clone(), &[rows, cols]).unwrap();
        for rounding in [Rounding::Nearest, Rounding::Stochastic { seed: 9, stream: 4 }] {
            let s = QuantScheme { rounding, ..QuantScheme::native(Format::Nvfp4) };
            let mut got = Vec::new();
            let mut want = Vec::new();
            common::submit_with(|e| {
                got.push(qz.quantize_with_amax(g, e, &t, s, &amax).unwrap());
                want.push(qz.quantize(g, e, &t, s).unwrap());
                got.push(qz.quantize_transposed_with_amax(g, e, &t, s, &amax).unwrap());
                want.push(qz.quantize_transposed(g, e, &t, s).unwrap());
            });
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                let w = format!("{what} {rounding:?} {}", ["direct", "transposed"][i]);
                common::assert_u32_eq(&format!("{w} codes"), &a.codes.read(g).unwrap(), &b.codes.read(g).unwrap());
                assert_f32_bits_eq(&format!("{w} scales"), &a.scales.read(g).unwrap(), &b.scales.read(g).unwrap());
            }
        }
    }
    // A maximum is only for formats with a tensor-wide scale, and is one word.
    let t = GpuTensor::from_buffer(GpuBuffer::<f32>::zeros(g, "t", 64).unwrap(), &[4, 16]).unwrap();
    let one = GpuBuffer::<u32>::zeros(g, "one", 1).unwrap();
    let two = GpuBuffer::<u32>::zeros(g, "two", 2).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let int8 = QuantScheme::per_row(Format::Int8);
    assert!(matches!(qz.quantize_with_amax(g, &mut enc, &t, int8, &one), Err(Error::InvalidArgument(_))));
    assert!(matches!(qz.quantize_transposed_with_amax(g, &mut enc, &t, int8, &one), Err(Error::InvalidArgument(_))));
    let nv = QuantScheme::native(Format::Nvfp4);
    assert!(matches!(qz.quantize_with_amax(g, &mut enc, &t, nv, &two), Err(Error::Shape { .. })));
    assert!(matches!(qz.quantize_transposed_with_amax(g, &mut enc, &t, nv, &two), Err(Error::Shape { .. })));
    let (x, y) = (GpuBuffer::<f32>::zeros(g, "x", 64).unwrap(), GpuBuffer::<f32>::zeros(g, "y", 64).unwrap());
    assert!(matches!(
        k.encode_signed_with_amax(g, &mut enc, &x, &y, (16, 4), 16, Axis::Rows, 0, &two),
        Err(Error::Shape { .. })
    ));
    g.queue.submit([enc.finish()]);
}

/// Both layouts — the workgroup butterflies, and on the per-thread path a thread per 16×4 values
/// for blocks of 16 along the rows with columns in fours — give the reference's bits and the same
/// tensor maximum, with and without random signs, on values with specials; shapes the per-thread
/// entries do not take (other blocks or axes, columns not in fours) fall back to the butterflies.
#[test]
fn both_layouts_of_the_rotation_match_the_reference() {
    use lowbit::kernels::hadamard::{RotateExtras, RANDOM_SIGNS};
    use lowbit::kernels::quantize_fused::ReducePath;
    use lowbit::scheme::{Granularity, QuantLayout};
    let g = gpu();
    let kernels = [ReducePath::Tree, ReducePath::PerThread].map(|p| (p, Hadamard::with_reduce_path(g, p).unwrap()));
    let mut cases = 0;
    for &(rows, cols, block, axis) in &[
        (64, 24, 16u32, Axis::Rows),
        (16, 4, 16, Axis::Rows),
        (4096, 16, 16, Axis::Rows),
        (48, 6, 16, Axis::Rows),
        (32, 8, 32, Axis::Rows),
        (8, 64, 16, Axis::Cols),
    ] {
        for (si, signs) in [0, RANDOM_SIGNS].into_iter().enumerate() {
            let x = data(rows * cols, 61 + si as u32, true);
            // (Subnormals as the adapter's arithmetic sees them: flushed on NVIDIA.)
            let seen = common::as_adapter_sees(&x);
            let want = reference::hadamard::hadamard_signed(&seen, rows, cols, block as usize, axis, signs);
            let want = common::as_adapter_sees(&want);
            let whole = QuantLayout::new(rows, cols, Format::Fp4E2M1, Granularity::PerTensor).unwrap();
            let want_amax = reference::absmax::absmax(&want, &whole, false);
            let xb = GpuBuffer::from_slice(g, "x", &x).unwrap();
            // Y for the mask: zeros of both signs, NaN and infinities among it.
            let y: Vec<f32> = data(rows * cols, 71 + si as u32, true)
                .into_iter()
                .enumerate()
                .map(|(i, v)| if i % 5 == 2 { -0.0 } else { v })
                .collect();
            let yb = GpuBuffer::from_slice(g, "y", &y).unwrap();
            let relu =
                reference::relu_backward::relu_backward(&common::as_adapter_sees(&y), &common::as_adapter_sees(&x));
            let want_m = reference::hadamard::hadamard_signed(&relu, rows, cols, block as usize, axis, signs);
            let want_m = common::as_adapter_sees(&want_m);
            let want_m_amax = reference::absmax::absmax(&want_m, &whole, false);
            for (path, k) in &kernels {
                let what = format!("{path:?} {rows}x{cols} B={block} {axis:?} signs={signs:#x}");
                let (out, out2) = (
                    GpuBuffer::<f32>::zeros(g, "out", x.len()).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "out2", x.len()).unwrap(),
                );
                let amax = GpuBuffer::from_slice(g, "amax", &[0x7f00_0000u32]).unwrap();
                common::submit_with(|e| {
                    k.encode_signed(g, e, &xb, &out, (rows, cols), block, axis, signs).unwrap();
                    k.encode_signed_with_amax(g, e, &xb, &out2, (rows, cols), block, axis, signs, &amax).unwrap();
                });
                assert_f32_bits_eq(&what, &out.read(g).unwrap(), &want);
                assert_f32_bits_eq(&format!("{what} (with its maximum)"), &out2.read(g).unwrap(), &want);
                common::assert_u32_eq(&format!("{what}: maximum"), &amax.read(g).unwrap(), &want_amax[..1]);
                // Masked by Y (ReLU's backward inside the rotation), with and without the maximum:
                // the bits of rotating what relu_backward writes.
                let (out3, out4) = (
                    GpuBuffer::<f32>::zeros(g, "out3", x.len()).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "out4", x.len()).unwrap(),
                );
                let amax2 = GpuBuffer::from_slice(g, "amax2", &[0x7f00_0000u32]).unwrap();
                let in_amax = GpuBuffer::from_slice(g, "in_amax", &[0x7f00_0000u32]).unwrap();
                let (plain_amax, plain_in) = (
                    GpuBuffer::from_slice(g, "plain_amax", &[0x7f00_0000u32]).unwrap(),
                    GpuBuffer::from_slice(g, "plain_in", &[0x7f00_0000u32]).unwrap(),
                );
                common::submit_with(|e| {
                    let s = (rows, cols);
                    let masked = |amax, input_amax| RotateExtras { mask: Some(&yb), amax, input_amax, sums: None };
                    k.encode_with(g, e, &xb, &out3, s, block, axis, signs, masked(None, None)).unwrap();
                    k.encode_with(g, e, &xb, &out4, s, block, axis, signs, masked(Some(&amax2), Some(&in_amax)))
                        .unwrap();
                    // Unmasked, the input's maximum is x's.
                    let both =
                        RotateExtras { mask: None, amax: Some(&plain_amax), input_amax: Some(&plain_in), sums: None };
                    k.encode_with(g, e, &xb, &out2, s, block, axis, signs, both).unwrap();
                });
                assert_f32_bits_eq(&format!("{what} masked"), &out3.read(g).unwrap(), &want_m);
                assert_f32_bits_eq(&format!("{what} masked (with its maxima)"), &out4.read(g).unwrap(), &want_m);
                common::assert_u32_eq(&format!("{what}: masked maximum"), &amax2.read(g).unwrap(), &want_m_amax[..1]);
                let want_in = reference::absmax::absmax(&relu, &whole, false);
                common::assert_u32_eq(
                    &format!("{what}: masked input's maximum"),
                    &in_amax.read(g).unwrap(),
                    &want_in[..1],
                );
                common::assert_u32_eq(
                    &format!("{what}: maximum (both)"),
                    &plain_amax.read(g).unwrap(),
                    &want_amax[..1],
                );
                let want_x = reference::absmax::absmax(&seen, &whole, false);
                common::assert_u32_eq(&format!("{what}: input's maximum"), &plain_in.read(g).unwrap(), &want_x[..1]);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 6 * 2 * 2);
}

/// The rotated weight-gradient operand in one launch (`hadamard_quantize_transpose`): codes and
/// scales bit for bit those of rotating (16, down the batch, random signs) and quantizing the
/// transpose per block, and the row sums `col_sum`'s first level's (per chunk) of the unrotated
/// operand, which col_sum's second level turns into its bits, for the block-scaled formats (MX
/// blocks of 32 over a batch of 48, or of 16,400 for MXFP8: a last block of one rotation; chunks
/// of 72 over 16,400 rows, the last one short), masked or not,
/// nearest, stochastic and SMP's stacked samples; NVFP4's tensor maximum from the rotation's
/// maxima-only pass, which writes what the rotation with its output writes and nothing else.
/// With x itself quantized in the same launch (`encode_both`, one sample): L's outputs the same,
/// and x's codes and scales the reference's of quantizing x (as masked) per block, rounded as
/// its own scheme says (NVFP4 with x's maximum from the maxima pass).
#[test]
fn the_rotation_and_its_transposing_quantizer_in_one_launch_match_the_chain() {
    use lowbit::kernels::hadamard::{RotateExtras, RANDOM_SIGNS};
    use lowbit::kernels::hadamard_quantize_transpose::{HadamardQuantizeTranspose, RotatedExtras, Unrotated};
    use lowbit::scheme::{Granularity, QuantLayout, Rounding};
    let g = gpu();
    let h = Hadamard::new(g).unwrap();
    // The maxima-only pass on the workgroup tree too (a GPU's path; lavapipe takes the per-thread one).
    let tree = Hadamard::with_reduce_path(g, lowbit::kernels::quantize_fused::ReducePath::Tree).unwrap();
    let colsum = lowbit::kernels::col_sum::ColSum::new(g).unwrap();
    let (mut cases, mut both_cases) = (0, 0);
    for format in [Format::Mxfp8, Format::Mxfp4, Format::Nvfp4] {
        let k = HadamardQuantizeTranspose::new(g, format).unwrap();
        // (x rows: the batch, x cols: L's rows, specials)
        for &(rows, cols, specials) in
            &[(64, 24, false), (48, 8, true), (1024, 4, false), (16, 12, false), (16400, 4, false)]
        {
            // The long batch (many chunks) once: it is the slowest case for the reference.
            if rows == 16400 && format != Format::Mxfp8 {
                continue;
            }
            let x = common::as_adapter_sees(&data(rows * cols, 81, specials));
            let y: Vec<f32> = data(rows * cols, 82, false)
                .into_iter()
                .enumerate()
                .map(|(i, v)| if i % 7 == 3 { -0.0 } else { v })
                .collect();
            let (xb, yb) = (GpuBuffer::from_slice(g, "x", &x).unwrap(), GpuBuffer::from_slice(g, "y", &y).unwrap());
            let l = QuantLayout::new(cols, rows, format, Granularity::native(format)).unwrap();
            assert!(HadamardQuantizeTranspose::supports(&l, 16), "{format} {rows}x{cols}");
            for masked in [false, true] {
                let mask = masked.then_some(&yb);
                // NVFP4: the rotated tensor's maximum, and the input's, without the rotated tensor.
                let amax = GpuBuffer::from_slice(g, "amax", &[0x7f00_0000u32]).unwrap();
                let in_amax = GpuBuffer::from_slice(g, "in amax", &[0x7f00_0000u32]).unwrap();
                let (want_amax, want_in) = (
                    GpuBuffer::from_slice(g, "want amax", &[0u32]).unwrap(),
                    GpuBuffer::from_slice(g, "want in", &[0u32]).unwrap(),
                );
                let rotated = GpuBuffer::<f32>::zeros(g, "rotated", x.len()).unwrap();
                let (tree_amax, tree_in) = (
                    GpuBuffer::from_slice(g, "tree amax", &[0x7f00_0000u32]).unwrap(),
                    GpuBuffer::from_slice(g, "tree in", &[0x7f00_0000u32]).unwrap(),
                );
                common::submit_with(|e| {
                    let s = (rows, cols);
                    h.encode_maxima(g, e, &xb, s, 16, Axis::Rows, RANDOM_SIGNS, mask, &amax, Some(&in_amax)).unwrap();
                    let (a, i) = (&tree_amax, Some(&tree_in));
                    tree.encode_maxima(g, e, &xb, s, 16, Axis::Rows, RANDOM_SIGNS, mask, a, i).unwrap();
                    let both = RotateExtras { mask, amax: Some(&want_amax), input_amax: Some(&want_in), sums: None };
                    h.encode_with(g, e, &xb, &rotated, s, 16, Axis::Rows, RANDOM_SIGNS, both).unwrap();
                });
                let what = format!("{format} {rows}x{cols} masked={masked}");
                common::assert_u32_eq(&format!("{what}: maximum"), &amax.read(g).unwrap(), &want_amax.read(g).unwrap());
                common::assert_u32_eq(
                    &format!("{what}: input's"),
                    &in_amax.read(g).unwrap(),
                    &want_in.read(g).unwrap(),
                );
                let (ta, ti) = (tree_amax.read(g).unwrap(), tree_in.read(g).unwrap());
                common::assert_u32_eq(&format!("{what}: tree's maximum"), &ta, &want_amax.read(g).unwrap());
                common::assert_u32_eq(&format!("{what}: tree's input's"), &ti, &want_in.read(g).unwrap());
                let t = format.needs_tensor_amax().then_some(&amax);
                let roundings = [
                    (Rounding::Nearest, 1),
                    (Rounding::Stochastic { seed: 5, stream: 3 }, 1),
                    (Rounding::Stochastic { seed: 5, stream: 3 }, 2),
                ];
                for (rounding, samples) in roundings {
                    let what = format!("{what} {rounding:?} samples={samples}");
                    let codes = GpuBuffer::<u32>::zeros(g, "codes", l.words() * samples as usize).unwrap();
                    let scales = GpuBuffer::<f32>::zeros(g, "scales", l.n_groups as usize * samples as usize).unwrap();
                    let chunks = HadamardQuantizeTranspose::sum_chunks(rows);
                    let sums = GpuBuffer::<f32>::zeros(g, "sums", chunks * cols).unwrap();
                    let extras = RotatedExtras { mask, tensor_amax: t, sums: Some(&sums) };
                    common::submit_with(|e| {
                        k.encode(g, e, &xb, &l, RANDOM_SIGNS, rounding, samples, extras, &codes, &scales).unwrap()
                    });
                    let (codes, scales) = (codes.read(g).unwrap(), scales.read(g).unwrap());
                    if samples == 1 {
                        // x itself in the same launch (entry main_both): L's bits unchanged, and
                        // x's those of quantizing it per block (x's own maximum for NVFP4).
                        let lx = QuantLayout::new(rows, cols, format, Granularity::native(format)).unwrap();
                        assert!(HadamardQuantizeTranspose::supports_both(&l, 16, &lx), "{what}");
                        assert!(HadamardQuantizeTranspose::takes_both(g), "{what}: this adapter binds too few buffers");
                        let rx = match rounding {
                            Rounding::Nearest => Rounding::Nearest,
                            _ => Rounding::Stochastic { seed: 5, stream: 11 },
                        };
                        let zeros_u = |n: usize| GpuBuffer::<u32>::zeros(g, "codes", n).unwrap();
                        let zeros_f = |n: usize| GpuBuffer::<f32>::zeros(g, "scales", n).unwrap();
                        let (bc, bs, bsums) =
                            (zeros_u(l.words()), zeros_f(l.n_groups as usize), zeros_f(chunks * cols));
                        let (xc, xs) = (zeros_u(lx.words()), zeros_f(lx.n_groups as usize));
                        let side = Unrotated {
                            layout: &lx,
                            rounding: rx,
                            tensor_amax: format.needs_tensor_amax().then_some(&in_amax),
                            codes: &xc,
                            scales: &xs,
                        };
                        let extras = RotatedExtras { sums: Some(&bsums), ..extras };
                        common::submit_with(|e| {
                            k.encode_both(g, e, &xb, &l, RANDOM_SIGNS, rounding, extras, (&bc, &bs), side).unwrap()
                        });
                        common::assert_u32_eq(&format!("{what} both: L's codes"), &bc.read(g).unwrap(), &codes);
                        assert_f32_bits_eq(&format!("{what} both: L's scales"), &bs.read(g).unwrap(), &scales);
                        let (got, want) = (bsums.read(g).unwrap(), sums.read(g).unwrap());
                        assert_f32_bits_eq(&format!("{what} both: partial sums"), &got, &want);
                        let read = match masked {
                            true => reference::relu_backward::relu_backward(&y, &x),
                            false => x.clone(),
                        };
                        let (wc, ws) = reference::quantize_fused::quantize_fused(&read, &lx, rx);
                        common::assert_u32_eq(&format!("{what} both: x's codes"), &xc.read(g).unwrap(), &wc);
                        assert_f32_bits_eq(&format!("{what} both: x's scales"), &xs.read(g).unwrap(), &ws);
                        both_cases += 1;
                    }
                    let (words, groups) = (l.words(), l.n_groups as usize);
                    for j in 0..samples as usize {
                        let r = match rounding {
                            Rounding::Stochastic { seed, stream } => {
                                Rounding::Stochastic { seed, stream: stream + j as u32 }
                            }
                            n => n,
                        };
                        let m = masked.then_some(&y[..]);
                        let (wc, ws, wsum) = reference::hadamard_quantize_transpose::hadamard_quantize_transpose(
                            &x,
                            m,
                            &l,
                            RANDOM_SIGNS,
                            r,
                        );
                        let w = format!("{what} sample {j}");
                        common::assert_u32_eq(&format!("{w} codes"), &codes[j * words..][..words], &wc);
                        assert_f32_bits_eq(&format!("{w} scales"), &scales[j * groups..][..groups], &ws);
                        assert_f32_bits_eq(&format!("{w} partial sums"), &sums.read(g).unwrap(), &wsum);
                    }
                    if chunks > 1 {
                        let total = GpuBuffer::<f32>::zeros(g, "total", cols).unwrap();
                        common::submit_with(|e| colsum.encode_finish(g, e, &sums, rows, cols, &total).unwrap());
                        let read = match masked {
                            true => reference::relu_backward::relu_backward(&y, &x),
                            false => x.clone(),
                        };
                        let want = reference::col_sum::col_sum(&read, rows, cols);
                        assert_f32_bits_eq(&format!("{what} sums"), &total.read(g).unwrap(), &want);
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, (3 * 4 + 1) * 2 * 3);
    assert_eq!(both_cases, (3 * 4 + 1) * 2 * 2);
}

/// What the one launch does not take is a clear error: L's rows not in fours, a batch not of
/// whole rotations, per-row scales, NVFP4 without its tensor maximum or another format with one,
/// buffers of the wrong size, samples without stochastic rounding; and beside L, x's own layout
/// not L's transpose in L's format, NVFP4 without x's maximum or MX with one, x's outputs of the
/// wrong size.
#[test]
fn the_one_launch_rotated_quantizer_refuses_what_it_does_not_take() {
    use lowbit::kernels::hadamard_quantize_transpose::{HadamardQuantizeTranspose, RotatedExtras, Unrotated};
    use lowbit::scheme::{Granularity, QuantLayout, Rounding};
    let g = gpu();
    let mx = HadamardQuantizeTranspose::new(g, Format::Mxfp8).unwrap();
    let nv = HadamardQuantizeTranspose::new(g, Format::Nvfp4).unwrap();
    let block = |f: Format, rows, cols| QuantLayout::new(rows, cols, f, Granularity::native(f)).unwrap();
    assert!(!HadamardQuantizeTranspose::supports(&block(Format::Mxfp8, 6, 64), 16), "rows of L not in fours");
    assert!(!HadamardQuantizeTranspose::supports(&block(Format::Mxfp8, 8, 40), 16), "a batch of 40");
    assert!(!HadamardQuantizeTranspose::supports(&block(Format::Mxfp8, 8, 64), 32), "a rotation of 32");
    let per_row = QuantLayout::new(8, 64, Format::Int8, Granularity::PerRow).unwrap();
    assert!(!HadamardQuantizeTranspose::supports(&per_row, 16), "per-row scales");
    let l = block(Format::Mxfp8, 8, 64);
    let x = GpuBuffer::<f32>::zeros(g, "x", 8 * 64).unwrap();
    let codes = GpuBuffer::<u32>::zeros(g, "codes", l.words()).unwrap();
    let scales = GpuBuffer::<f32>::zeros(g, "scales", l.n_groups as usize).unwrap();
    let one = GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap();
    let short = GpuBuffer::<f32>::zeros(g, "short", 7).unwrap();
    let two_sums = GpuBuffer::<f32>::zeros(g, "two sums", 16).unwrap();
    let ln = block(Format::Nvfp4, 8, 64);
    let (nc, ns) = (
        GpuBuffer::<u32>::zeros(g, "codes", ln.words()).unwrap(),
        GpuBuffer::<f32>::zeros(g, "scales", ln.n_groups as usize).unwrap(),
    );
    let none = RotatedExtras::default();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let near = Rounding::Nearest;
    let bad = [
        mx.encode(g, &mut enc, &x, &block(Format::Mxfp8, 6, 64), 0, near, 1, none, &codes, &scales),
        mx.encode(g, &mut enc, &x, &ln, 0, near, 1, none, &codes, &scales),
        nv.encode(g, &mut enc, &x, &ln, 0, near, 1, none, &nc, &ns),
        mx.encode(g, &mut enc, &x, &l, 0, near, 1, RotatedExtras { tensor_amax: Some(&one), ..none }, &codes, &scales),
        mx.encode(g, &mut enc, &x, &l, 0, near, 2, none, &codes, &scales),
    ];
    for (i, r) in bad.into_iter().enumerate() {
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "case {i}: {:?}", r.err());
    }
    let shapes = [
        mx.encode(g, &mut enc, &short, &l, 0, near, 1, none, &codes, &scales),
        mx.encode(g, &mut enc, &x, &l, 0, near, 1, RotatedExtras { sums: Some(&short), ..none }, &codes, &scales),
        // 64 rows are one chunk: one sum per row of L, not two.
        mx.encode(g, &mut enc, &x, &l, 0, near, 1, RotatedExtras { sums: Some(&two_sums), ..none }, &codes, &scales),
        mx.encode(g, &mut enc, &x, &l, 0, near, 1, RotatedExtras { mask: Some(&short), ..none }, &codes, &scales),
        mx.encode(g, &mut enc, &x, &l, 0, near, 1, none, &nc, &scales),
    ];
    for (i, r) in shapes.into_iter().enumerate() {
        assert!(matches!(r, Err(Error::Shape { .. })), "shape case {i}: {:?}", r.err());
    }
    // x itself beside L (encode_both): x's layout not L's transpose, or in another format; NVFP4
    // without x's maximum, MX with one; x's outputs of the wrong size.
    let lx = block(Format::Mxfp8, 64, 8);
    assert!(HadamardQuantizeTranspose::supports_both(&l, 16, &lx));
    let (xc, xs) = (
        GpuBuffer::<u32>::zeros(g, "x codes", lx.words()).unwrap(),
        GpuBuffer::<f32>::zeros(g, "x scales", lx.n_groups as usize).unwrap(),
    );
    let side = Unrotated { layout: &lx, rounding: near, tensor_amax: None, codes: &xc, scales: &xs };
    let (square, mx4) = (block(Format::Mxfp8, 32, 16), block(Format::Mxfp4, 64, 8));
    let int8 = QuantLayout::new(64, 8, Format::Int8, Granularity::PerRow).unwrap();
    for other in [&square, &mx4, &int8] {
        assert!(!HadamardQuantizeTranspose::supports_both(&l, 16, other), "{other:?}");
    }
    let lnx = block(Format::Nvfp4, 64, 8);
    let (nxc, nxs) = (
        GpuBuffer::<u32>::zeros(g, "x codes", lnx.words()).unwrap(),
        GpuBuffer::<f32>::zeros(g, "x scales", lnx.n_groups as usize).unwrap(),
    );
    let nv_side = Unrotated { layout: &lnx, codes: &nxc, scales: &nxs, ..side };
    let nv_extras = RotatedExtras { tensor_amax: Some(&one), ..none };
    let out = (&codes, &scales);
    let bad = [
        mx.encode_both(g, &mut enc, &x, &l, 0, near, none, out, Unrotated { layout: &square, ..side }),
        mx.encode_both(g, &mut enc, &x, &l, 0, near, none, out, Unrotated { layout: &mx4, ..side }),
        mx.encode_both(g, &mut enc, &x, &l, 0, near, none, out, Unrotated { layout: &int8, ..side }),
        nv.encode_both(g, &mut enc, &x, &ln, 0, near, nv_extras, (&nc, &ns), nv_side),
        mx.encode_both(g, &mut enc, &x, &l, 0, near, none, out, Unrotated { tensor_amax: Some(&one), ..side }),
    ];
    for (i, r) in bad.into_iter().enumerate() {
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "both case {i}: {:?}", r.err());
    }
    let shapes = [
        mx.encode_both(g, &mut enc, &x, &l, 0, near, none, out, Unrotated { codes: &nc, ..side }),
        mx.encode_both(g, &mut enc, &x, &l, 0, near, none, out, Unrotated { scales: &short, ..side }),
    ];
    for (i, r) in shapes.into_iter().enumerate() {
        assert!(matches!(r, Err(Error::Shape { .. })), "both shape case {i}: {:?}", r.err());
    }
    // What it takes, it records.
    mx.encode_both(g, &mut enc, &x, &l, 0, near, none, out, side).unwrap();
    g.queue.submit([enc.finish()]);
}

/// What training records for a rotated weight-gradient operand (`Kernels::rotated_transposed`),
/// on any adapter: the one launch (after NVFP4's maxima pass), with the bias gradient through
/// col_sum's second level, gives the chain's codes, scales, unrotated maximum and `col_sum`'s
/// bias gradient, bit for bit, for dY masked by a ReLU's Y — the NVFP4 path included, which
/// training takes only on GPUs — and with dY itself for dX quantized in that launch, the bits of
/// its own quantizer (masked; NVFP4's with the chain's unrotated maximum). dY itself asked of the
/// chain, or in a format the launch does not take, is a clear error.
#[test]
fn the_trainers_rotated_operand_in_one_launch_is_the_chain_bit_for_bit() {
    use lowbit::kernels::hadamard::RANDOM_SIGNS;
    use lowbit::nn::kernels::Kernels;
    use lowbit::scheme::{QuantScheme, Rounding};
    let g = gpu();
    let kk = Kernels::new(g).unwrap();
    for format in [Format::Mxfp8, Format::Nvfp4] {
        // (batch rows, outputs): one col_sum chunk, and 300 chunks' worth.
        for &(rows, n) in &[(48, 8), (19200, 12)] {
            let dy = data(rows * n, 91, false);
            let y: Vec<f32> = data(rows * n, 92, false);
            let (dyb, yb) = (GpuBuffer::from_slice(g, "dy", &dy).unwrap(), GpuBuffer::from_slice(g, "y", &y).unwrap());
            let q =
                QuantScheme { rounding: Rounding::Stochastic { seed: 3, stream: 7 }, ..QuantScheme::native(format) };
            let rot = Some((16, RANDOM_SIGNS));
            let (sums, want_sums) =
                (GpuBuffer::<f32>::zeros(g, "sums", n).unwrap(), GpuBuffer::<f32>::zeros(g, "want", n).unwrap());
            // dY itself for dX, in the same launch where the one launch takes it.
            let d = QuantScheme { rounding: Rounding::Stochastic { seed: 3, stream: 8 }, ..q };
            // (Training takes it wherever it takes the one launch: not for NVFP4 on a CPU adapter.)
            let takes = !(format.needs_tensor_amax() && g.cpu_layouts());
            let trains =
                Kernels::rotates_in_one_pass(g, rows, n, rot, q) && Kernels::takes_unrotated(g, rows, n, rot, q, d);
            assert_eq!(trains, takes, "{format} {rows}x{n}");
            let mut got = None;
            let mut want = None;
            let mut want_dy = None;
            common::submit_with(|e| {
                let (m, s) = (Some(&yb), Some(&sums));
                let both = Some(d);
                got = Some(kk.rotated_transposed(g, e, &dyb, rows, n, rot, m, "dy", q, true, s, true, both).unwrap());
                let w = kk.rotated_transposed(g, e, &dyb, rows, n, rot, m, "dy", q, true, None, false, None).unwrap();
                let t = lowbit::GpuTensor::from_buffer(dyb.clone(), &[rows, n]).unwrap();
                want_dy = Some(match (format.needs_tensor_amax(), &w.1) {
                    (true, Some(a)) => kk.qz.quantize_masked_with_amax(g, e, &t, &yb, d, a).unwrap(),
                    _ => kk.qz.quantize_masked(g, e, &t, &yb, d).unwrap(),
                });
                want = Some(w);
                kk.colsum.encode_masked(g, e, &dyb, &yb, rows, n, &want_sums).unwrap();
            });
            let ((a, a_max, a_dy), (b, b_max, b_dy)) = (got.unwrap(), want.unwrap());
            let what = format!("{format} {rows}x{n}");
            assert!(b_dy.is_none(), "{what}: the chain quantizes no dY");
            let (a_dy, b_dy) = (a_dy.expect("dY from the one launch"), want_dy.unwrap());
            let (got_c, want_c) = (a_dy.codes.read(g).unwrap(), b_dy.codes.read(g).unwrap());
            common::assert_u32_eq(&format!("{what} dY's codes"), &got_c, &want_c);
            let (got_s, want_s) = (a_dy.scales.read(g).unwrap(), b_dy.scales.read(g).unwrap());
            assert_f32_bits_eq(&format!("{what} dY's scales"), &got_s, &want_s);
            common::assert_u32_eq(&format!("{what} codes"), &a.codes.read(g).unwrap(), &b.codes.read(g).unwrap());
            assert_f32_bits_eq(&format!("{what} scales"), &a.scales.read(g).unwrap(), &b.scales.read(g).unwrap());
            let (a_max, b_max) = (a_max.unwrap().read(g).unwrap(), b_max.unwrap().read(g).unwrap());
            common::assert_u32_eq(&format!("{what} unrotated maximum"), &a_max, &b_max);
            assert_f32_bits_eq(&format!("{what} bias gradient"), &sums.read(g).unwrap(), &want_sums.read(g).unwrap());
            // Asked of a shape the one launch does not take, it is a clear error, not the chain.
            let mut enc = g.device.create_command_encoder(&Default::default());
            let r = kk.rotated_transposed(
                g,
                &mut enc,
                &dyb,
                rows,
                n,
                Some((32, 0)),
                None,
                "dy",
                q,
                false,
                None,
                true,
                None,
            );
            assert!(matches!(r, Err(Error::InvalidArgument(_))), "{what}: a rotation of 32 in one launch");
            // dY itself asked of the chain, or in another format, is a clear error too.
            let r = kk.rotated_transposed(g, &mut enc, &dyb, rows, n, rot, None, "dy", q, false, None, false, Some(d));
            assert!(matches!(r, Err(Error::InvalidArgument(_))), "{what}: dY itself beside the chain");
            let int8 = QuantScheme::per_row(Format::Int8);
            let r =
                kk.rotated_transposed(g, &mut enc, &dyb, rows, n, rot, None, "dy", q, false, None, true, Some(int8));
            assert!(matches!(r, Err(Error::InvalidArgument(_))), "{what}: an int8 dY beside {format}");
        }
    }
}

/// The rotation's column sums (NVFP4's weight-gradient chain on a CPU adapter: the bias gradient
/// from the launch that rotates dY): per chunk of `col_sum`'s first level, which its second level
/// adds, bit for bit `col_sum` of x as read (masked or not) — one chunk (64 rows), sixteen, and
/// 228 with a short last one (16,400 rows) — beside the rotated tensor and its maximum unchanged.
/// Asked without the maximum, or of the workgroup tree's rotation (a GPU's), it is an error that
/// records nothing.
#[test]
fn the_rotation_writes_col_sums_bits_beside_its_maximum() {
    use lowbit::kernels::col_sum::ColSum;
    use lowbit::kernels::hadamard::{RotateExtras, RANDOM_SIGNS};
    use lowbit::kernels::hadamard_quantize_transpose::HadamardQuantizeTranspose;
    use lowbit::kernels::quantize_fused::ReducePath;
    use lowbit::Recorder;
    let g = gpu();
    let h = Hadamard::with_reduce_path(g, ReducePath::PerThread).unwrap();
    let tree = Hadamard::with_reduce_path(g, ReducePath::Tree).unwrap();
    let colsum = ColSum::new(g).unwrap();
    let mut cases = 0;
    for &(rows, cols) in &[(64, 24), (1024, 8), (16400, 4)] {
        assert!(h.writes_sums(cols, 16, Axis::Rows) && !tree.writes_sums(cols, 16, Axis::Rows));
        let x = common::as_adapter_sees(&data(rows * cols, 91, false));
        let y = data(rows * cols, 92, false);
        let (xb, yb) = (GpuBuffer::from_slice(g, "x", &x).unwrap(), GpuBuffer::from_slice(g, "y", &y).unwrap());
        let chunks = HadamardQuantizeTranspose::sum_chunks(rows);
        for masked in [false, true] {
            let what = format!("{rows}x{cols} masked={masked} ({chunks} chunks)");
            let mask = masked.then_some(&yb);
            let partial = GpuBuffer::from_slice(g, "partial", &vec![f32::NAN; chunks * cols]).unwrap();
            let (sums, want) = (
                GpuBuffer::from_slice(g, "sums", &vec![f32::NAN; cols]).unwrap(),
                GpuBuffer::from_slice(g, "want", &vec![f32::NAN; cols]).unwrap(),
            );
            let (out, plain) = (
                GpuBuffer::<f32>::zeros(g, "out", x.len()).unwrap(),
                GpuBuffer::<f32>::zeros(g, "plain", x.len()).unwrap(),
            );
            let (amax, plain_amax) =
                (GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap(), GpuBuffer::<u32>::zeros(g, "plain amax", 1).unwrap());
            common::submit_with(|e| {
                let s = (rows, cols);
                let direct = if chunks > 1 { &partial } else { &sums };
                let ex = RotateExtras { mask, amax: Some(&amax), input_amax: None, sums: Some(direct) };
                h.encode_with(g, e, &xb, &out, s, 16, Axis::Rows, RANDOM_SIGNS, ex).unwrap();
                if chunks > 1 {
                    colsum.encode_finish(g, e, &partial, rows, cols, &sums).unwrap();
                }
                let ex = RotateExtras { mask, amax: Some(&plain_amax), ..Default::default() };
                h.encode_with(g, e, &xb, &plain, s, 16, Axis::Rows, RANDOM_SIGNS, ex).unwrap();
                match mask {
                    Some(m) => colsum.encode_masked(g, e, &xb, m, rows, cols, &want).unwrap(),
                    None => colsum.encode(g, e, &xb, rows, cols, &want).unwrap(),
                }
            });
            assert_f32_bits_eq(&format!("{what}: sums"), &sums.read(g).unwrap(), &want.read(g).unwrap());
            assert_f32_bits_eq(&format!("{what}: rotated"), &out.read(g).unwrap(), &plain.read(g).unwrap());
            common::assert_u32_eq(&format!("{what}: maximum"), &amax.read(g).unwrap(), &plain_amax.read(g).unwrap());
            cases += 1;
        }
        // Refused without the maximum, and by the workgroup tree, recording nothing.
        let (out, amax) =
            (GpuBuffer::<f32>::zeros(g, "out", x.len()).unwrap(), GpuBuffer::<u32>::zeros(g, "amax", 1).unwrap());
        let sums = GpuBuffer::<f32>::zeros(g, "sums", chunks * cols).unwrap();
        let mut rec = Recorder::new(g, "refused");
        let no_max = RotateExtras { sums: Some(&sums), ..Default::default() };
        let err = h.encode_with(g, &mut rec, &xb, &out, (rows, cols), 16, Axis::Rows, 0, no_max).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(ref s) if s.contains("without a maximum")), "{err}");
        let on_tree = RotateExtras { amax: Some(&amax), sums: Some(&sums), ..Default::default() };
        let err = tree.encode_with(g, &mut rec, &xb, &out, (rows, cols), 16, Axis::Rows, 0, on_tree).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(ref s) if s.contains("workgroup trees")), "{err}");
        assert_eq!(rec.dispatches(), 0, "{rows}x{cols}: nothing recorded");
    }
    assert_eq!(cases, 6);
}
