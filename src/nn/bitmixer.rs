//! Bit-Mixer (Bulat & Tzimiropoulos, ICCV 2021): one network whose per-layer bit-widths can be
//! changed at run time without retraining. Meta-quantized training samples bit-widths at every
//! step ([`train_epoch_mixed`]), batch norms keep a state per pair of neighbouring bit-widths
//! (transitional batch norm, [`Trainer::enable_transitional_bn`]), and training is staged as in
//! the paper ([`MixSchedule`]): first at the highest bit-width, then one bit-width drawn for the
//! whole network per step, then per-layer bit-widths phased in. Afterwards
//! [`Trainer::set_bits`] picks any configuration.

use super::trainer::{cosine_lr, StepStats, Trainer};
use crate::data::Dataset;
use crate::{rng, Error, Result};

/// The bit-width of every trainable layer for training step `step`, drawn independently per
/// layer from `choices` with the trainer's seed (reproducible); empty `choices` are an error.
/// Every entry is equally likely: list a bit-width twice to draw it twice as often.
pub fn sample_bits(choices: &[u32], seed: u32, step: u64, layers: usize) -> Result<Vec<u32>> {
    if choices.is_empty() {
        return Err(Error::InvalidArgument("Bit-Mixer needs at least one bit-width to choose from".into()));
    }
    let key = rng::key(seed, rng::streams::bit_widths(step));
    Ok((0..layers as u32).map(|l| choices[(rng::draw(key, l) as usize) % choices.len()]).collect())
}

/// Bit-Mixer's three training stages, in steps: `high` steps with every layer at the highest
/// choice, then `network` steps with one bit-width drawn for the whole network per step (the
/// paper's network-wide meta-network), then the per-layer stage, in which a step draws every
/// layer's bit-width independently with a probability that rises linearly from 0 to 1 over its
/// first `ramp` steps (network-wide otherwise) and is 1 after them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MixSchedule {
    /// Steps at the highest bit-width.
    pub high: u64,
    /// Steps with one bit-width for the whole network.
    pub network: u64,
    /// Steps over which per-layer draws are phased in.
    pub ramp: u64,
}

impl MixSchedule {
    /// Per-layer draws from the first step (the schedule of a plain mixed epoch).
    pub const LAYERWISE: MixSchedule = MixSchedule { high: 0, network: 0, ramp: 0 };

    /// The configuration (bit-width per trainable layer) of training step `step`, reproducible
    /// from `seed`; empty `choices` are an error.
    pub fn config(&self, choices: &[u32], seed: u32, step: u64, layers: usize) -> Result<Vec<u32>> {
        let per_layer = sample_bits(choices, seed, step, layers)?;
        let top = choices.iter().copied().max().unwrap_or(8);
        if step < self.high {
            return Ok(vec![top; layers]);
        }
        let s = step - self.high;
        let layerwise = if s < self.network {
            false
        } else {
            let r = s - self.network;
            // P(per-layer) = r / ramp, from a draw of its own stream.
            r >= self.ramp
                || (rng::draw24(rng::key(seed, rng::streams::BIT_RAMP), step as u32) as u64 * self.ramp) < (r << 24)
        };
        if layerwise || per_layer.is_empty() {
            Ok(per_layer)
        } else {
            Ok(vec![per_layer[0]; layers])
        }
    }
}

/// One epoch of meta-quantized training: before every step the trainable layers get the
/// bit-widths `schedule` gives for the trainer's step count ([`MixSchedule::config`]);
/// otherwise as [`Trainer::train_epoch`]. Leaves the last configuration set. Returns
/// `(mean loss, train accuracy)`.
pub fn train_epoch_mixed(
    t: &mut Trainer,
    data: &Dataset,
    epoch: u32,
    total_steps: usize,
    choices: &[u32],
    schedule: MixSchedule,
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
        for (l, bits) in schedule.config(choices, t.seed(), t.steps(), layers)?.into_iter().enumerate() {
            t.set_bits(l, bits)?;
        }
        let (x, labels) = data.gather(idx)?;
        let lr = cosine_lr(t.optim().lr, t.steps() as usize, total_steps);
        let s = t.step(&x, &labels, lr)?;
        loss += s.loss as f64;
        right += s.correct as u64;
        seen += b;
        on_step(i, s);
    }
    Ok((loss / (data.len() / b).max(1) as f64, right as f64 / seen.max(1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_stages() {
        let s = MixSchedule { high: 10, network: 20, ramp: 1000 };
        let c = [2, 3, 4, 8];
        for step in 0..10 {
            assert_eq!(s.config(&c, 1, step, 3).unwrap(), vec![8; 3]);
        }
        let mut seen = std::collections::HashSet::new();
        for step in 10..30 {
            let cfg = s.config(&c, 1, step, 3).unwrap();
            assert!(cfg.iter().all(|&b| b == cfg[0]), "network-wide at step {step}: {cfg:?}");
            seen.insert(cfg[0]);
        }
        assert!(seen.len() >= 3, "network-wide draws vary: {seen:?}");
        // Past the ramp every step is per-layer: the configurations are the per-layer draws.
        for step in 1030..1100 {
            assert_eq!(s.config(&c, 1, step, 3).unwrap(), sample_bits(&c, 1, step, 3).unwrap());
        }
        // Within the ramp the share of per-layer steps grows (mixed configurations only come
        // from per-layer draws).
        let mixed = |r: std::ops::Range<u64>| {
            r.filter(|&st| s.config(&c, 1, st, 3).unwrap().windows(2).any(|w| w[0] != w[1])).count()
        };
        let (early, late) = (mixed(30..230), mixed(830..1030));
        assert!(early < late / 2, "early {early}, late {late}");
        assert!(late > 100, "late {late}");
    }
}
