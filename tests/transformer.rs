//! The transformer ops in a trainer: every op's backward against finite differences (alone and
//! in a two-block GPT), attention against a direct CPU computation, per-position labels, and
//! token ids a step must refuse.

mod common;
use common::{data, fd_check_on, gpu};
use lowbit::nn::{GptConfig, Graph, GraphBuilder, LayerScheme, OptimConfig, Optimizer, TrainScheme, Trainer};
use lowbit::Error;

fn fp32(graph: Graph, batch: usize) -> Trainer {
    let opt = OptimConfig { lr: 1.0, momentum: 0.0, weight_decay: 0.0, batch, ..Default::default() };
    Trainer::from_graph(gpu(), graph, TrainScheme::preset("fp32").unwrap(), opt, 3).unwrap()
}

/// One label per output position of each sample.
fn labels(batch: usize, positions: usize, classes: usize, seed: u32) -> Vec<u32> {
    (0..(batch * positions) as u32).map(|i| lowbit::rng::draw(lowbit::rng::key(seed, 5), i) % classes as u32).collect()
}

/// Token ids as the embedding reads them.
fn ids(n: usize, vocab: usize, seed: u32) -> Vec<f32> {
    labels(n, 1, vocab, seed).iter().map(|&i| i as f32).collect()
}

// The ops here are smooth (no ReLU kinks): the error is f32 rounding of the loss (~1e-7
// relative) over h plus O((h/scale)²), the scale being that of the values a parameter moves —
// embeddings start at 0.02, and layer norm is nonlinear on that scale, so h stays well below it.
const H: f32 = 1e-3;
const ATOL: f64 = 1e-3;

#[test]
fn dense_layernorm_and_gelu_backward_match_finite_differences() {
    let (t, c, classes, batch) = (5, 6, 4, 3);
    let mut b = GraphBuilder::new("dense-ln-gelu", (1, t, c));
    let d1 = b.dense("d1", b.input(), 8, false).unwrap();
    let ln = b.layernorm("ln", d1).unwrap();
    let g = b.gelu("gelu", ln).unwrap();
    let out = b.dense("out", g, classes, false).unwrap();
    let mut tr = fp32(b.finish(out).unwrap(), batch);
    assert_eq!(tr.graph().positions(), t);
    let x = data(batch * t * c, 3, false);
    let n = fd_check_on(&mut tr, "dense-ln-gelu", &x, &labels(batch, t, classes, 1), H, ATOL);
    assert_eq!(n, 6, "d1, ln and out: weight and bias each");
}

#[test]
fn attention_backward_matches_finite_differences() {
    for causal in [true, false] {
        let (t, c, classes, batch) = (6, 4, 5, 2);
        let mut b = GraphBuilder::new("attention", (1, t, c));
        let qkv = b.dense("qkv", b.input(), 3 * 8, false).unwrap();
        let a = b.attention("attention", qkv, 2, causal).unwrap();
        let out = b.dense("out", a, classes, false).unwrap();
        let mut tr = fp32(b.finish(out).unwrap(), batch);
        let x: Vec<f32> = data(batch * t * c, 5, false).iter().map(|v| v * 0.7).collect();
        fd_check_on(&mut tr, &format!("attention causal={causal}"), &x, &labels(batch, t, classes, 2), H, ATOL);
    }
}

#[test]
fn embedding_backward_matches_finite_differences() {
    let (t, vocab, batch) = (6, 7, 3);
    let mut b = GraphBuilder::new("embed", (1, t, 1));
    let e = b.embedding("embed", b.input(), vocab, 8).unwrap();
    let ln = b.layernorm("ln", e).unwrap();
    let out = b.dense("out", ln, vocab, false).unwrap();
    let mut tr = fp32(b.finish(out).unwrap(), batch);
    let x = ids(batch * t, vocab, 4);
    fd_check_on(&mut tr, "embedding", &x, &labels(batch, t, vocab, 3), H, ATOL);
}

#[test]
fn a_two_block_gpt_backward_matches_finite_differences() {
    let cfg = GptConfig { vocab: 11, context: 6, width: 8, heads: 2, layers: 2 };
    let mut tr = fp32(cfg.graph().unwrap(), 2);
    let x = ids(2 * cfg.context, cfg.vocab, 6);
    let n = fd_check_on(&mut tr, "gpt", &x, &labels(2, cfg.context, cfg.vocab, 7), H, ATOL);
    // embed (weight, position); per block ln1, qkv, proj, ln2, fc, fc2 (weight and bias each);
    // ln_f and head (weight and bias each).
    assert_eq!(n, 2 + 2 * 12 + 4);
    assert_eq!(tr.graph().gemm_nodes().len(), cfg.gemm_layers());
}

