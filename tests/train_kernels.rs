//! The training kernels against their references: exact where the arithmetic order is the same
//! (relu_backward, col_sum, im2col/col2im, maxpool), within stated tolerances where a device may
//! fuse a multiply-add (sgd: 2 ulp of the larger operand; adam: 4, its sqrt and division being a
//! few ulp) or evaluate exp/log to a few ulp (softmax_xent: 1e-5 relative + 1e-6 absolute).

mod common;
use common::{assert_f32_bits_eq, assert_u32_eq, buf, data, gpu, submit_with as run};
use lowbit::kernels::adam::{Adam, AdamStep};
use lowbit::kernels::col_sum::ColSum;
use lowbit::kernels::im2col::{ConvGeom, Im2col};
use lowbit::kernels::maxpool::{MaxPool, PoolGeom};
use lowbit::kernels::quantize_fused::ReducePath;
use lowbit::kernels::relu_backward::ReluBackward;
use lowbit::kernels::sgd::{Sgd, SgdStep};
use lowbit::kernels::softmax_xent::SoftmaxXent;
use lowbit::{reference, Error, GpuBuffer};

const XENT_RTOL: f32 = 1e-5;
const XENT_ATOL: f32 = 1e-6;
/// A row's sum of `classes` exps (each at most 1, their sum at least 1) in f32, against the
/// reference's f64: off by at most `classes · 2⁻²⁴` of itself, which the loss (through log, whose
/// slope is at most 1 there) takes as an absolute error and dz as a relative one. Past
/// [`XENT_ATOL`] only for rows of more than 16 classes, past [`XENT_RTOL`] of more than 167.
fn xent_sum_bound(classes: usize) -> f32 {
    classes as f32 * f32::EPSILON / 2.0
}
const SGD_ULPS: f32 = 2.0;
/// AdamW: WGSL's sqrt and division are accurate to a few ulp (2.5 for division), and the update
/// is a small fraction of the weight.
const ADAM_ULPS: f32 = 4.0;

#[test]
fn relu_backward_and_col_sum_are_exact() {
    use lowbit::kernels::{VecPath, TEAM_RUN};
    let g = gpu();
    assert_eq!(ReluBackward::new(g).unwrap().path(), VecPath::for_adapter(g));
    // A thread per value (129·77 values), and per vec4 (128·77; for the teams, and past one
    // workgroup's 32 runs by a partial run), on both paths.
    for path in [VecPath::PerThread, VecPath::Teams] {
        let k = ReluBackward::with_path(g, path).unwrap();
        for (rows, cols) in [(129, 77), (128, 77), (32 * TEAM_RUN as usize + 3, 4)] {
            let y = data(rows * cols, 1, false);
            let dy = data(rows * cols, 2, false);
            let dx = GpuBuffer::<f32>::zeros(g, "dx", rows * cols).unwrap();
            run(|e| k.encode(g, e, &buf(&y), &buf(&dy), &dx).unwrap());
            let want = reference::relu_backward::relu_backward(&y, &dy);
            assert_f32_bits_eq(&format!("relu_backward {rows}x{cols} {path:?}"), &dx.read(g).unwrap(), &want);
            // Two contributions added in the mask's launch: add's sum, then the mask, bit for bit
            // (NaN, infinities, ±0 and subnormals in all three, the latter as the adapter sees
            // them; a NaN sum survives where y > 0, as add's would).
            let (y, dy, dy_b) = (data(rows * cols, 3, true), data(rows * cols, 4, true), data(rows * cols, 5, true));
            run(|e| k.encode_sum(g, e, &buf(&y), &buf(&dy), &buf(&dy_b), &dx).unwrap());
            let seen = common::as_adapter_sees;
            let want = seen(&reference::relu_backward::relu_backward_sum(&seen(&y), &seen(&dy), &seen(&dy_b)));
            assert_f32_bits_eq(&format!("relu_backward sum {rows}x{cols} {path:?}"), &dx.read(g).unwrap(), &want);
        }
        let short = GpuBuffer::<f32>::zeros(g, "short", 3).unwrap();
        let (y, dx) = (buf(&data(4, 6, false)), GpuBuffer::<f32>::zeros(g, "dx", 4).unwrap());
        let mut enc = g.device.create_command_encoder(&Default::default());
        assert!(matches!(k.encode_sum(g, &mut enc, &y, &y, &short, &dx), Err(Error::Shape { .. })));
    }
    // Both reductions of the first level (the workgroup tree, a thread per chunk and column), on
    // any adapter. One chunk, several chunks with a ragged last one, many chunks of a tall thin
    // tensor, and column counts off the 32-column tile.
    let paths = [ReducePath::Tree, ReducePath::PerThread].map(|r| ColSum::with_reduce_path(g, r).unwrap());
    let shapes = [(1, 1), (129, 77), (5, 40), (20011, 3)];
    for (k, (rows, cols)) in paths.iter().flat_map(|k| shapes.map(|s| (k, s))) {
        let dy = data(rows * cols, 3 + rows as u32, false);
        let s = GpuBuffer::<f32>::zeros(g, "s", cols).unwrap();
        run(|e| k.encode(g, e, &buf(&dy), rows, cols, &s).unwrap());
        let want = reference::col_sum::col_sum(&dy, rows, cols);
        assert_f32_bits_eq(&format!("col_sum {rows}x{cols}"), &s.read(g).unwrap(), &want);
        // One launch where the rows make one chunk (at most 64), two otherwise.
        let mut rec = lowbit::Recorder::new(g, "col_sum");
        k.encode(g, &mut rec, &buf(&dy), rows, cols, &s).unwrap();
        assert_eq!(rec.dispatches(), if rows <= 64 { 1 } else { 2 }, "col_sum {rows}x{cols}: launches");
        drop(rec);
        // Masked by Y (zeros, negatives, NaN and infinities among it): the sums of what
        // relu_backward writes.
        let y: Vec<f32> = data(rows * cols, 90 + rows as u32, true)
            .into_iter()
            .enumerate()
            .map(|(i, v)| if i % 7 == 3 { -0.0 } else { v })
            .collect();
        let m = GpuBuffer::<f32>::zeros(g, "m", cols).unwrap();
        run(|e| k.encode_masked(g, e, &buf(&dy), &buf(&y), rows, cols, &m).unwrap());
        let relu = reference::relu_backward::relu_backward(&common::as_adapter_sees(&y), &dy);
        let want_m = reference::col_sum::col_sum(&relu, rows, cols);
        assert_f32_bits_eq(&format!("masked col_sum {rows}x{cols}"), &m.read(g).unwrap(), &want_m);
        // The chunked order still sums: compare with an f64 sum.
        for (j, &w) in want.iter().enumerate() {
            let exact: f64 = (0..rows).map(|i| dy[i * cols + j] as f64).sum();
            assert!(
                (w as f64 - exact).abs() <= 1e-4 * (rows as f64).sqrt() * 4.0,
                "col_sum reference {j}: {w} vs {exact}"
            );
        }
    }
}

