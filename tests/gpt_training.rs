//! A tiny GPT trained on the embedded Shakespeare: its validation loss must fall well below the
//! text's unigram entropy (what a model that ignores the context can reach), in fp32 and with the
//! block-scaled 4-bit recipe on every GEMM (NVFP4 forward and gradients, random Hadamard
//! rotations) and in attention's own products (`+attn`), and the two must end close.

mod common;
use common::gpu;
use lowbit::data::text::{Text, Tokens};
use lowbit::nn::{cosine_lr, GptConfig, OptimConfig, Optimizer, TrainScheme, Trainer};

const CFG: GptConfig = GptConfig { vocab: 0, context: 16, width: 32, heads: 2, layers: 1 };
const BATCH: usize = 8;
const STEPS: usize = 300;
const LR: f32 = 1e-2;
const SEED: u32 = 11;

/// Entropy (nats) of the characters' frequencies in `t`.
fn unigram_entropy(t: &Tokens, vocab: usize) -> f64 {
    let mut n = vec![0f64; vocab];
    for &i in t.ids() {
        n[i as usize] += 1.0;
    }
    let total: f64 = n.iter().sum();
    n.iter().filter(|&&c| c > 0.0).map(|&c| -(c / total) * (c / total).ln()).sum()
}

/// Validation loss (nats per character) after `STEPS` steps of `scheme`.
fn train(scheme: &str, text: &Text, train: &Tokens, val: &Tokens) -> f64 {
    let cfg = GptConfig { vocab: text.vocab(), ..CFG };
    let opt =
        OptimConfig { lr: LR, weight_decay: 0.1, batch: BATCH, optimizer: Optimizer::ADAMW, ..Default::default() };
    let mut t =
        Trainer::from_graph(gpu(), cfg.graph().unwrap(), TrainScheme::preset(scheme).unwrap(), opt, SEED).unwrap();
    for step in 0..STEPS {
        let (x, y) = train.batch(&train.random_starts(SEED, step as u32, BATCH, CFG.context), CFG.context).unwrap();
        t.step(&x, &y, cosine_lr(LR, step, STEPS)).unwrap();
    }
    t.flush().unwrap();
    let (mut loss, mut n) = (0.0, 0usize);
    for chunk in val.tiled_starts(CFG.context, 256).chunks(BATCH) {
        let (x, y) = val.batch(chunk, CFG.context).unwrap();
        let (_, l) = t.evaluate_batch(&x, &y).unwrap();
        loss += l * y.len() as f64;
        n += y.len();
    }
    loss / n as f64
}

#[test]
fn a_tiny_gpt_learns_more_than_character_frequencies_in_fp32_and_nvfp4() {
    let text = Text::shakespeare().unwrap();
    let (tr, val) = text.split(0.1, CFG.context + 1).unwrap();
    let h = unigram_entropy(&tr, text.vocab());
    let fp32 = train("fp32", &text, &tr, &val);
    // Every GEMM in NVFP4: one block's GEMMs and the head are all marked sensitive; `+attn`
    // quantizes Q·Kᵀ, P·V and their backward products too.
    let nvfp4 = train("nvfp4+all+attn", &text, &tr, &val);
    eprintln!("unigram entropy {h:.3}, validation loss fp32 {fp32:.3}, nvfp4 {nvfp4:.3} nats/char");
    // A model that only learned the frequencies sits at h; bigram statistics alone reach ~0.75 h.
    assert!(fp32 < 0.85 * h, "fp32 validation loss {fp32:.3} not below 0.85 x unigram entropy {h:.3}");
    assert!(nvfp4 < 0.85 * h, "nvfp4 validation loss {nvfp4:.3} not below 0.85 x unigram entropy {h:.3}");
    assert_ne!(nvfp4, fp32, "nvfp4+all+attn trained exactly as fp32: nothing was quantized");
    assert!((nvfp4 - fp32).abs() < 0.1 * fp32, "nvfp4 {nvfp4:.3} more than 10% from fp32 {fp32:.3}");
}