/// softmax(q·kᵀ/√d, causal)·v per batch and head, in f64, from `[B, T, 3C]`.
fn attention_reference(x: &[f32], batch: usize, t: usize, c: usize, heads: usize, causal: bool) -> Vec<f64> {
    let d = c / heads;
    let at =
        |b: usize, pos: usize, part: usize, h: usize, e: usize| x[(b * t + pos) * 3 * c + part * c + h * d + e] as f64;
    let mut y = vec![0f64; batch * t * c];
    for b in 0..batch {
        for h in 0..heads {
            for q in 0..t {
                let end = if causal { q + 1 } else { t };
                let s: Vec<f64> = (0..end)
                    .map(|k| (0..d).map(|e| at(b, q, 0, h, e) * at(b, k, 1, h, e)).sum::<f64>() / (d as f64).sqrt())
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for e in 0..d {
                    y[(b * t + q) * c + h * d + e] =
                        (0..end).map(|k| (s[k] - m).exp() / z * at(b, k, 2, h, e)).sum::<f64>();
                }
            }
        }
    }
    y
}

#[test]
fn attention_matches_a_direct_cpu_computation() {
    // Sizes off the GEMM tiles: 37 positions, 3 heads of 5.
    for causal in [true, false] {
        let (batch, t, c, heads) = (3, 37, 15, 3);
        let mut b = GraphBuilder::new("attention only", (1, t, 3 * c));
        let a = b.attention("attention", b.input(), heads, causal).unwrap();
        let tr = fp32(b.finish(a).unwrap(), batch);
        let x: Vec<f32> = data(batch * t * 3 * c, 9, false).iter().map(|v| v * 1.5).collect();
        let got = tr.logits(&x, batch).unwrap();
        let want = attention_reference(&x, batch, t, c, heads, causal);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            // f32 products of 5 terms, an f32 softmax and an f32 sum of up to 37 terms.
            assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "causal={causal} y[{i}]: {g} vs {w}");
        }
    }
}

#[test]
fn a_token_id_outside_the_vocabulary_is_refused_and_changes_nothing() {
    let cfg = GptConfig { vocab: 5, context: 4, width: 8, heads: 2, layers: 1 };
    let opt = OptimConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.0, batch: 2, ..Default::default() };
    let mut tr =
        Trainer::from_graph(gpu(), cfg.graph().unwrap(), TrainScheme::preset("fp32").unwrap(), opt, 1).unwrap();
    let y = labels(2, 4, 5, 1);
    tr.step(&ids(8, 5, 2), &y, 0.1).unwrap();
    let before = tr.parameters().unwrap();
    for bad in [5.0, -1.0, 1.5, f32::NAN] {
        let mut x = ids(8, 5, 3);
        x[6] = bad;
        match tr.step(&x, &y, 0.1) {
            Err(Error::NonFinite { step, .. }) => assert_eq!(step, 1, "id {bad}"),
            other => panic!("id {bad}: {:?}", other.map(|s| s.loss)),
        }
        assert_eq!(tr.parameters().unwrap(), before, "id {bad} changed the parameters");
    }
    // Labels per position: one per sample is a shape error naming the count.
    match tr.step(&ids(8, 5, 3), &[0, 1], 0.1) {
        Err(Error::Shape { detail, .. }) => assert!(detail.contains("4 labels per sample"), "{detail}"),
        other => panic!("{:?}", other.map(|s| s.loss)),
    }
    tr.step(&ids(8, 5, 3), &y, 0.1).unwrap();
}

#[test]
fn an_adamw_step_is_the_reference_update_with_the_steps_bias_correction() {
    let cfg = GptConfig { vocab: 7, context: 5, width: 8, heads: 2, layers: 1 };
    let opt = OptimConfig { lr: 0.01, weight_decay: 0.1, batch: 2, optimizer: Optimizer::ADAMW, ..Default::default() };
    let mut tr =
        Trainer::from_graph(gpu(), cfg.graph().unwrap(), TrainScheme::preset("fp32").unwrap(), opt, 1).unwrap();
    let (x, y) = (ids(10, 7, 1), labels(2, 5, 7, 2));
    // gradients() advances the step counter without updating: the step after it is t = 2.
    let grads = tr.gradients(&x, &y).unwrap();
    let before = tr.parameters().unwrap();
    // The step's rate is absolute (the config's is the schedule's peak, for train_epoch).
    tr.step(&x, &y, 0.02).unwrap();
    let after = tr.parameters().unwrap();
    let Optimizer::AdamW { beta1, beta2, eps } = Optimizer::ADAMW else { unreachable!() };
    let bias = lowbit::kernels::adam::bias_correction(beta1, beta2, 2);
    for (name, _, g) in &grads {
        let w0 = &before.iter().find(|p| &p.0 == name).unwrap().2;
        let w1 = &after.iter().find(|p| &p.0 == name).unwrap().2;
        // Decay on Dense weights only (not biases, norms or embeddings).
        let decayed = name.ends_with(".weight") && !name.contains("ln") && !name.starts_with("embed");
        let s = lowbit::kernels::adam::AdamStep {
            lr: 0.02,
            beta1,
            beta2,
            eps,
            weight_decay: if decayed { 0.1 } else { 0.0 },
        };
        let (mut w, mut state) = (w0.clone(), vec![0f32; 2 * w0.len()]);
        lowbit::reference::adam::adam(&mut w, &mut state, g, s, bias);
        for (i, (a, b)) in w1.iter().zip(&w).enumerate() {
            assert!((a - b).abs() <= 4.0 * f32::EPSILON * a.abs().max(1.0), "{name}[{i}]: {a} vs {b}");
        }
    }
}