#[test]
fn im2col_and_col2im_are_exact_and_adjoint() {
    let g = gpu();
    // Both layouts on any adapter: a thread per value, a thread per row of cols / pixel of dx.
    for (k, per_row) in [false, true].map(|r| (Im2col::with_thread_per_row(g, r).unwrap(), r)) {
        for geom in [
            ConvGeom { batch: 2, h: 7, w: 5, c: 3, kh: 3, kw: 3, stride: 1, pad: 1 },
            ConvGeom { batch: 3, h: 28, w: 28, c: 1, kh: 5, kw: 5, stride: 1, pad: 2 },
            ConvGeom { batch: 1, h: 9, w: 8, c: 4, kh: 3, kw: 2, stride: 2, pad: 0 },
            ConvGeom { batch: 2, h: 9, w: 10, c: 5, kh: 3, kw: 3, stride: 2, pad: 1 },
            // A strided 1×1 convolution (resnet's projection): half the pixels have no tap.
            ConvGeom { batch: 2, h: 8, w: 7, c: 4, kh: 1, kw: 1, stride: 2, pad: 0 },
            // Stride past the kernel, padding wider than one tap: pixels with none, some or one.
            ConvGeom { batch: 1, h: 10, w: 9, c: 2, kh: 2, kw: 3, stride: 3, pad: 2 },
        ] {
            let x = data(geom.input_len(), 3, false);
            // Outputs start as NaN: every value must be written.
            let cols = buf(&vec![f32::NAN; geom.rows() * geom.kdim()]);
            run(|e| k.encode_unfold(g, e, &geom, &buf(&x), &cols).unwrap());
            let want = reference::im2col::im2col(&x, &geom);
            assert_f32_bits_eq(&format!("im2col per_row {per_row} {geom:?}"), &cols.read(g).unwrap(), &want);
            let dcols = data(geom.rows() * geom.kdim(), 4, false);
            let dx = buf(&vec![f32::NAN; geom.input_len()]);
            run(|e| k.encode_fold(g, e, &geom, &buf(&dcols), &dx).unwrap());
            let got = dx.read(g).unwrap();
            let want_dx = reference::im2col::col2im(&dcols, &geom);
            assert_f32_bits_eq(&format!("col2im per_row {per_row} {geom:?}"), &got, &want_dx);
            // Adjoint: <im2col(x), d> = <x, col2im(d)>.
            let lhs: f64 = want.iter().zip(&dcols).map(|(a, b)| *a as f64 * *b as f64).sum();
            let rhs: f64 = x.iter().zip(&got).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!((lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0), "adjoint {lhs} vs {rhs}");
        }
    }
}

#[test]
fn maxpool_forward_and_backward_are_exact() {
    let g = gpu();
    // Both layouts on any adapter (a thread per value, a thread per pixel); outputs start as
    // garbage, so every value must be written. Ties (the first maximum wins) in the third.
    for (k, per_pixel) in [false, true].map(|p| (MaxPool::with_thread_per_pixel(g, p).unwrap(), p)) {
        for geom in [
            PoolGeom { batch: 2, h: 8, w: 6, c: 3, k: 2 },
            PoolGeom { batch: 1, h: 7, w: 7, c: 5, k: 2 },
            PoolGeom { batch: 2, h: 9, w: 6, c: 4, k: 3 },
            // Channels in fours (four at a time per pixel on CPU adapters) with tails.
            PoolGeom { batch: 2, h: 7, w: 5, c: 8, k: 2 },
        ] {
            let mut x = data(geom.in_len(), 5, false);
            if geom.k == 3 {
                x.iter_mut().step_by(3).for_each(|v| *v = 0.5);
            }
            let (y, arg) = (
                buf(&vec![f32::NAN; geom.out_len()]),
                GpuBuffer::from_slice(g, "a", &vec![7u32; geom.out_len()]).unwrap(),
            );
            run(|e| k.encode_forward(g, e, &geom, &buf(&x), &y, &arg).unwrap());
            let (wy, wa) = reference::maxpool::forward(&x, &geom);
            assert_f32_bits_eq(&format!("maxpool y per_pixel {per_pixel}"), &y.read(g).unwrap(), &wy);
            assert_u32_eq(&format!("maxpool arg per_pixel {per_pixel}"), &arg.read(g).unwrap(), &wa);
            let dy = data(geom.out_len(), 6, false);
            let dx = buf(&vec![f32::NAN; geom.in_len()]);
            run(|e| k.encode_backward(g, e, &geom, &buf(&dy), &arg, &dx).unwrap());
            let want_dx = reference::maxpool::backward(&dy, &wa, &geom);
            assert_f32_bits_eq(&format!("maxpool dx per_pixel {per_pixel}"), &dx.read(g).unwrap(), &want_dx);
        }
    }
}

#[test]
fn sgd_and_softmax_xent_match_within_tolerance() {
    let g = gpu();
    let s = SgdStep { lr: 0.05, momentum: 0.9, weight_decay: 5e-4 };
    // The scalar entry and the vec4 one (taken for lengths that are multiples of 4), on any
    // adapter; on llvmpipe (no fused multiply-adds) they give the same bits.
    for n in [1000, 1002] {
        let mut bits: Vec<Vec<u32>> = Vec::new();
        for vec4 in [false, true] {
            let k = Sgd::with_vec4(g, vec4).unwrap();
            let (mut w, mut v) = (data(n, 7, false), data(n, 8, false));
            let grad = data(n, 9, false);
            let (wb, vb) = (buf(&w), buf(&v));
            run(|e| k.encode(g, e, &wb, &vb, &buf(&grad), s).unwrap());
            reference::sgd::sgd(&mut w, &mut v, &grad, s);
            let (gw, gv) = (wb.read(g).unwrap(), vb.read(g).unwrap());
            for (name, got, want) in [("w", &gw, w), ("v", &gv, v)] {
                for (a, b) in got.iter().zip(&want) {
                    let tol = SGD_ULPS * f32::EPSILON * a.abs().max(b.abs()).max(1.0);
                    assert!((a - b).abs() <= tol, "sgd {name} (n {n}, vec4 {vec4}): {a} vs {b}");
                }
            }
            bits.push(gw.iter().chain(&gv).map(|x| x.to_bits()).collect());
        }
        if g.report().name.contains("llvmpipe") {
            assert_u32_eq(&format!("sgd scalar vs vec4, n {n}"), &bits[1], &bits[0]);
        }
    }
    // softmax_xent in both layouts (a thread per row; a workgroup per row) against the reference
    // within the bounds, and against each other bit for bit: ten classes, and 600 (past one round
    // of the workgroup's 256 staged exps), with ties for the largest logit (the first one counts).
    for (rows, classes) in [(300, 10), (37, 600)] {
        let labels: Vec<u32> = (0..rows as u32).map(|i| (i * 7) % classes as u32).collect();
        let mut z = data(rows * classes, 10 + classes as u32, false);
        // Two rows in three: the label's logit and another class's tie for the largest, the other
        // class after the label (the label counts as right) or before it (it does not).
        for r in (0..rows).filter(|r| r % 3 != 2) {
            let (row, t, top) = (&mut z[r * classes..(r + 1) * classes], labels[r] as usize, 2.0 + r as f32);
            let apart = 1 + (r % 5) * (classes / 6);
            let other = if r % 3 == 0 { (t + apart) % classes } else { (t + classes - apart) % classes };
            (row[t], row[other]) = (top, top);
        }
        let lb = GpuBuffer::from_slice(g, "labels", &labels).unwrap();
        let (wl, wc, wd) = reference::softmax_xent::softmax_xent(&z, &labels, classes, 1.0 / rows as f32);
        // (Both outcomes of a tie occur.)
        let tied = |k: usize| (0..rows).filter(|r| r % 3 == k).map(|r| wc[r]).collect::<Vec<u32>>();
        assert!(tied(0).contains(&1) && tied(1).contains(&0), "{:?} {:?}", tied(0), tied(1));
        let mut outputs = vec![];
        for per_row in [false, true] {
            let k = SoftmaxXent::with_workgroup_per_row(g, per_row).unwrap();
            let (loss, correct, dz) = (
                GpuBuffer::<f32>::zeros(g, "l", rows).unwrap(),
                GpuBuffer::<u32>::zeros(g, "c", rows).unwrap(),
                GpuBuffer::<f32>::zeros(g, "dz", rows * classes).unwrap(),
            );
            run(|e| k.encode(g, e, &buf(&z), &lb, classes, 1.0 / rows as f32, &loss, &correct, &dz).unwrap());
            let what = format!("xent {rows}x{classes} (workgroup per row: {per_row})");
            let (loss, correct, dz) = (loss.read(g).unwrap(), correct.read(g).unwrap(), dz.read(g).unwrap());
            assert_u32_eq(&format!("{what} correct"), &correct, &wc);
            let (rtol, atol) = (XENT_RTOL.max(xent_sum_bound(classes)), XENT_ATOL.max(xent_sum_bound(classes)));
            for (name, got, want) in [("loss", &loss, &wl), ("dz", &dz, &wd)] {
                for (a, b) in got.iter().zip(want) {
                    assert!((a - b).abs() <= rtol * b.abs() + atol, "{what} {name}: {a} vs {b}");
                }
            }
            outputs.push([loss, dz]);
        }
        for (t, (a, b)) in ["loss", "dz"].iter().zip(outputs[0].iter().zip(&outputs[1])) {
            assert_f32_bits_eq(&format!("xent {t} {rows}x{classes}: the two layouts"), a, b);
        }
    }
}

