//! The transformer kernels against their references: `heads` and `transpose` (permutations) and `embedding`
//! (sums in a fixed order) exactly; `softmax`, `layernorm` and `gelu` within stated bounds (WGSL's
//! exp, tanh and sqrt are accurate to a few ulp, and the kernels sum in f32 where the references
//! sum in f64).

mod common;
use common::{assert_f32_bits_eq, buf, data, gpu, submit_with as run};
use lowbit::kernels::embedding::{EmbedShape, Embedding};
use lowbit::kernels::gelu::Gelu;
use lowbit::kernels::heads::{Heads, HeadsGeom};
use lowbit::kernels::layernorm::{LayerNorm, EPS};
use lowbit::kernels::softmax::{Softmax, SoftmaxShape};
use lowbit::kernels::transpose::Transpose;
use lowbit::kernels::VecPath;
use lowbit::{reference, Error, GpuBuffer};

/// Probabilities: absolute, since each is at most 1 (exp's few ulp on values up to 1, summed).
const SOFTMAX_ATOL: f32 = 2e-6;
/// Score gradients and layer-norm outputs: relative to the tensor's largest magnitude (an f32
/// sum over at most a few hundred terms against an f64 one).
const SUM_RTOL: f32 = 2e-5;
/// GELU: relative to |value| plus an absolute floor near its zero.
const GELU_RTOL: f32 = 1e-5;
const GELU_ATOL: f32 = 1e-6;

/// Per element: `|got − want| ≤ atol + rtol·|want|`.
fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        assert!((g - w).abs() <= tol, "{what}[{i}]: {g} vs {w} (tolerance {tol})");
    }
}

/// `|got − want| ≤ rtol · max|want|`: for sums whose terms cancel, so a small result carries the
/// rounding of its large terms.
fn assert_close_to_peak(what: &str, got: &[f32], want: &[f32], rtol: f32) {
    let peak = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert_close(what, got, want, rtol * peak, 0.0);
}

#[test]
fn transpose_moves_every_element_of_every_batch() {
    let g = gpu();
    let k = Transpose::new(g).unwrap();
    // Sizes on and off the 16×16 tiles, one row or column, many batches.
    for (batches, rows, cols) in [(1, 1, 1), (3, 16, 16), (2, 37, 5), (64, 64, 16), (5, 1, 33), (1, 129, 70)] {
        let n = batches * rows * cols;
        let x = data(n, 7 + n as u32, true);
        let (xb, y, back) =
            (buf(&x), GpuBuffer::<f32>::zeros(g, "y", n).unwrap(), GpuBuffer::<f32>::zeros(g, "b", n).unwrap());
        run(|e| {
            k.encode(g, e, &xb, &y, (batches, rows, cols)).unwrap();
            k.encode(g, e, &y, &back, (batches, cols, rows)).unwrap();
        });
        let what = format!("{batches} × [{rows}, {cols}]");
        assert_f32_bits_eq(&what, &y.read(g).unwrap(), &reference::transpose::transpose(&x, batches, rows, cols));
        assert_f32_bits_eq(&format!("{what} and back"), &back.read(g).unwrap(), &x);
    }
    let small = GpuBuffer::<f32>::zeros(g, "small", 5).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(k.encode(g, &mut enc, &small, &small, (2, 1, 3)), Err(Error::Shape { .. })));
    assert!(k.encode(g, &mut enc, &small, &small, (0, 1, 5)).is_err());
}

