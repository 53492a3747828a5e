//! Deterministic counter-based randomness shared by Rust and WGSL.
//!
//! One draw is a pure function of `(seed, stream, element index)`, so a stochastic kernel is
//! reproducible and can be tested bit for bit against its CPU reference. The mirror of this file
//! is `shaders/common/rng.wgsl`; both must stay identical, function for function.
//!
//! The mixer is Chris Wellons' `lowbias32` (a 32-bit integer hash with low avalanche bias).
//! A draw is `lowbias32(lowbias32(index) ^ key)` with `key = lowbias32(lowbias32(seed) ^ stream)`:
//! different seeds or streams give independent-looking sequences for the same element.
//!
//! ## Streams of a training run
//! `lowbias32` is a bijection of `u32` (xor-shifts and multiplications by odd constants are
//! invertible), so for one seed [`key`] maps distinct streams to distinct keys: two uses share
//! their draws exactly when they share a stream. A run therefore numbers its streams in disjoint
//! ranges ([`streams`]), injectively within each:
//! - training draws, `0 .. 2^31`: a trainer numbers its random uses within a step `0 .. U`
//!   (for each GEMM layer in order, for each of its three products, a block of as many
//!   streams as the scheme's largest SMP sample count) and step `s` uses streams
//!   `s·U .. s·U + U` — distinct for every `(step, layer, product, sample)` while `s·U < 2^31`
//!   (the trainer refuses a step past that);
//! - parameter initialisation, `2^31 + 16·node + parameter`;
//! - data order per epoch, Bit-Mixer's per-step bit-width draws and its ramp, each a range of
//!   its own above them.

/// The stream ranges of a training run (see the module docs).
pub mod streams {
    /// Training draws occupy `0..TRAINING_END`.
    pub const TRAINING_END: u32 = 1 << 31;
    /// Initialisation streams start here (`init`).
    pub const INIT: u32 = 0x8000_0000;
    /// Data-order streams start here (`data_order`).
    pub const DATA_ORDER: u32 = 0xC000_0000;
    /// Bit-Mixer's per-step bit-width streams start here (`bit_widths`).
    pub const BIT_WIDTHS: u32 = 0xD000_0000;
    /// Bit-Mixer's ramp draws (one stream, drawn at index = step).
    pub const BIT_RAMP: u32 = 0xE000_0000;
    /// Gradient-exchange streams start here (`exchange`).
    pub const EXCHANGE: u32 = 0xE800_0000;
    /// Streams from here on are free for applications and tools.
    pub const USER: u32 = 0xF000_0000;

    /// The stream of random use `u` (of `uses` per step) at training step `step`, or `None` once
    /// the run has used the training range up.
    pub fn training(step: u64, uses: u32, u: u32) -> Option<u32> {
        if u >= uses {
            return None;
        }
        let s = step.checked_mul(uses as u64)?.checked_add(u as u64)?;
        (s < TRAINING_END as u64).then_some(s as u32)
    }

    /// The first stream of step `step` (what a step plan's kernels add to their use numbers), or
    /// `None` once the step's uses would leave the training range.
    pub fn step_base(step: u64, uses: u32) -> Option<u32> {
        let end = step.checked_add(1)?.checked_mul(uses as u64)?;
        (end <= TRAINING_END as u64).then(|| (step * uses as u64) as u32)
    }

    /// The initialisation stream of parameter buffer `param` (< 16) of graph node `node`
    /// (< 2^26).
    pub fn init(node: usize, param: usize) -> u32 {
        debug_assert!(node < 1 << 26 && param < 16);
        INIT + ((node as u32 & ((1 << 26) - 1)) << 4) + (param as u32 & 15)
    }

    /// The stream of epoch `epoch`'s data order (epochs repeat after 2^28).
    pub fn data_order(epoch: u32) -> u32 {
        DATA_ORDER + (epoch & 0x0fff_ffff)
    }