#[test]
fn adam_matches_within_tolerance_and_keeps_the_moments() {
    let g = gpu();
    let n = 1000;
    let mut w = data(n, 17, false);
    let mut state = vec![0f32; 2 * n];
    let (wb, sb) = (buf(&w), buf(&state));
    let s = AdamStep { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1 };
    let k = Adam::new(g).unwrap();
    // Three updates with fresh gradients (outside a plan the bias correction is 1).
    for step in 0..3 {
        let grad = data(n, 20 + step, false);
        run(|e| k.encode(g, e, &wb, &sb, &buf(&grad), s).unwrap());
        reference::adam::adam(&mut w, &mut state, &grad, s, 1.0);
    }
    for (name, got, want) in [("w", wb.read(g).unwrap(), w), ("state", sb.read(g).unwrap(), state)] {
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= ADAM_ULPS * f32::EPSILON * a.abs().max(b.abs()).max(1.0),
                "adam {name}: {a} vs {b}"
            );
        }
    }
    let mut enc = g.device.create_command_encoder(&Default::default());
    let bad = AdamStep { beta2: 1.0, ..s };
    assert!(matches!(k.encode(g, &mut enc, &wb, &sb, &wb, bad), Err(Error::InvalidArgument(_))));
    assert!(matches!(k.encode(g, &mut enc, &wb, &wb, &wb, s), Err(Error::Shape { .. })));
    // The bias correction the host computes: at t = 1, sqrt(1 − β2) / (1 − β1).
    let b1 = lowbit::kernels::adam::bias_correction(0.9, 0.99, 1);
    assert!((b1 as f64 - 0.01f64.sqrt() / 0.1).abs() < 1e-5, "{b1}");
}

/// Which optimizer a multi-tensor test drives.
#[derive(Copy, Clone, Debug)]
enum Optim {
    Sgd,
    Adam,
}

/// A tensor's host values for the optimizer tests: weights, state, gradient, weight decay.
type HostTensor = (Vec<f32>, Vec<f32>, Vec<f32>, f32);
/// The weights and state after an update.
type Updated = Vec<(Vec<f32>, Vec<f32>)>;

/// One update of `tensors` (weights, state, gradient, weight decay) by a launcher built with
/// `vec4` and `multi`, recorded in one `Recorder`: the dispatches it took, and the new weights and
/// states.
fn optim_many(which: Optim, vec4: bool, multi: bool, tensors: &[HostTensor]) -> (u64, usize, Updated) {
    use lowbit::kernels::OptimTensor;
    let g = gpu();
    let bufs: Vec<_> = tensors.iter().map(|(w, s, gr, _)| (buf(w), buf(s), buf(gr))).collect();
    let list: Vec<OptimTensor> =
        bufs.iter().zip(tensors).map(|((w, s, gr), t)| OptimTensor { w, state: s, g: gr, weight_decay: t.3 }).collect();
    let lens: Vec<usize> = tensors.iter().map(|t| t.0.len()).collect();
    let mut rec = lowbit::Recorder::new(g, "optimizer");
    let planned = match which {
        Optim::Sgd => {
            let k = Sgd::with_options(g, vec4, multi).unwrap();
            k.encode_many(g, &mut rec, &list, 0.05, 0.9).unwrap();
            k.dispatches(&lens)
        }
        Optim::Adam => {
            let k = Adam::with_options(g, vec4, multi).unwrap();
            let s = AdamStep { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: f32::NAN };
            k.encode_many(g, &mut rec, &list, s).unwrap();
            k.dispatches(&lens)
        }
    };
    let n = rec.dispatches();
    g.queue.submit([rec.finish()]);
    (n, planned, bufs.iter().map(|(w, s, _)| (w.read(g).unwrap(), s.read(g).unwrap())).collect())
}