#[test]
fn heads_split_and_merge_are_exact_inverses() {
    let g = gpu();
    // Both layouts (a thread per element or vec4, a thread per row), heads of multiples of 4
    // values (vec4s) and not.
    for (batch, t, heads, d, parts, per_row) in [false, true].into_iter().flat_map(|r| {
        [(1, 1, 1, 1, 1), (2, 5, 3, 4, 3), (3, 17, 4, 16, 1), (1, 33, 2, 65, 3), (2, 7, 3, 12, 3)]
            .map(|(b, t, h, d, p)| (b, t, h, d, p, r))
    }) {
        let k = Heads::with_thread_per_row(g, per_row).unwrap();
        let geom = HeadsGeom { batch, t, heads, d, parts };
        let x = data(geom.token_major_len(), 1 + geom.token_major_len() as u32, true);
        let xb = buf(&x);
        let splits: Vec<_> =
            (0..parts).map(|_| GpuBuffer::<f32>::zeros(g, "split", geom.head_major_len()).unwrap()).collect();
        let back = GpuBuffer::<f32>::zeros(g, "back", geom.token_major_len()).unwrap();
        run(|e| {
            for (p, s) in splits.iter().enumerate() {
                k.encode(g, e, &xb, s, &geom, p, false).unwrap();
            }
            for (p, s) in splits.iter().enumerate() {
                k.encode(g, e, s, &back, &geom, p, true).unwrap();
            }
        });
        let mut want_back = vec![0f32; x.len()];
        for (p, s) in splits.iter().enumerate() {
            let want = reference::heads::split(&x, &geom, p);
            assert_f32_bits_eq(&format!("split {p} of {geom:?}, per row {per_row}"), &s.read(g).unwrap(), &want);
            reference::heads::merge(&want, &geom, p, &mut want_back);
        }
        assert_f32_bits_eq(&format!("reference merge {geom:?}"), &want_back, &x);
        assert_f32_bits_eq(&format!("merge {geom:?}, per row {per_row}"), &back.read(g).unwrap(), &x);
    }
    let k = Heads::new(g).unwrap();
    let geom = HeadsGeom { batch: 1, t: 2, heads: 2, d: 1, parts: 1 };
    let small = GpuBuffer::<f32>::zeros(g, "small", 3).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(k.encode(g, &mut enc, &small, &small, &geom, 0, false), Err(Error::Shape { .. })));
    assert!(matches!(k.encode(g, &mut enc, &small, &small, &geom, 1, false), Err(Error::InvalidArgument(_))));
    let empty = HeadsGeom { batch: 0, ..geom };
    assert!(matches!(k.encode(g, &mut enc, &small, &small, &empty, 0, false), Err(Error::InvalidArgument(_))));
}

#[test]
fn heads_moves_all_three_parts_in_one_launch_as_one_part_at_a_time() {
    let g = gpu();
    // Both layouts; heads of multiples of 4 values (one launch) and not (three).
    for per_row in [false, true] {
        let k = Heads::with_thread_per_row(g, per_row).unwrap();
        for (batch, t, heads, d) in [(2, 5, 3, 4), (3, 17, 4, 16), (1, 9, 2, 6), (2, 300, 1, 8)] {
            let geom = HeadsGeom { batch, t, heads, d, parts: 3 };
            let x = data(geom.token_major_len(), 7 + d as u32, true);
            let xb = buf(&x);
            // Outputs start as NaNs, so an element the launch misses shows.
            let nans = |n: usize| buf(&vec![f32::NAN; n]);
            let parts = [0, 1, 2].map(|_| nans(geom.head_major_len()));
            let back = nans(geom.token_major_len());
            run(|e| {
                k.encode_parts(g, e, &xb, [&parts[0], &parts[1], &parts[2]], &geom, false).unwrap();
                k.encode_parts(g, e, &back, [&parts[0], &parts[1], &parts[2]], &geom, true).unwrap();
            });
            for (p, s) in parts.iter().enumerate() {
                let want = reference::heads::split(&x, &geom, p);
                let what = format!("part {p} of {geom:?}, per row {per_row}");
                assert_f32_bits_eq(&what, &s.read(g).unwrap(), &want);
            }
            assert_f32_bits_eq(&format!("merged {geom:?}, per row {per_row}"), &back.read(g).unwrap(), &x);
        }
        let two = HeadsGeom { batch: 1, t: 2, heads: 1, d: 4, parts: 2 };
        let b = GpuBuffer::<f32>::zeros(g, "b", 16).unwrap();
        let mut enc = g.device.create_command_encoder(&Default::default());
        assert!(matches!(k.encode_parts(g, &mut enc, &b, [&b, &b, &b], &two, false), Err(Error::InvalidArgument(_))));
        let three = HeadsGeom { parts: 3, ..two };
        let short = GpuBuffer::<f32>::zeros(g, "short", 4).unwrap();
        let r = k.encode_parts(g, &mut enc, &b, [&short, &short, &short], &three, false);
        assert!(matches!(r, Err(Error::Shape { .. })), "a token-major tensor of the wrong length: {r:?}");
    }
}