    /// The stream that replica `rank` of `ranks` rounds gradient tensor `tensor` (of `tensors`)
    /// with when it encodes step `step`'s gradients for the exchange (`lowbit::dist`): the
    /// `(step·ranks + rank)·tensors + tensor`-th of 2^27 streams (they repeat after that many).
    pub fn exchange(step: u64, rank: u32, ranks: u32, tensor: usize, tensors: usize) -> u32 {
        let i = (step.wrapping_mul(ranks as u64).wrapping_add(rank as u64))
            .wrapping_mul(tensors as u64)
            .wrapping_add(tensor as u64);
        EXCHANGE + (i as u32 & 0x07ff_ffff)
    }

    /// The stream of Bit-Mixer's bit-width draws at step `step` (steps repeat after 2^28).
    pub fn bit_widths(step: u64) -> u32 {
        BIT_WIDTHS + (step as u32 & 0x0fff_ffff)
    }
}

/// The 32-bit integer hash both sides use.
#[inline]
pub fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Folds a seed and a stream id into the per-launch key that kernels receive in their params.
#[inline]
pub fn key(seed: u32, stream: u32) -> u32 {
    lowbias32(lowbias32(seed) ^ stream)
}

/// 32 random bits for element `index` under `key`.
#[inline]
pub fn draw(key: u32, index: u32) -> u32 {
    lowbias32(lowbias32(index) ^ key)
}

/// 24 random bits (`0..2^24`), the resolution stochastic rounding compares against.
#[inline]
pub fn draw24(key: u32, index: u32) -> u32 {
    draw(key, index) >> 8
}

/// A uniform `f32` in `[0, 1)` with 24 bits of resolution.
#[inline]
pub fn uniform(key: u32, index: u32) -> f32 {
    draw24(key, index) as f32 * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_streams_are_distinct_and_stay_in_their_range() {
        let mut seen = std::collections::HashSet::new();
        for step in 0..50u64 {
            for rank in 0..4 {
                for t in 0..6 {
                    let s = streams::exchange(step, rank, 4, t, 6);
                    assert!((streams::EXCHANGE..streams::USER).contains(&s), "{s:#x}");
                    assert!(seen.insert(s), "stream {s:#x} drawn twice");
                }
            }
        }
        assert!(streams::BIT_RAMP < streams::EXCHANGE && streams::exchange(u64::MAX, 3, 4, 5, 6) < streams::USER);
    }

    #[test]
    fn known_values_do_not_drift() {
        // Pinned so a change to the hash (which would silently change every stochastic result and
        // the WGSL mirror's expectations) fails loudly.
        // Values computed independently (Python, 32-bit wrapping arithmetic).
        assert_eq!(lowbias32(0), 0);
        assert_eq!(lowbias32(1), 0x6889_90c0);
        assert_eq!(lowbias32(0xdead_beef), 0xe628_c683);
        let k = key(42, 7);
        assert_eq!(k, 0x04f4_5cae);
        assert_eq!(draw(k, 0), 0xbe60_75ee);
        assert_eq!(draw(k, 1000), 0xf450_b08e);
    }

    #[test]
    fn uniform_is_roughly_uniform() {
        let k = key(1234, 0);
        let n = 200_000u32;
        let mut buckets = [0u32; 16];
        let mut sum = 0.0f64;
        for i in 0..n {
            let u = uniform(k, i);
            assert!((0.0..1.0).contains(&u));
            sum += u as f64;
            buckets[(u * 16.0) as usize] += 1;
        }
        let mean = sum / n as f64;
        // Standard error of the mean of U(0,1) is 1/sqrt(12 n) ~ 6.5e-4; allow 5 sigma.
        assert!((mean - 0.5).abs() < 5.0 * (1.0 / (12.0 * n as f64)).sqrt(), "mean {mean}");
        let expect = n as f64 / 16.0;
        let chi2: f64 = buckets.iter().map(|&b| (b as f64 - expect).powi(2) / expect).sum();
        // 15 degrees of freedom: P(chi2 > 37.7) ~ 0.001.
        assert!(chi2 < 37.7, "chi2 {chi2}");
    }
}