#[test]
fn optimizers_update_many_tensors_in_few_dispatches_as_their_references() {
    let g = gpu();
    // Twelve tensors (two dispatches of eight slots), lengths multiples of 4 and not, off the
    // workgroup, one of a single value, one over two workgroups of the 8-slot vec4 entry's teams
    // (32,768 values each); weight decay per tensor, some without.
    let lens = [1000usize, 1002, 10, 1, 4096, 300, 17, 256, 257, 2048, 12, 70_000];
    for which in [Optim::Sgd, Optim::Adam] {
        let per = match which {
            Optim::Sgd => 1,
            Optim::Adam => 2,
        };
        let tensors: Vec<_> = lens
            .iter()
            .enumerate()
            .map(|(j, &n)| {
                let state: Vec<f32> = data(per * n, 40 + j as u32, false).iter().map(|x| x.abs()).collect();
                let wd = if j % 3 == 0 { 0.0 } else { 1e-3 * (j + 1) as f32 };
                (data(n, 20 + j as u32, false), state, data(n, 60 + j as u32, false), wd)
            })
            .collect();
        let mut want = Vec::new();
        for (w, s, gr, wd) in &tensors {
            let (mut w, mut s) = (w.clone(), s.clone());
            match which {
                Optim::Sgd => {
                    reference::sgd::sgd(&mut w, &mut s, gr, SgdStep { lr: 0.05, momentum: 0.9, weight_decay: *wd })
                }
                Optim::Adam => {
                    let a = AdamStep { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: *wd };
                    reference::adam::adam(&mut w, &mut s, gr, a, 1.0)
                }
            }
            want.push((w, s));
        }
        let ulps = match which {
            Optim::Sgd => SGD_ULPS,
            Optim::Adam => ADAM_ULPS,
        };
        let mut runs = Vec::new();
        for (vec4, multi) in [(false, false), (true, false), (false, true), (true, true)] {
            let (n, planned, got) = optim_many(which, vec4, multi, &tensors);
            // Multi: eight tensors a dispatch, those of lengths a multiple of 4 apart under vec4.
            let expect = match (vec4, multi) {
                (_, false) => lens.len(),
                (false, true) => 2,
                (true, true) => 2,
            };
            assert_eq!((n, planned), (expect as u64, expect), "{which:?} vec4 {vec4} multi {multi}: dispatches");
            for (j, ((gw, gs), (ww, ws))) in got.iter().zip(&want).enumerate() {
                for (name, a, b) in [("w", gw, ww), ("state", gs, ws)] {
                    for (i, (x, y)) in a.iter().zip(b).enumerate() {
                        let tol = ulps * f32::EPSILON * x.abs().max(y.abs()).max(1.0);
                        assert!(
                            (x - y).abs() <= tol,
                            "{which:?} vec4 {vec4} multi {multi} tensor {j} {name}[{i}]: {x} vs {y}"
                        );
                    }
                }
            }
            runs.push(got);
        }
        // The same arithmetic per value on every path: on llvmpipe (no fused multiply-adds), the
        // same bits.
        if g.report().name.contains("llvmpipe") {
            for r in &runs[1..] {
                for (j, (a, b)) in r.iter().zip(&runs[0]).enumerate() {
                    assert_f32_bits_eq(&format!("{which:?} tensor {j} w"), &a.0, &b.0);
                    assert_f32_bits_eq(&format!("{which:?} tensor {j} state"), &a.1, &b.1);
                }
            }
        }
    }
}

#[test]
fn optimizers_refuse_bad_tensor_lists_and_record_nothing() {
    use lowbit::kernels::OptimTensor;
    let g = gpu();
    let (w, v, gr, u, short) = (buf(&[1.0; 8]), buf(&[0.0; 8]), buf(&[0.5; 8]), buf(&[2.0; 8]), buf(&[0.0; 7]));
    let (w2, v2) = (buf(&[1.0; 8]), buf(&[0.0; 8]));
    let t = |w, state, g, weight_decay| OptimTensor { w, state, g, weight_decay };
    let sgd = Sgd::new(g).unwrap();
    let adam = Adam::new(g).unwrap();
    let a = AdamStep { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.0 };
    let (m2, m3) = (buf(&[0.0; 16]), buf(&[0.0; 16]));
    let cases: Vec<(&str, Vec<OptimTensor>, bool)> = vec![
        ("empty", vec![], false),
        ("short state", vec![t(&w, &short, &gr, 0.0)], true),
        ("short gradient", vec![t(&w, &v, &short, 0.0)], true),
        ("weights twice", vec![t(&w, &v, &gr, 0.0), t(&w, &v2, &gr, 0.0)], false),
        ("weights as state", vec![t(&w, &v, &gr, 0.0), t(&w2, &w, &gr, 0.0)], false),
        ("gradient written", vec![t(&w, &v, &gr, 0.0), t(&w2, &v2, &w, 0.0)], false),
        ("NaN decay", vec![t(&w, &v, &gr, 0.0), t(&u, &v2, &gr, f32::NAN)], false),
    ];
    for (what, list, shape) in &cases {
        let mut rec = lowbit::Recorder::new(g, "refused");
        let r = sgd.encode_many(g, &mut rec, list, 0.1, 0.9);
        let ok = match r {
            Err(Error::Shape { .. }) => *shape,
            Err(Error::Empty(_)) => *what == "empty",
            Err(Error::InvalidArgument(_)) => !*shape && *what != "empty",
            _ => false,
        };
        assert!(ok, "sgd, {what}: {r:?}");
        assert_eq!(rec.dispatches(), 0, "sgd, {what}: recorded before refusing");
        // Adam's state is twice the weights: v and v2 stand in for moments of their own.
        let list: Vec<OptimTensor> = list
            .iter()
            .map(|x| match x.state.buffer() {
                b if b == v.buffer() => OptimTensor { state: &m2, ..*x },
                b if b == v2.buffer() => OptimTensor { state: &m3, ..*x },
                _ => *x,
            })
            .collect();
        let r = adam.encode_many(g, &mut rec, &list, a);
        assert!(r.is_err(), "adam, {what}: accepted");
        assert_eq!(rec.dispatches(), 0, "adam, {what}: recorded before refusing");
    }
    let mut rec = lowbit::Recorder::new(g, "refused");
    let r = sgd.encode_many(g, &mut rec, &[t(&w, &v, &gr, 0.0)], f32::INFINITY, 0.9);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let r = adam.encode_many(g, &mut rec, &[t(&w, &m2, &gr, 0.0)], AdamStep { beta1: 1.0, ..a });
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(rec.dispatches(), 0);
    // Nothing above changed the buffers.
    assert_f32_bits_eq("w untouched", &w.read(g).unwrap(), &[1.0; 8]);
    assert_f32_bits_eq("v untouched", &v.read(g).unwrap(), &[0.0; 8]);
}

#[test]
fn training_kernels_reject_bad_shapes() {
    let g = gpu();
    let mut enc = g.device.create_command_encoder(&Default::default());
    let a = GpuBuffer::<f32>::zeros(g, "a", 10).unwrap();
    let b = GpuBuffer::<f32>::zeros(g, "b", 9).unwrap();
    assert!(matches!(ReluBackward::new(g).unwrap().encode(g, &mut enc, &a, &b, &a), Err(Error::Shape { .. })));
    assert!(matches!(ColSum::new(g).unwrap().encode(g, &mut enc, &a, 3, 3, &b), Err(Error::Shape { .. })));
    let geom = ConvGeom { batch: 1, h: 2, w: 2, c: 1, kh: 5, kw: 5, stride: 1, pad: 0 };
    assert!(matches!(
        Im2col::new(g).unwrap().encode_unfold(g, &mut enc, &geom, &a, &b),
        Err(Error::InvalidArgument(_))
    ));
    let pg = PoolGeom { batch: 1, h: 1, w: 4, c: 1, k: 2 };
    let u = GpuBuffer::<u32>::zeros(g, "u", 2).unwrap();
    assert!(matches!(
        MaxPool::new(g).unwrap().encode_forward(g, &mut enc, &pg, &a, &b, &u),
        Err(Error::InvalidArgument(_))
    ));
    g.queue.submit([enc.finish()]);
}