/// Both layouts (a thread per row, through vec4s where the row is; a workgroup per row) against
/// the reference within the bounds, and against each other bit for bit.
#[test]
fn softmax_forward_and_backward_match_the_reference() {
    let g = gpu();
    let kernels = [false, true].map(|per_row| Softmax::with_workgroup_per_row(g, per_row).unwrap());
    // Causal square blocks (attention), a non-causal wide row set, and rows off the 256 grid;
    // keys in multiples of 4 (vec4s: the masked keys' ragged ends inside a vec4) and not, and
    // rows past one round of the workgroup's 256 staged keys (300, 520).
    for s in [
        SoftmaxShape { rows: 3 * 4 * 17, cols: 17, queries: 17, causal: true, scale: 0.25 },
        SoftmaxShape { rows: 5 * 16, cols: 64, queries: 16, causal: false, scale: 0.5 },
        SoftmaxShape { rows: 2 * 30, cols: 24, queries: 30, causal: true, scale: 0.3 },
        SoftmaxShape { rows: 33, cols: 65, queries: 33, causal: false, scale: 1.0 },
        SoftmaxShape { rows: 2 * 300, cols: 300, queries: 300, causal: true, scale: 0.125 },
        SoftmaxShape { rows: 7, cols: 520, queries: 7, causal: false, scale: 0.2 },
        SoftmaxShape { rows: 1, cols: 1, queries: 1, causal: true, scale: 3.0 },
    ] {
        let n = s.rows * s.cols;
        // Scores up to ±3·8: large enough that an unshifted exp would lose the small ones.
        let x: Vec<f32> = data(n, 7 + s.cols as u32, false).iter().map(|v| v * 8.0).collect();
        let want = reference::softmax::forward(&x, s.rows, s.cols, s.queries, s.causal, s.scale);
        let dp = data(n, 11 + s.rows as u32, false);
        let want_ds = reference::softmax::backward(&want, &dp, s.rows, s.cols, s.scale);
        let mut outputs = vec![];
        for (k, layout) in kernels.iter().zip(["thread per row", "workgroup per row"]) {
            let p = GpuBuffer::<f32>::zeros(g, "p", n).unwrap();
            run(|e| k.encode_forward(g, e, &s, &buf(&x), &p).unwrap());
            let got = p.read(g).unwrap();
            assert_close(&format!("softmax {s:?} ({layout})"), &got, &want, SOFTMAX_ATOL, 0.0);
            for r in 0..s.rows {
                let row = &got[r * s.cols..(r + 1) * s.cols];
                let end = if s.causal { (r % s.queries + 1).min(s.cols) } else { s.cols };
                assert!(row[end..].iter().all(|&v| v == 0.0), "row {r} ({layout}): masked keys must be exactly 0");
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "row {r} ({layout}) sums to {sum}");
            }
            let ds = GpuBuffer::<f32>::zeros(g, "ds", n).unwrap();
            run(|e| k.encode_backward(g, e, &s, &buf(&want), &buf(&dp), &ds).unwrap());
            let ds = ds.read(g).unwrap();
            assert_close_to_peak(&format!("softmax backward {s:?} ({layout})"), &ds, &want_ds, SUM_RTOL);
            outputs.push([got, ds]);
        }
        for (t, (a, b)) in ["p", "ds"].iter().zip(outputs[0].iter().zip(&outputs[1])) {
            assert_f32_bits_eq(&format!("softmax {t} {s:?}: the two layouts"), a, b);
        }
    }
    let p = GpuBuffer::<f32>::zeros(g, "p", 6).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    for k in &kernels {
        let bad = SoftmaxShape { rows: 2, cols: 3, queries: 0, causal: true, scale: 1.0 };
        assert!(matches!(k.encode_forward(g, &mut enc, &bad, &p, &p), Err(Error::InvalidArgument(_))));
        let short = SoftmaxShape { rows: 3, cols: 3, queries: 3, causal: true, scale: 1.0 };
        assert!(matches!(k.encode_forward(g, &mut enc, &short, &p, &p), Err(Error::Shape { .. })));
    }
}