/// `‖a − b‖ / ‖b‖`.
fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (d / n).sqrt()
}

#[test]
fn attn_quantizes_attentions_products_and_nothing_else() {
    // qkv → causal attention (2 heads of 8, 37 positions: off every tile) → out, with both GEMM
    // layers kept fp32: the difference from fp32 is the attention products' quantization alone.
    let (t, c, classes, batch) = (37, 6, 5, 3);
    let graph = || {
        let mut b = GraphBuilder::new("attention", (1, t, c));
        let qkv = b.dense("qkv", b.input(), 3 * 16, false).unwrap();
        let a = b.attention("attention", qkv, 2, true).unwrap();
        let out = b.dense("out", a, classes, false).unwrap();
        b.finish(out).unwrap()
    };
    let opt = OptimConfig { lr: 0.1, momentum: 0.0, weight_decay: 0.0, batch, ..Default::default() };
    let trainer = |name: &str| {
        let s = TrainScheme::preset(name).unwrap().with_layer(0, LayerScheme::FP32).unwrap();
        Trainer::from_graph(gpu(), graph(), s.with_layer(1, LayerScheme::FP32).unwrap(), opt, 3).unwrap()
    };
    let x: Vec<f32> = data(batch * t * c, 11, false).iter().map(|v| v * 2.0).collect();
    let y = labels(batch, t, classes, 12);
    let mut base = trainer("fp32");
    let (logits32, grads32) = (base.logits(&x, batch).unwrap(), base.gradients(&x, &y).unwrap());
    let flat = |g: &[lowbit::nn::Parameter]| g.iter().flat_map(|p| p.2.clone()).collect::<Vec<f32>>();
    let g32 = flat(&grads32);
    // (scheme, largest relative L2 error of the logits, of the gradients): measured (seed 3) int8
    // 0.008 / 0.007, fp8 0.057 / 0.042, mxfp8 0.066 / 0.21, luq4 0.15 / 0.30, nvfp4 0.22 / 0.25,
    // mxfp4 0.24 / 0.38 — the FP8 ones as large as quantizing the two Dense layers in fp8 instead
    // (0.058 / 0.065): the scores are sharp, and softmax turns their absolute error into relative
    // error of P. Each bound is well below what a product on the wrong operands, layout or scale
    // gives (uncorrelated outputs: errors near √2).
    for (name, fwd, bwd) in [
        ("int8", 0.02, 0.03),
        ("fp8", 0.1, 0.1),
        ("mxfp8", 0.1, 0.35),
        ("luq4", 0.3, 0.6),
        ("nvfp4", 0.35, 0.5),
        ("mxfp4", 0.35, 0.6),
    ] {
        let mut off = trainer(name);
        assert_eq!(off.logits(&x, batch).unwrap(), logits32, "{name} without +attn: attention stays f32");
        assert_eq!(flat(&off.gradients(&x, &y).unwrap()), g32, "{name} without +attn");
        let mut on = trainer(&format!("{name}+attn"));
        let (l, g) = (on.logits(&x, batch).unwrap(), flat(&on.gradients(&x, &y).unwrap()));
        let (ef, eb) = (rel_l2(&l, &logits32), rel_l2(&g, &g32));
        eprintln!("{name}+attn: logits {ef:.2e}, gradients {eb:.2e} from fp32");
        assert!(ef > 1e-6 && ef < fwd, "{name}+attn logits {ef:e} from fp32 (bound {fwd})");
        assert!(eb > 1e-6 && eb < bwd, "{name}+attn gradients {eb:e} from fp32 (bound {bwd})");
    }
}