#[test]
fn avgpool_is_exact() {
    use lowbit::kernels::avgpool::AvgPool;
    let g = gpu();
    // Both layouts on any adapter (a thread per value, a thread per pixel); outputs start as
    // garbage, so every value must be written, dropped edge pixels' dx included.
    for (k, per_pixel) in [false, true].map(|p| (AvgPool::with_thread_per_pixel(g, p).unwrap(), p)) {
        for geom in [
            PoolGeom { batch: 2, h: 8, w: 6, c: 3, k: 2 },
            PoolGeom { batch: 1, h: 7, w: 9, c: 2, k: 3 },
            // Channels in fours (four at a time per pixel on CPU adapters) with dropped edges.
            PoolGeom { batch: 2, h: 7, w: 5, c: 8, k: 2 },
            // A ResNet's global pooling: one window over the whole image.
            PoolGeom { batch: 3, h: 8, w: 8, c: 12, k: 8 },
        ] {
            let x = data(geom.in_len(), 12, false);
            let y = buf(&vec![f32::NAN; geom.out_len()]);
            run(|e| k.encode_forward(g, e, &geom, &buf(&x), &y).unwrap());
            let want_y = reference::avgpool::forward(&x, &geom);
            assert_f32_bits_eq(&format!("avgpool y per_pixel {per_pixel}"), &y.read(g).unwrap(), &want_y);
            let dy = data(geom.out_len(), 13, false);
            let dx = buf(&vec![f32::NAN; geom.in_len()]);
            run(|e| k.encode_backward(g, e, &geom, &buf(&dy), &dx).unwrap());
            let want_dx = reference::avgpool::backward(&dy, &geom);
            assert_f32_bits_eq(&format!("avgpool dx per_pixel {per_pixel}"), &dx.read(g).unwrap(), &want_dx);
        }
    }
}

#[test]
fn batchnorm_commits_many_layers_in_few_launches_as_its_reference() {
    // Eleven layers (two launches of eight slots where the adapter binds them), channels past
    // one workgroup and single ones; each layer's running statistics as the reference blends
    // them, bit for bit on llvmpipe (no fused multiply-adds), else within 2 ulp of the larger
    // operand (as sgd's); refusals record nothing.
    use lowbit::kernels::batchnorm::{stats_len, BatchNorm};
    use lowbit::kernels::batchnorm_commit::{BatchNormCommit, NormCommit};
    let g = gpu();
    let k = BatchNorm::new(g).unwrap();
    let per = BatchNormCommit::new(g).unwrap().per_dispatch();
    let channels = [3usize, 300, 1, 16, 64, 257, 2, 5, 32, 7, 600];
    let stats: Vec<Vec<f32>> =
        channels.iter().enumerate().map(|(j, &c)| data(stats_len(c), 20 + j as u32, false)).collect();
    let running: Vec<Vec<f32>> = channels.iter().enumerate().map(|(j, &c)| data(2 * c, 40 + j as u32, false)).collect();
    let (sb, rb): (Vec<GpuBuffer<f32>>, Vec<GpuBuffer<f32>>) =
        (stats.iter().map(|v| buf(v)).collect(), running.iter().map(|v| buf(v)).collect());
    let layers: Vec<NormCommit> =
        channels.iter().enumerate().map(|(j, &c)| NormCommit { stats: &sb[j], running: &rb[j], channels: c }).collect();
    let mut rec = lowbit::Recorder::new(g, "commit");
    k.encode_commit_many(g, &mut rec, &layers).unwrap();
    assert_eq!(rec.dispatches() as usize, channels.len().div_ceil(per), "launches ({per} layers each)");
    g.queue.submit([rec.finish()]);
    let llvmpipe = g.report().name.contains("llvmpipe");
    for j in 0..channels.len() {
        let got = rb[j].read(g).unwrap();
        let want = reference::batchnorm_commit::commit(&stats[j], &running[j]);
        if llvmpipe {
            assert_f32_bits_eq(&format!("layer {j} running"), &got, &want);
        } else {
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                let tol = 2.0 * f32::EPSILON * a.abs().max(b.abs());
                assert!((a - b).abs() <= tol, "layer {j} running[{i}]: {a} vs {b}");
            }
        }
    }
    // Refused before anything is recorded: no layers, no channels, wrong lengths, a running buffer
    // twice, statistics that are a running buffer.
    let (s3, r3, r3b, r2, r5) = (buf(&[1.0; 9]), buf(&[0.5; 6]), buf(&[0.5; 6]), buf(&[0.5; 4]), buf(&[0.5; 5]));
    let l = |stats, running, channels| NormCommit { stats, running, channels };
    let cases: Vec<(&str, Vec<NormCommit>)> = vec![
        ("empty", vec![]),
        ("no channels", vec![l(&s3, &r3, 0)]),
        ("short stats", vec![l(&r3b, &r3, 3)]),
        ("short running", vec![l(&s3, &r5, 3)]),
        ("running twice", vec![l(&s3, &r3, 3), l(&s3, &r3, 3)]),
        // Layer 1's statistics (two channels: 6 values) are layer 0's running buffer.
        ("stats written", vec![l(&s3, &r3, 3), l(&r3, &r2, 2)]),
    ];
    for (what, list) in &cases {
        let mut rec = lowbit::Recorder::new(g, "refused");
        assert!(k.encode_commit_many(g, &mut rec, list).is_err(), "{what}: accepted");
        assert_eq!(rec.dispatches(), 0, "{what}: recorded before refusing");
    }
    assert_f32_bits_eq("r3 untouched", &r3.read(g).unwrap(), &[0.5; 6]);
}