/// Both layouts (a thread per row, through vec4s where the row is; a workgroup per row) against
/// the reference within the bounds, and against each other bit for bit: rows of 1 to 600 values,
/// past one round of the workgroup's 256 staged values and off a multiple of 4.
#[test]
fn layernorm_forward_and_backward_match_the_reference() {
    let g = gpu();
    let kernels = [false, true].map(|per_row| LayerNorm::with_workgroup_per_row(g, per_row).unwrap());
    for (rows, cols) in [(1, 1), (33, 65), (300, 128), (7, 3), (5, 600), (3, 257)] {
        let n = rows * cols;
        // Rows with an offset, so the mean matters.
        let x: Vec<f32> =
            data(n, 3 + cols as u32, false).iter().enumerate().map(|(i, v)| v + (i / cols) as f32 * 0.1).collect();
        let affine: Vec<f32> = data(2 * cols, 5, false);
        let (xb, ab) = (buf(&x), buf(&affine));
        let (want_y, want_stats) = reference::layernorm::forward(&x, rows, cols, &affine, EPS);
        let dy = data(n, 9 + rows as u32, false);
        let (want_dx, want_dg, want_db) = reference::layernorm::backward(&x, &dy, rows, cols, &affine, &want_stats);
        let mut outputs = vec![];
        for (k, layout) in kernels.iter().zip(["thread per row", "workgroup per row"]) {
            let what = |t: &str| format!("layernorm {t} {rows}x{cols} ({layout})");
            let (stats, y) =
                (GpuBuffer::<f32>::zeros(g, "stats", 2 * rows).unwrap(), GpuBuffer::<f32>::zeros(g, "y", n).unwrap());
            run(|e| k.encode_forward(g, e, &xb, &ab, &stats, &y, (rows, cols)).unwrap());
            let (y, got_stats) = (y.read(g).unwrap(), stats.read(g).unwrap());
            assert_close_to_peak(&what("y"), &y, &want_y, SUM_RTOL);
            for r in 0..rows {
                let (m, s, got) = (want_stats[2 * r], want_stats[2 * r + 1], &got_stats[2 * r..2 * r + 2]);
                assert!((got[0] - m).abs() <= 1e-6 * (1.0 + m.abs()), "{}: mean {r}: {} vs {m}", what(""), got[0]);
                assert!((got[1] - s).abs() <= SUM_RTOL * s, "{}: rstd {r}: {} vs {s}", what(""), got[1]);
            }
            let (dx, prod) =
                (GpuBuffer::<f32>::zeros(g, "dx", n).unwrap(), GpuBuffer::<f32>::zeros(g, "prod", 2 * n).unwrap());
            // The backward from the reference's statistics, so only the backward is compared.
            let sb = buf(&want_stats);
            run(|e| k.encode_backward(g, e, &xb, &ab, &sb, &buf(&dy), &dx, &prod, (rows, cols)).unwrap());
            // dx = rstd·(γ·dy − mean(γ·dy) − x̂·mean(γ·dy·x̂)) cancels to 0 in a row of one: its
            // rounding is that of its terms, rstd·|γ·dy| (NVIDIA: 1.7e-5 for a one-element row,
            // where the fused multiply-adds round the two halves of rstd·(γ·dy − γ·dy) apart).
            let terms = (0..rows)
                .map(|r| {
                    want_stats[2 * r + 1] * (0..cols).map(|c| (affine[c] * dy[r * cols + c]).abs()).fold(0f32, f32::max)
                })
                .fold(0f32, f32::max);
            let peak = want_dx.iter().fold(terms, |m, v| m.max(v.abs()));
            let (dx, prod) = (dx.read(g).unwrap(), prod.read(g).unwrap());
            assert_close(&what("dx"), &dx, &want_dx, SUM_RTOL * peak, 0.0);
            // prod's column sums are dγ then dβ (and its second half is dy itself).
            let sums: Vec<f32> =
                (0..2 * cols).map(|c| (0..rows).map(|r| prod[r * 2 * cols + c] as f64).sum::<f64>() as f32).collect();
            assert_close_to_peak(&what("dγ"), &sums[..cols], &want_dg, SUM_RTOL);
            assert_close_to_peak(&what("dβ"), &sums[cols..], &want_db, SUM_RTOL);
            assert!((0..rows).all(|r| prod[r * 2 * cols + cols..(r + 1) * 2 * cols] == dy[r * cols..(r + 1) * cols]));
            outputs.push([y, got_stats, dx, prod]);
        }
        for (t, (a, b)) in ["y", "stats", "dx", "prod"].iter().zip(outputs[0].iter().zip(&outputs[1])) {
            assert_f32_bits_eq(&format!("layernorm {t} {rows}x{cols}: the two layouts"), a, b);
        }
    }
    // A constant row normalizes to β (variance 0 is covered by ε), never NaN.
    let x = vec![2.5f32; 8];
    let affine: Vec<f32> = (0..16).map(|i| i as f32).collect();
    for k in &kernels {
        let (stats, y) = (GpuBuffer::<f32>::zeros(g, "stats", 2).unwrap(), GpuBuffer::<f32>::zeros(g, "y", 8).unwrap());
        run(|e| k.encode_forward(g, e, &buf(&x), &buf(&affine), &stats, &y, (1, 8)).unwrap());
        assert_eq!(y.read(g).unwrap(), affine[8..].to_vec());
    }
}