#[test]
fn attn_is_refused_where_it_cannot_run() {
    let opt = OptimConfig { batch: 2, ..Default::default() };
    for (scheme, why) in [("tinyscript+attn", "TinyScript"), ("luq4+smp2+attn", "SMP")] {
        let err = TrainScheme::preset(scheme).unwrap_err().to_string();
        assert!(err.contains(why), "{scheme}: {err}");
    }
    let mut b = GraphBuilder::new("mlp", (1, 1, 4));
    let d = b.dense("d", b.input(), 3, false).unwrap();
    let err = Trainer::from_graph(gpu(), b.finish(d).unwrap(), TrainScheme::preset("int8+attn").unwrap(), opt, 1)
        .err()
        .expect("a model without attention")
        .to_string();
    assert!(err.contains("no attention"), "{err}");
    // A GPT's first block is sensitive: its attention follows the sensitive layers' scheme.
    let s = TrainScheme::preset("nvfp4+attn").unwrap();
    assert!(s.attention && s.attention_scheme(true) == LayerScheme::FP32 && s.attention_scheme(false) == s.default);
    let cfg = GptConfig { vocab: 5, context: 4, width: 8, heads: 2, layers: 2 };
    // (4 sequences of 4 tokens: the 16 rows the recipe's Hadamard blocks need.)
    let opt = OptimConfig { batch: 4, optimizer: Optimizer::ADAMW, ..Default::default() };
    let mut tr = Trainer::from_graph(gpu(), cfg.graph().unwrap(), s, opt, 1).unwrap();
    let x = ids(4 * cfg.context, cfg.vocab, 8);
    assert!(tr.step(&x, &labels(4, cfg.context, cfg.vocab, 9), 0.01).unwrap().loss.is_finite());
}

/// The CPU and GPU layouts (`Gpu::with_layouts`: both on this adapter, in one process) train a
/// GPT to the same bits — gradients, then parameters after two AdamW steps — for fp32 and
/// quantized presets, with and without `+attn`: the layouts' layer norms, attention softmaxes and
/// loss (a thread per row; a workgroup per row) sum in the same order. A vocabulary of 300 takes
/// the loss past one round of its workgroup's 256 staged exps. The FP8 presets are compared where
/// both layouts run the same FP8 GEMMs (not where only the GPU layouts put them on a
/// cooperative-matrix unit, whose sums are within a bound instead: `tests/graph.rs`).
#[test]
fn the_cpu_and_gpu_layouts_train_a_gpt_to_the_same_bits() {
    use lowbit::kernels::gemm_fp8::GemmFp8;
    let g = gpu();
    let (gc, gg) = (g.with_layouts(lowbit::Layouts::Cpu), g.with_layouts(lowbit::Layouts::Gpu));
    assert!(gc.cpu_layouts() && !gg.cpu_layouts());
    let fp8_on_unit = |g: &lowbit::Gpu| {
        let k = GemmFp8::new(g, lowbit::format::Format::Fp8E4M3, lowbit::format::Format::Fp8E4M3).unwrap();
        k.coop_size().is_some() && !k.uses_lanes()
    };
    let fp8_same = fp8_on_unit(&gc) == fp8_on_unit(&gg);
    // (CI runs this on lavapipe of Mesa 26 with LOWBIT_EXPECT_COOP=1, where the GPU layouts' GEMMs
    // must be on the unit.)
    assert!(
        !common::coop_expected() || !fp8_same,
        "LOWBIT_EXPECT_COOP: the GPU layouts' FP8 GEMMs are not on the unit"
    );
    let cfg = GptConfig { vocab: 300, context: 16, width: 16, heads: 2, layers: 2 };
    let batch = 4;
    let x = ids(batch * cfg.context, cfg.vocab, 6);
    let y = labels(batch, cfg.context, cfg.vocab, 7);
    let mut schemes = vec!["fp32", "int8", "luq4", "nvfp4", "int8+attn", "luq4+attn", "mxfp4+attn"];
    if fp8_same {
        schemes.extend(["fp8", "mxfp8+attn"]);
    }
    for scheme in schemes {
        let run = |g: &lowbit::Gpu| {
            let opt = OptimConfig { batch, optimizer: Optimizer::ADAMW, ..Default::default() };
            let mut t =
                Trainer::from_graph(g, cfg.graph().unwrap(), TrainScheme::preset(scheme).unwrap(), opt, 3).unwrap();
            let grads = t.gradients(&x, &y).unwrap();
            t.step(&x, &y, 0.01).unwrap();
            t.step(&x, &y, 0.01).unwrap();
            (grads, t.parameters().unwrap())
        };
        let (a, b) = (run(&gc), run(&gg));
        for (what, p, q) in [("gradient", &a.0, &b.0), ("after two steps", &a.1, &b.1)] {
            assert_eq!(p.len(), q.len());
            for (u, v) in p.iter().zip(q) {
                common::assert_f32_bits_eq(&format!("gpt {scheme} {} {what}: cpu vs gpu layouts", u.0), &u.2, &v.2);
            }
        }
    }
}