#[test]
fn batchnorm_matches_the_f64_reference() {
    // f32 sums over up to a few hundred rows and WGSL's sqrt (not correctly rounded): compare
    // within BN_RTOL of the magnitude of each quantity.
    const BN_RTOL: f32 = 2e-4;
    use lowbit::kernels::batchnorm::{BatchNorm, NormBuffers};
    let g = gpu();
    let k = BatchNorm::new(g).unwrap();
    // Both reductions of the partial sums (and, per thread, the vec4 elementwise passes), on any
    // adapter; on llvmpipe (no fused multiply-adds) they give the same bits.
    let paths = [ReducePath::Tree, ReducePath::PerThread].map(|r| BatchNorm::with_reduce_path(g, r).unwrap());
    let mut outputs: Vec<Vec<Vec<f32>>> = vec![Vec::new(), Vec::new()];
    // Several chunks of the two-level sums; channels past one 32-channel tile; the smallest
    // batch; a tall input with many chunks.
    for (pi, k) in paths.iter().enumerate() {
        // (130, 32), (3, 4): channels in fours (a vec4 of channels over 8 rows per thread on CPU
        // adapters, the last rows ragged).
        for (rows, c) in [(300, 7), (130, 41), (2, 3), (20011, 2), (130, 32), (3, 4)] {
            let x: Vec<f32> = data(rows * c, 14, false)
                .iter()
                .enumerate()
                .map(|(i, v)| v * (1.0 + (i % c) as f32) + (i % c) as f32)
                .collect();
            let affine: Vec<f32> = (0..2 * c).map(|i| 0.5 + 0.1 * i as f32).collect();
            let running: Vec<f32> = (0..2 * c).map(|i| if i < c { 0.0 } else { 1.0 }).collect();
            let dy = data(rows * c, 15, false);
            for relu in [false, true] {
                let (xb, ab, rb) = (buf(&x), buf(&affine), buf(&running));
                let (st, y, dxb, sums) = (
                    GpuBuffer::<f32>::zeros(g, "st", lowbit::kernels::batchnorm::stats_len(c)).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "y", rows * c).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "dx", rows * c).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "s", 2 * c).unwrap(),
                );
                let dyb = buf(&dy);
                let b = NormBuffers {
                    x: &xb,
                    stats: &st,
                    affine: &ab,
                    running: &rb,
                    y: &y,
                    dy: Some(&dyb),
                    dx: Some(&dxb),
                    sums: Some(&sums),
                };
                run(|e| {
                    k.encode_train_forward(g, e, &b, rows, c, relu).unwrap();
                    k.encode_backward(g, e, &b, rows, c, relu).unwrap();
                });
                let (wst, wrun) = reference::batchnorm::stats(&x, rows, c, &running);
                let wy = reference::batchnorm::forward(&x, c, &wst, &affine, relu);
                let gy = y.read(g).unwrap();
                let gst = st.read(g).unwrap();
                let (wsums, wdx) = reference::batchnorm::backward(&x, &gy, &dy, c, &gst[..2 * c], &affine, relu);
                let close = |name: &str, got: &[f32], want: &[f32]| {
                    let scale = want.iter().map(|v| v.abs()).fold(1e-3f32, f32::max);
                    for (i, (a, b)) in got.iter().zip(want).enumerate() {
                        assert!((a - b).abs() <= BN_RTOL * scale, "batchnorm {name}[{i}] (relu {relu}): {a} vs {b}");
                    }
                };
                close("stats", &gst[..2 * c], &wst);
                close("running", &rb.read(g).unwrap(), &wrun);
                close("y", &gy, &wy);
                close("sums", &sums.read(g).unwrap(), &wsums);
                close("dx", &dxb.read(g).unwrap(), &wdx);
                // Inference uses the running statistics.
                let y2 = GpuBuffer::<f32>::zeros(g, "y2", rows * c).unwrap();
                let b2 = NormBuffers { y: &y2, dy: None, dx: None, sums: None, ..b };
                run(|e| k.encode_eval_forward(g, e, &b2, rows, c, relu).unwrap());
                let run_now = rb.read(g).unwrap();
                let st_eval: Vec<f32> =
                    (0..2 * c)
                        .map(|i| {
                            if i < c {
                                run_now[i]
                            } else {
                                1.0 / (run_now[i] + lowbit::kernels::batchnorm::EPS).sqrt()
                            }
                        })
                        .collect();
                close("y (eval)", &y2.read(g).unwrap(), &reference::batchnorm::forward(&x, c, &st_eval, &affine, relu));
                outputs[pi].extend([gst, gy, sums.read(g).unwrap(), dxb.read(g).unwrap()]);
            }
        }
    }
    if g.report().name.contains("llvmpipe") {
        for (i, (a, b)) in outputs[0].iter().zip(&outputs[1]).enumerate() {
            assert_f32_bits_eq(&format!("batchnorm output {i}: tree vs a thread per channel"), b, a);
        }
    }
    // Means far from zero against a unit spread, over many chunks with a ragged last one: the
    // variance merged from the chunks' own moments keeps its relative accuracy (Σx² − R·mean²
    // in f32 would lose it all at a mean of 3000), so 1/std holds BN_RTOL of itself.
    let (rows, c) = (20011, 3);
    let x: Vec<f32> =
        data(rows * c, 16, false).iter().enumerate().map(|(i, v)| 1000.0 * (1 + i % c) as f32 + v).collect();
    let (want, _) = reference::batchnorm::stats(&x, rows, c, &[0.0; 6]);
    for k in &paths {
        let (xb, st, ab, rb, y) = (
            buf(&x),
            GpuBuffer::<f32>::zeros(g, "st", lowbit::kernels::batchnorm::stats_len(c)).unwrap(),
            buf(&[1f32, 1.0, 1.0, 0.0, 0.0, 0.0]),
            buf(&[0f32; 6]),
            GpuBuffer::<f32>::zeros(g, "y", rows * c).unwrap(),
        );
        let b = NormBuffers { x: &xb, stats: &st, affine: &ab, running: &rb, y: &y, dy: None, dx: None, sums: None };
        run(|e| k.encode_train_forward(g, e, &b, rows, c, false).unwrap());
        let got = st.read(g).unwrap();
        for ch in 0..c {
            let (a, w) = (got[c + ch], want[c + ch]);
            assert!((a - w).abs() <= BN_RTOL * w, "batchnorm invstd[{ch}] at mean {}: {a} vs {w}", want[ch]);
        }
    }
    // One value per channel has no batch statistics.
    let one = buf(&[1.0f32, 2.0]);
    let (st, ab, rb, y) = (buf(&[0f32; 6]), buf(&[1f32, 1.0, 0.0, 0.0]), buf(&[0f32, 0.0, 1.0, 1.0]), buf(&[0f32; 2]));
    let b = NormBuffers { x: &one, stats: &st, affine: &ab, running: &rb, y: &y, dy: None, dx: None, sums: None };
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(k.encode_train_forward(g, &mut enc, &b, 1, 2, false), Err(lowbit::Error::InvalidArgument(_))));
}

#[test]
fn mse_gradient_is_exact_and_loss_within_tolerance() {
    // The loss sums squares in f32 (possibly fused into FMAs): MSE_RTOL of its magnitude.
    const MSE_RTOL: f64 = 1e-5;
    use lowbit::kernels::mse::Mse;
    let g = gpu();
    let k = Mse::new(g).unwrap();
    for (rows, cols) in [(1usize, 1usize), (300, 7), (3, 1000)] {
        let y = data(rows * cols, 21, false);
        let t = data(rows * cols, 22, false);
        let (loss, dy) =
            (GpuBuffer::<f32>::zeros(g, "l", rows).unwrap(), GpuBuffer::<f32>::zeros(g, "dy", rows * cols).unwrap());
        run(|e| k.encode(g, e, &buf(&y), &buf(&t), rows, cols, 1.0 / rows as f32, &loss, &dy).unwrap());
        let (wl, wdy) = reference::mse::mse(&y, &t, cols, 1.0 / rows as f32);
        assert_f32_bits_eq(&format!("mse dy {rows}x{cols}"), &dy.read(g).unwrap(), &wdy);
        for (a, b) in loss.read(g).unwrap().iter().zip(&wl) {
            assert!((*a as f64 - b).abs() <= MSE_RTOL * b.max(1e-30), "mse loss {a} vs {b}");
        }
    }
    let one = buf(&[1f32]);
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(k.encode(g, &mut enc, &one, &buf(&[1f32, 2.0]), 1, 1, 1.0, &one, &one).is_err());
}

#[test]
fn both_copy_paths_copy_every_vector_exactly() {
    use lowbit::kernels::copy::Copy;
    use lowbit::kernels::{VecPath, TEAM_RUN};
    let g = gpu();
    // One value (one padded vec4); a team's run and a bit; two workgroups of teams and 5 vec4s more.
    for n in [1usize, 4 * TEAM_RUN as usize + 7, 4 * (32 * TEAM_RUN as usize + 5)] {
        let x = data(n, 9, true);
        let xb = buf(&x);
        for path in [VecPath::PerThread, VecPath::Teams] {
            let k = Copy::with_path(g, path).unwrap();
            assert_eq!(k.path(), path);
            let y = GpuBuffer::<f32>::zeros(g, "y", n).unwrap();
            run(|e| k.encode(g, e, &xb, &y).unwrap());
            assert_f32_bits_eq(&format!("{path:?}, {n} values"), &y.read(g).unwrap(), &reference::copy::copy(&x));
        }
    }
    let expect = if g.cpu_layouts() { VecPath::Teams } else { VecPath::PerThread };
    assert_eq!(Copy::new(g).unwrap().path(), expect);
}

