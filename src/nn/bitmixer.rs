//! Bit-Mixer (Bulat & Tzimiropoulos, ICCV 2021): one network whose per-layer bit-widths can be
//! changed at run time without retraining. Meta-quantized training samples a bit-width for every
//! layer at every step ([`train_epoch_mixed`]), batch norms keep a state per pair of
//! neighbouring bit-widths (transitional batch norm, [`Trainer::enable_transitional_bn`]), and
//! training is staged: first at the highest bit-width, then mixed. Afterwards
//! [`Trainer::set_bits`] picks any configuration.

use super::trainer::{cosine_lr, StepStats, Trainer};
use crate::data::Dataset;
use crate::{rng, Error, Result};

/// The bit-width of every trainable layer for training step `step`, drawn from `choices` with
/// the trainer's seed (reproducible).
pub fn sample_bits(choices: &[u32], seed: u32, step: u64, layers: usize) -> Vec<u32> {
    let key = rng::key(seed, 0xb17_u32.wrapping_add(step as u32));
    (0..layers as u32).map(|l| choices[(rng::draw(key, l) as usize) % choices.len()]).collect()
}

/// One epoch of meta-quantized training: before every step each trainable layer gets a
/// bit-width from `choices` ([`sample_bits`]); otherwise as [`Trainer::train_epoch`]. Leaves the
/// last sampled configuration set. Returns `(mean loss, train accuracy)`.
pub fn train_epoch_mixed(
    t: &mut Trainer,
    data: &Dataset,
    epoch: u32,
    total_steps: usize,
    choices: &[u32],
    mut on_step: impl FnMut(usize, StepStats),
) -> Result<(f64, f64)> {
    if choices.is_empty() {
        return Err(Error::InvalidArgument("Bit-Mixer needs at least one bit-width to choose from".into()));
    }
    let b = t.optim().batch;
    if data.len() < b {
        return Err(Error::InvalidArgument(format!("{} samples is less than one batch of {b}", data.len())));
    }
    let layers = t.bits().len();
    let order = data.order(t.seed(), epoch);
    let (mut loss, mut right, mut seen) = (0f64, 0u64, 0usize);
    for (i, idx) in order.chunks_exact(b).enumerate() {
        for (l, bits) in sample_bits(choices, t.seed(), t.steps(), layers).into_iter().enumerate() {
            t.set_bits(l, bits)?;
        }
        let (x, labels) = data.gather(idx);
        let lr = cosine_lr(t.optim().lr, t.steps() as usize, total_steps);
        let s = t.step(&x, &labels, lr)?;
        loss += s.loss as f64;
        right += s.correct as u64;
        seen += b;
        on_step(i, s);
    }
    Ok((loss / (data.len() / b).max(1) as f64, right as f64 / seen.max(1) as f64))
}