#[test]
fn gelu_forward_and_backward_match_the_reference() {
    let g = gpu();
    // A length that is not a multiple of 4 (a thread per value) and one that is (vec4s, on both
    // paths: past one workgroup of teams, 32,768 values, with a ragged last run).
    for (len, path) in [(1757, VecPath::PerThread), (69_999, VecPath::PerThread), (69_999, VecPath::Teams)] {
        let k = Gelu::with_path(g, path).unwrap();
        let mut x: Vec<f32> = data(len, 13, false).iter().map(|v| v * 2.0).collect();
        // Far tails: the tanh saturates (the clamp keeps it finite) and GELU is x or 0.
        x.extend([60.0, -60.0, 1e4, -1e4, 0.0]);
        let dy = data(x.len(), 17, false);
        let (y, dx) =
            (GpuBuffer::<f32>::zeros(g, "y", x.len()).unwrap(), GpuBuffer::<f32>::zeros(g, "dx", x.len()).unwrap());
        let xb = buf(&x);
        run(|e| {
            k.encode_forward(g, e, &xb, &y).unwrap();
            k.encode_backward(g, e, &xb, &buf(&dy), &dx).unwrap();
        });
        let (y, dx) = (y.read(g).unwrap(), dx.read(g).unwrap());
        assert_close(
            &format!("gelu of {} on {path:?}", x.len()),
            &y,
            &reference::gelu::forward(&x),
            GELU_ATOL,
            GELU_RTOL,
        );
        // The derivative is a difference of terms of size |dy|·(1 + |x|) (it is 0 near x = −0.75),
        // so its error is bounded relative to those terms, not to the result.
        for (i, (&got, want)) in dx.iter().zip(reference::gelu::backward(&x, &dy)).enumerate() {
            let tol = GELU_ATOL + GELU_RTOL * dy[i].abs() * (1.0 + x[i].abs());
            assert!(
                (got - want).abs() <= tol,
                "gelu backward[{i}] of {} on {path:?} at x = {}: {got} vs {want} (tolerance {tol})",
                x.len(),
                x[i]
            );
        }
        let n = x.len();
        assert_eq!(&y[n - 5..], &[60.0, 0.0, 1e4, 0.0, 0.0]);
    }
}

#[test]
fn embedding_forward_and_gradients_are_exact() {
    let g = gpu();
    let k = Embedding::new(g).unwrap();
    // Columns past one 256-thread block, tokens past one 1024-id chunk of the table gradient (a
    // ragged last one), a vocabulary past one dispatch row of workgroups, and invalid ids among
    // the valid ones.
    // Rows of multiples of 4 values (the forward's vec4s) and not.
    for (batch, t, dim, vocab) in [(71, 17, 300, 65), (2, 3, 5, 70_000), (1, 1, 1, 1), (9, 13, 12, 40)] {
        let s = EmbedShape { n: batch * t, t, dim, vocab };
        let mut ids: Vec<f32> = (0..s.n as u32).map(|i| (lowbit::rng::uniform(7, i) * vocab as f32).floor()).collect();
        if s.n > 8 {
            ids[2] = ids[1]; // a repeated id
            ids[3] = -1.0;
            ids[4] = 2.5;
            ids[5] = vocab as f32;
            ids[6] = f32::NAN;
        }
        let table = data(vocab * dim, 3, false);
        let pos = data(t * dim, 4, false);
        let dy = data(s.n * dim, 5, false);
        let y = GpuBuffer::<f32>::zeros(g, "y", s.n * dim).unwrap();
        let dtable = GpuBuffer::<f32>::zeros(g, "dtable", vocab * dim).unwrap();
        let dpos = GpuBuffer::<f32>::zeros(g, "dpos", t * dim).unwrap();
        let idb = buf(&ids);
        run(|e| {
            k.encode_forward(g, e, &s, &idb, (&buf(&table), &buf(&pos)), &y).unwrap();
            k.encode_backward(g, e, &s, &idb, &buf(&dy), (&dtable, &dpos)).unwrap();
        });
        let got = y.read(g).unwrap();
        let want = reference::embedding::forward(&ids, &table, &pos, t, dim, vocab);
        assert_f32_bits_eq(&format!("embedding {s:?}"), &got, &want);
        if s.n > 8 {
            assert!(got[3 * dim..7 * dim].iter().all(|v| v.is_nan()), "invalid ids give NaN rows");
        }
        let (want_table, want_pos) = reference::embedding::backward(&ids, &dy, t, dim, vocab);
        assert_f32_bits_eq(&format!("embedding dtable {s:?}"), &dtable.read(g).unwrap(), &want_table);
        assert_f32_bits_eq(&format!("embedding dpos {s:?}"), &dpos.read(g).unwrap(), &want_pos);
    }
    let s = EmbedShape { n: 5, t: 2, dim: 1, vocab: 3 };
    let b = GpuBuffer::<f32>::zeros(g, "b", 5).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    assert!(matches!(k.encode_forward(g, &mut enc, &s, &b, (&b, &b), &b), Err(Error::InvalidArgument(_))));
}