#[test]
fn a_recorder_chains_dependent_dispatches_and_copies_in_order() {
    use lowbit::kernels::copy::Copy;
    use lowbit::{Record, Recorder};
    let g = gpu();
    let copy = Copy::new(g).unwrap();
    let x = data(1000, 5, false);
    let a = buf(&x);
    let [b, c, d, e] = ["b", "c", "d", "e"].map(|l| GpuBuffer::<f32>::zeros(g, l, x.len()).unwrap());
    let mut rec = Recorder::new(g, "chain");
    // b and c in one pass (c reads what the dispatch before wrote), a copy outside it, then e.
    copy.encode(g, &mut rec, &a, &b).unwrap();
    copy.encode(g, &mut rec, &b, &c).unwrap();
    rec.copy(c.buffer(), 0, d.buffer(), 0, c.bytes());
    copy.encode(g, &mut rec, &d, &e).unwrap();
    g.submit([rec.finish()]);
    assert_f32_bits_eq("a -> b -> c -> d -> e", &e.read(g).unwrap(), &x);
}

#[test]
fn add_and_relu_are_exact_with_nan_mapped_to_zero_by_relu() {
    use lowbit::kernels::add::Add;
    use lowbit::kernels::{VecPath, TEAM_RUN};
    let g = gpu();
    let k = Add::new(g).unwrap();
    assert_eq!(k.path(), VecPath::for_adapter(g));
    let paths = [Add::with_path(g, VecPath::PerThread).unwrap(), Add::with_path(g, VecPath::Teams).unwrap()];
    // A thread per value (1757), and per vec4 (1756; and for the teams, past one workgroup's 32
    // runs by a partial run).
    let long = 4 * (32 * TEAM_RUN as usize + 3);
    for (k, n, with_b, relu) in paths.iter().flat_map(|k| {
        [1757, 1756, long].into_iter().flat_map(move |n| {
            [(true, false), (true, true), (false, true), (false, false)].map(move |(b, r)| (k, n, b, r))
        })
    }) {
        let (a, b) = (data(n, 41, true), data(n, 42, true));
        let y = GpuBuffer::<f32>::zeros(g, "y", n).unwrap();
        let (ab, bb) = (buf(&a), buf(&b));
        run(|e| k.encode(g, e, &ab, with_b.then_some(&bb), relu, &y).unwrap());
        // Subnormal inputs and results as the adapter's arithmetic and comparisons see them
        // (flushed on NVIDIA); a plain copy (no b, no ReLU) moves them unchanged.
        let seen = |v: &[f32]| if with_b || relu { common::as_adapter_sees(v) } else { v.to_vec() };
        let want = seen(&reference::add::add(&seen(&a), with_b.then_some(&seen(&b)[..]), relu));
        let got = y.read(g).unwrap();
        assert_f32_bits_eq(&format!("add {n} {:?} (b {with_b}, relu {relu})", k.path()), &got, &want);
        if relu {
            // NaN inputs (the data has some) come out as 0 under ReLU, never as NaN.
            assert!(a.iter().any(|v| v.is_nan()) && got.iter().all(|v| !v.is_nan()));
        }
    }
    let (n, a) = (1757, data(1757, 41, true));
    let short = GpuBuffer::<f32>::zeros(g, "short", n - 1).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(k.encode(g, &mut enc, &buf(&a), Some(&short), false, &short), Err(Error::Shape { .. })));
}

#[test]
fn finite_flags_a_nan_or_inf_anywhere_in_any_buffer_on_both_paths() {
    use lowbit::kernels::finite::{Finite, CLEAR, NARROW, WIDE};
    let g = gpu();
    // Thirty buffers (four dispatches of eight, eight, eight and six; two of the wide entries'
    // 24 and six), lengths around the per-thread entries' 16 values (64 for the vec4 entry), a
    // workgroup's 256 values (16384 for the vec4 entry) and several of the vec4 entry's
    // workgroups.
    let lens = [
        1usize, 300, 7, 5000, 16, 17, 255, 257, 3, 40, 40_000, 4, 9, 64, 65, 1023, 1024, 1025, 16_384, 16_385, 2, 12,
        100, 31, 33, 500, 777, 8, 20_000, 6,
    ];
    let clean: Vec<Vec<f32>> = lens.iter().enumerate().map(|(j, &n)| data(n, 200 + j as u32, false)).collect();
    let need = lowbit::kernels::finite::WIDE_STORAGE;
    assert!(Finite::wide_fits(g), "the wide entries' test needs {need} storage buffers a stage (lavapipe binds 48)");
    // Each entry: the tree, and on the per-thread path the vec4 entry and the scalar one (an
    // application's buffers that do not hold whole vec4s), eight and 24 buffers a dispatch.
    let entries = [(ReducePath::Tree, false), (ReducePath::PerThread, true), (ReducePath::PerThread, false)];
    for ((path, vec4), per) in entries.into_iter().flat_map(|e| [(e, NARROW), (e, WIDE)]) {
        let k = Finite::with_buffers(g, path, vec4, per).unwrap();
        assert_eq!(k.per_dispatch(), per);
        let path = format!("{path:?} (vec4 {vec4}), {per} a dispatch");
        let check = |xs: &[Vec<f32>], start: [u32; 2], what: &str| {
            let bufs: Vec<GpuBuffer<f32>> = xs.iter().map(|x| buf(x)).collect();
            let status = GpuBuffer::from_slice(g, "status", &start).unwrap();
            run(|e| k.encode(g, e, &bufs.iter().collect::<Vec<_>>(), &status).unwrap());
            let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
            let want = reference::finite::finite(&refs, 0, start);
            assert_u32_eq(&format!("{path} {what}"), &status.read(g).unwrap(), &want);
        };
        check(&clean, CLEAR, "all finite");
        for j in 0..lens.len() {
            for (pos, bad) in [(0, f32::NAN), (lens[j] / 2, f32::INFINITY), (lens[j] - 1, f32::NEG_INFINITY)] {
                let mut xs = clean.clone();
                xs[j][pos] = bad;
                check(&xs, CLEAR, &format!("{bad} at {pos} of buffer {j}"));
                // Sticky: a flag already set stays set, and the first step stays the lower one.
                check(&xs, [1, 7], &format!("{bad} at {pos} of buffer {j}, flag set"));
            }
        }
        // Every position within a thread's 16 values and a workgroup's 256 (buffer 3 starts at
        // value 308 of the ten).
        for pos in 0..300 {
            let mut xs = clean.clone();
            xs[3][pos] = f32::NAN;
            check(&xs, CLEAR, &format!("NaN at {pos} of buffer 3"));
        }
    }
}

/// The per-thread path reads lowbit's buffers as vec4s, so it must ignore what lies past a
/// buffer's length (a plan's arena holds other values there), and an application's buffer that
/// does not hold whole vec4s takes the scalar entry: both give the reference's status.
#[test]
fn finite_ignores_values_past_a_buffers_length_and_reads_any_buffer_an_application_binds() {
    use lowbit::kernels::finite::{Finite, CLEAR, NARROW, WIDE};
    let g = gpu();
    assert!(matches!(Finite::with_options(g, ReducePath::Tree, true), Err(Error::InvalidArgument(_))));
    for per in [0, 7, 9, 16, 25] {
        let k = Finite::with_buffers(g, ReducePath::PerThread, true, per);
        assert!(matches!(k, Err(Error::InvalidArgument(_))), "{per} buffers a dispatch");
    }
    // A buffer of `words` f32 holding `x`, with NaN in every word past it.
    let raw = |x: &[f32], words: usize| {
        let mut v = x.to_vec();
        v.resize(words, f32::NAN);
        let b = g.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("application buffer"),
            size: (words * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        g.queue.write_buffer(&b, 0, bytemuck::cast_slice(&v));
        GpuBuffer::<f32>::from_wgpu(b, x.len()).unwrap()
    };
    for (path, per) in [ReducePath::Tree, ReducePath::PerThread].into_iter().flat_map(|p| [(p, NARROW), (p, WIDE)]) {
        let k = Finite::with_buffers(g, path, path == ReducePath::PerThread, per).unwrap();
        for len in [1usize, 5, 17, 30, 33] {
            let clean = data(len, 300 + len as u32, false);
            // Whole vec4s with NaN past the values (the vec4 entry must ignore them), an odd
            // count of words past the values and exactly the values (not whole vec4s unless len
            // is a multiple of 4: the scalar entry).
            let odd = if len % 2 == 0 { len + 1 } else { len + 2 };
            for words in [len.div_ceil(4) * 4, odd, len] {
                for bad in [None, Some(0), Some(len - 1)] {
                    let mut x = clean.clone();
                    if let Some(i) = bad {
                        x[i] = f32::INFINITY;
                    }
                    let b = raw(&x, words);
                    let other = buf(&data(40, 7, false));
                    let status = GpuBuffer::from_slice(g, "status", &CLEAR).unwrap();
                    run(|e| k.encode(g, e, &[&other, &b], &status).unwrap());
                    let want = reference::finite::finite(&[&x], 0, CLEAR);
                    let what = format!("{path:?}, {per} a dispatch: {len} values in {words} words, inf at {bad:?}");
                    assert_u32_eq(&what, &status.read(g).unwrap(), &want);
                }
            }
        }
    }
}

#[test]
fn batchnorm_backward_maxima_are_absmax_of_the_dx_it_writes() {
    // encode_backward_maxima writes the dx and sums of encode_backward, bit for bit, and the
    // maxima absmax finds over dxᵀ (per row: one per channel; per tensor: one; per block: one per
    // block of a channel's rows, the last ragged), into a buffer that held other values before.
    use lowbit::kernels::batchnorm::{BatchNorm, NormBuffers};
    use lowbit::scheme::{Granularity, QuantLayout};
    let g = gpu();
    let k = BatchNorm::new(g).unwrap();
    // Channels under, at and past one 32-channel tile (not a power of two too); rows over one span
    // and many, the last ragged; one huge dy (an infinite dx, left out of the maxima).
    for (rows, c, specials) in [(300, 7, false), (130, 41, false), (2, 3, false), (20011, 2, false), (4099, 16, true)] {
        let x: Vec<f32> = data(rows * c, 24, false).iter().enumerate().map(|(i, v)| v + (i % c) as f32).collect();
        let affine: Vec<f32> = (0..2 * c).map(|i| 0.5 + 0.1 * i as f32).collect();
        let mut dy = data(rows * c, 25, false);
        if specials {
            dy[5 * c + 3] = f32::MAX;
        }
        for relu in [false, true] {
            let mut outs = Vec::new();
            let grans =
                [Granularity::PerRow, Granularity::PerTensor, Granularity::PerBlock(8), Granularity::PerBlock(32)];
            for maxima in [None].into_iter().chain(grans.map(Some)) {
                let (xb, ab, rb, dyb) = (buf(&x), buf(&affine), buf(&vec![1.0; 2 * c]), buf(&dy));
                let (st, y, dxb, sums) = (
                    GpuBuffer::<f32>::zeros(g, "st", lowbit::kernels::batchnorm::stats_len(c)).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "y", rows * c).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "dx", rows * c).unwrap(),
                    GpuBuffer::<f32>::zeros(g, "s", 2 * c).unwrap(),
                );
                let b = NormBuffers {
                    x: &xb,
                    stats: &st,
                    affine: &ab,
                    running: &rb,
                    y: &y,
                    dy: Some(&dyb),
                    dx: Some(&dxb),
                    sums: Some(&sums),
                };
                let n = maxima.map_or(1, |gran| BatchNorm::maxima_len(rows, c, gran).unwrap());
                let m = GpuBuffer::<u32>::from_slice(g, "maxima", &vec![u32::MAX; n]).unwrap();
                run(|e| {
                    k.encode_train_forward(g, e, &b, rows, c, relu).unwrap();
                    match maxima {
                        Some(gran) => k.encode_backward_maxima(g, e, &b, rows, c, relu, &m, gran).unwrap(),
                        None => k.encode_backward(g, e, &b, rows, c, relu).unwrap(),
                    }
                });
                let dx = dxb.read(g).unwrap();
                let what = format!("{rows}x{c} relu {relu} maxima {maxima:?}");
                if let Some(gran) = maxima {
                    let l = QuantLayout::new(c, rows, lowbit::format::Format::Int8, gran).unwrap();
                    assert_u32_eq(&what, &m.read(g).unwrap(), &reference::absmax::absmax(&dx, &l, true));
                }
                outs.push((what, dx, sums.read(g).unwrap()));
            }
            if specials {
                assert!(outs[0].1.iter().any(|v| !v.is_finite()), "{}: a non-finite dx to leave out", outs[0].0);
            }
            for (what, dx, sums) in &outs[1..] {
                assert_f32_bits_eq(&format!("{what}: dx"), dx, &outs[0].1);
                assert_f32_bits_eq(&format!("{what}: sums"), sums, &outs[0].2);
            }
        }
    }
    // A maxima buffer of the wrong length is refused before anything is recorded.
    let (rows, c) = (64, 5);
    let bufs: Vec<GpuBuffer<f32>> = [rows * c, 3 * c, 2 * c, 2 * c, rows * c, rows * c, rows * c, 2 * c]
        .iter()
        .map(|&n| GpuBuffer::<f32>::zeros(g, "b", n).unwrap())
        .collect();
    let b = NormBuffers {
        x: &bufs[0],
        stats: &bufs[1],
        affine: &bufs[2],
        running: &bufs[3],
        y: &bufs[4],
        dy: Some(&bufs[5]),
        dx: Some(&bufs[6]),
        sums: Some(&bufs[7]),
    };
    let wrong = [
        (c - 1, Granularity::PerRow),
        (c, Granularity::PerTensor),
        (c * 2, Granularity::PerBlock(16)),
        (c, Granularity::PerBlock(0)),
    ];
    for (n, gran) in wrong {
        let m = GpuBuffer::<u32>::from_slice(g, "maxima", &vec![7; n]).unwrap();
        let mut rec = lowbit::Recorder::new(g, "batchnorm");
        let err = k.encode_backward_maxima(g, &mut rec, &b, rows, c, false, &m, gran).unwrap_err();
        assert!(matches!(err, Error::Shape { .. } | Error::InvalidArgument(_)), "{n} maxima {gran}: {err}");
        assert_eq!(rec.dispatches(), 0, "{n} maxima: recorded before refusing");
        run(|e| assert!(k.encode_backward_maxima(g, e, &b, rows, c, false, &m, gran).is_err()));
        assert_u32_eq(&format!("{n} maxima: untouched"), &m.read(g).unwrap(), &vec![7; n]);
    }
}
