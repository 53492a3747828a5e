//! TinyScript's non-uniform quantizer (Fu et al., ICML 2020): fit a Weibull distribution to |x|,
//! place the quantization levels ("knobs") where they minimize the expected variance of
//! unbiased stochastic rounding, and quantize with stochastic rounding between adjacent levels.
//!
//! ## Format (the spec; `shaders/tinyscript.wgsl` does the same integer arithmetic)
//! A `b`-bit code (2 ≤ b ≤ 8) of a signed [`LevelTable`] is a sign bit above a `b − 1`-bit index
//! into `2^(b−1)` magnitudes `0 = L₀ < L₁ < … < Lₙ = 2²⁴`, fixed point with 24 fractional bits,
//! so level `i` stands for `Lᵢ / 2²⁴ · scale`. An unsigned table, for data known to be
//! nonnegative (the input of a layer that follows a ReLU), spends all `b` bits on the index:
//! `2^b` levels, twice as many at the same width; negative values encode as 0 there. Codes are
//! packed `⌊32 / b⌋` per u32 word, low bits first, each row starting on a new word. The scale of
//! a row is its absmax (levels reach it: nothing is clipped).
//!
//! Encoding `x` with the row's `inv = 1/scale` (correctly rounded, [`recip_rne`]):
//! `y = ftz(ftz(x)·inv)`; `U = ⌊|y|·2²⁴⌋` from y's bits (clamped to 2²⁴); `i` = the last level
//! with `Lᵢ ≤ U`; with `D = U − Lᵢ`, `G = Lᵢ₊₁ − Lᵢ`, stochastic rounding goes up to `i + 1` iff
//! `⌊r·G / 2²⁴⌋ < D` for the element's 24-bit draw `r`, which happens with probability
//! `⌈D·2²⁴/G⌉ / 2²⁴` (unbiased up to 2⁻²⁴ of the gap); round-to-nearest goes up iff `2D > G`.
//! NaN encodes as 0, ±∞ as ±Lₙ; −0 and values flushing to zero as +0 (unsigned tables: every
//! negative value, −∞ included, as 0).

use crate::format::ftz;
use crate::format::scale::recip_rne;
use crate::{Error, Result};

/// Fixed-point one: the top level.
pub const ONE: u32 = 1 << 24;

/// The magnitudes of a `bits`-bit TinyScript format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelTable {
    /// Bits per code, sign included (if any).
    pub bits: u32,
    /// Whether codes carry a sign bit; unsigned tables are for nonnegative data.
    pub signed: bool,
    /// `2^(bits−1)` (signed) or `2^bits` (unsigned) increasing fixed-point magnitudes, `0` first
    /// and [`ONE`] last.
    pub levels: Vec<u32>,
}

/// The number of levels of a `bits`-bit table: `2^(bits−1)` with a sign bit, `2^bits` without.
pub fn level_count(bits: u32, signed: bool) -> Result<usize> {
    if !(2..=8).contains(&bits) {
        return Err(Error::InvalidArgument(format!("TinyScript codes have 2 to 8 bits, not {bits}")));
    }
    Ok(1usize << (bits - signed as u32))
}

impl LevelTable {
    /// Checks and wraps `levels` as a signed table.
    pub fn new(bits: u32, levels: Vec<u32>) -> Result<Self> {
        Self::with_sign(bits, true, levels)
    }

    /// Checks and wraps `levels`, signed or unsigned.
    pub fn with_sign(bits: u32, signed: bool, levels: Vec<u32>) -> Result<Self> {
        let n = level_count(bits, signed)?;
        if levels.len() != n || levels[0] != 0 || levels[n - 1] != ONE || levels.windows(2).any(|w| w[0] >= w[1]) {
            let kind = if signed { "signed" } else { "unsigned" };
            return Err(Error::InvalidArgument(format!(
                "a {kind} {bits}-bit level table is {n} strictly increasing values from 0 to 2^24, got {levels:?}"
            )));
        }
        Ok(LevelTable { bits, signed, levels })
    }

    /// Evenly spaced levels (the uniform quantizer in this format), signed.
    pub fn uniform(bits: u32) -> Result<Self> {
        Self::uniform_as(bits, true)
    }

    /// Evenly spaced levels, signed or unsigned.
    pub fn uniform_as(bits: u32, signed: bool) -> Result<Self> {
        let n = level_count(bits, signed)? as u64;
        Self::with_sign(bits, signed, (0..n).map(|i| ((i * ONE as u64) / (n - 1)) as u32).collect())
    }

    /// From levels in `[0, 1]` (first 0, last 1), rounded to the fixed point; signed when there
    /// are `2^(bits−1)` of them, unsigned when there are `2^bits`.
    pub fn from_unit(bits: u32, unit: &[f64]) -> Result<Self> {
        let signed = unit.len() != 1usize << bits.min(31);
        Self::with_sign(bits, signed, unit.iter().map(|&l| (l * ONE as f64).round() as u32).collect())
    }

    /// The code's sign bit (0 for an unsigned table).
    pub fn sign_bit(&self) -> u32 {
        if self.signed {
            1 << (self.bits - 1)
        } else {
            0
        }
    }

    /// Codes per u32 word.
    pub fn per_word(&self) -> u32 {
        32 / self.bits
    }

    /// The levels as fractions of the scale.
    pub fn unit(&self) -> Vec<f64> {
        self.levels.iter().map(|&l| l as f64 / ONE as f64).collect()
    }

    /// Encodes `x` with inverse scale `inv` (see the module docs).
    pub fn encode(&self, x: f32, inv: f32, stochastic: bool, r24: u32) -> u32 {
        let n = self.levels.len() as u32 - 1;
        let sign_bit = self.sign_bit();
        if x.is_nan() || (!self.signed && x.is_sign_negative()) {
            return 0;
        }
        if x.is_infinite() {
            return if x < 0.0 { sign_bit | n } else { n };
        }
        let y = ftz(ftz(x) * inv);
        let bits = y.to_bits();
        let abs = bits & 0x7fff_ffff;
        if abs == 0 {
            return 0;
        }
        let u = fixed24(abs);
        let i = self.levels.partition_point(|&l| l <= u) as u32 - 1;
        let idx = if i >= n {
            n
        } else {
            let (lo, hi) = (self.levels[i as usize], self.levels[i as usize + 1]);
            let (d, g) = (u - lo, hi - lo);
            let up = if stochastic { mul_hi24(r24, g) < d } else { 2 * d > g };
            i + up as u32
        };
        if idx == 0 {
            return 0;
        }
        if bits >> 31 == 1 {
            sign_bit | idx
        } else {
            idx
        }
    }

    /// The value of `code` at `scale`.
    pub fn decode(&self, code: u32, scale: f32) -> f32 {
        let sign_bit = self.sign_bit();
        let idx = (code & (((1u32 << self.bits) - 1) ^ sign_bit)) as usize;
        let v = self.levels[idx.min(self.levels.len() - 1)] as f32 * (1.0 / ONE as f32) * scale;
        if code & sign_bit != 0 {
            -v
        } else {
            v
        }
    }
}

/// `⌊|y|·2²⁴⌋` for a positive normal f32's bits, clamped to [`ONE`].
pub fn fixed24(abs_bits: u32) -> u32 {
    let e = abs_bits >> 23;
    if e >= 127 {
        return ONE;
    }
    let m = (abs_bits & 0x007f_ffff) | 0x0080_0000;
    let shift = 126 - e;
    if shift >= 32 {
        0
    } else {
        m >> shift
    }
}

/// `⌊a·b / 2²⁴⌋` for `a, b < 2²⁵`, in 12-bit limbs so that every partial product fits in u32.
pub fn mul_hi24(a: u32, b: u32) -> u32 {
    let (ah, al) = (a >> 12, a & 0xfff);
    let (bh, bl) = (b >> 12, b & 0xfff);
    let mid = ah * bl + al * bh + ((al * bl) >> 12);
    ah * bh + (mid >> 12)
}

/// The scale and inverse scale of a row with absmax `amax` (0, 0 for an all-zero or
/// non-normal row).
pub fn scale_for_amax(amax: f32) -> (f32, f32) {
    if !amax.is_finite() || amax.to_bits() < 0x0080_0000 {
        return (0.0, 0.0);
    }
    (amax, recip_rne(amax))
}

/// A Weibull distribution of |x|: `P(|x| > t) = exp(−(t/λ)^k)`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Weibull {
    /// Shape k.
    pub shape: f64,
    /// Scale λ.
    pub scale: f64,
}

impl Weibull {
    /// Moment matching from `E|x|` and `E x²`: `E x² / (E|x|)² = Γ(1 + 2/k) / Γ(1 + 1/k)²` is
    /// decreasing in k, solved by bisection on ln k over [0.02, 100]; then λ = E|x| / Γ(1 + 1/k).
    pub fn fit(mean_abs: f64, mean_sq: f64) -> Result<Self> {
        if !(mean_abs > 0.0 && mean_sq > 0.0 && mean_abs.is_finite() && mean_sq.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "a Weibull fit needs positive finite moments, got E|x| = {mean_abs}, E x² = {mean_sq}"
            )));
        }
        let ratio = mean_sq / (mean_abs * mean_abs);
        let r = |k: f64| (libm::lgamma(1.0 + 2.0 / k) - 2.0 * libm::lgamma(1.0 + 1.0 / k)).exp();
        let (mut lo, mut hi) = (0.02f64.ln(), 100f64.ln());
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if r(mid.exp()) > ratio {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let shape = (0.5 * (lo + hi)).exp();
        Ok(Weibull { shape, scale: mean_abs / libm::tgamma(1.0 + 1.0 / shape) })
    }

    /// Density at `t ≥ 0`.
    pub fn pdf(&self, t: f64) -> f64 {
        if t <= 0.0 {
            return if self.shape < 1.0 {
                f64::INFINITY
            } else if self.shape == 1.0 {
                1.0 / self.scale
            } else {
                0.0
            };
        }
        let z = t / self.scale;
        self.shape / self.scale * z.powf(self.shape - 1.0) * (-z.powf(self.shape)).exp()
    }

    /// `P(|x| ≤ t)`.
    pub fn cdf(&self, t: f64) -> f64 {
        if t <= 0.0 {
            0.0
        } else {
            1.0 - (-(t / self.scale).powf(self.shape)).exp()
        }
    }
}

/// Probability masses of `dist` (restricted to `[0, top]`, in units of `top`) on the midpoints
/// of `n` equal cells of [0, 1]: `(points, weights)`, weights summing to 1.
pub fn discretize(dist: &Weibull, top: f64, n: usize) -> (Vec<f64>, Vec<f64>) {
    let total = dist.cdf(top).max(f64::MIN_POSITIVE);
    let pts: Vec<f64> = (0..n).map(|j| (j as f64 + 0.5) / n as f64).collect();
    let w: Vec<f64> = (0..n)
        .map(|j| (dist.cdf(top * (j + 1) as f64 / n as f64) - dist.cdf(top * j as f64 / n as f64)) / total)
        .collect();
    (pts, w)
}

/// Prefix sums of `w`, `w·u`, `w·u²` over the points, for O(1) interval costs.
struct Prefix {
    s0: Vec<f64>,
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl Prefix {
    fn new(pts: &[f64], w: &[f64]) -> Self {
        let mut p = Prefix { s0: vec![0.0], s1: vec![0.0], s2: vec![0.0] };
        for (&u, &wi) in pts.iter().zip(w) {
            p.s0.push(p.s0.last().unwrap() + wi);
            p.s1.push(p.s1.last().unwrap() + wi * u);
            p.s2.push(p.s2.last().unwrap() + wi * u * u);
        }
        p
    }

    /// Σ w·(b − u)(u − a) over points with index in [ia, ib) (the points inside [a, b)).
    fn cost(&self, ia: usize, ib: usize, a: f64, b: f64) -> f64 {
        let (s0, s1, s2) = (self.s0[ib] - self.s0[ia], self.s1[ib] - self.s1[ia], self.s2[ib] - self.s2[ia]);
        -s2 + (a + b) * s1 - a * b * s0
    }
}

/// The expected variance of unbiased stochastic rounding onto `levels` (in [0, 1], increasing,
/// 0 first and 1 last) of values distributed as `(pts, w)`.
pub fn expected_variance(levels: &[f64], pts: &[f64], w: &[f64]) -> f64 {
    let p = Prefix::new(pts, w);
    let idx = |l: f64| pts.partition_point(|&u| u < l);
    levels.windows(2).map(|ab| p.cost(idx(ab[0]), idx(ab[1]), ab[0], ab[1])).sum()
}

/// The `2^(bits−1)` levels (a signed table's) on the grid `{j / n}` that minimize
/// [`expected_variance`] for values distributed as `(pts, w)` (from [`discretize`] with the same
/// `n`): [`optimal_levels_as`].
pub fn optimal_levels(bits: u32, pts: &[f64], w: &[f64]) -> Result<Vec<f64>> {
    optimal_levels_as(bits, true, pts, w)
}

/// The [`level_count`] levels of a signed or unsigned `bits`-bit table on the grid `{j / n}`
/// that minimize [`expected_variance`] for values distributed as `(pts, w)`, by coordinate
/// descent from evenly spaced levels: each interior level in turn moves to the grid point
/// between its neighbours with the least cost, until a sweep changes nothing.
pub fn optimal_levels_as(bits: u32, signed: bool, pts: &[f64], w: &[f64]) -> Result<Vec<f64>> {
    let m = level_count(bits, signed)?;
    let n = pts.len();
    if n < 2 * m {
        return Err(Error::InvalidArgument(format!("{n} grid points are too few for {m} levels")));
    }
    let p = Prefix::new(pts, w);
    // Level j/n sits between points j−1 and j: the points in [j_a/n, j_b/n) are indices j_a..j_b.
    let mut g: Vec<usize> = (0..m).map(|i| i * n / (m - 1)).collect();
    let cell = |p: &Prefix, ja: usize, jb: usize| p.cost(ja, jb, ja as f64 / n as f64, jb as f64 / n as f64);
    for _sweep in 0..1000 {
        let mut changed = false;
        for i in 1..m - 1 {
            let (a, b) = (g[i - 1], g[i + 1]);
            let mut best = (cell(&p, a, g[i]) + cell(&p, g[i], b), g[i]);
            for j in a + 1..b {
                let c = cell(&p, a, j) + cell(&p, j, b);
                if c < best.0 - 1e-18 {
                    best = (c, j);
                }
            }
            if best.1 != g[i] {
                g[i] = best.1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Ok(g.iter().map(|&j| j as f64 / n as f64).collect())
}

/// The cell masses (as [`discretize`]) of `|x| / rowmax` when |x| follows `dist` and each row is
/// scaled by its own absmax: the mixture over rows of `dist` truncated to `[0, amax_r]` in units
/// of `amax_r` (at most 1024 rows, evenly picked, enter the mixture).
pub fn discretize_rows(dist: &Weibull, row_amax: &[f32], n: usize) -> (Vec<f64>, Vec<f64>) {
    let live: Vec<f64> = row_amax.iter().filter(|a| a.is_finite() && **a > 0.0).map(|&a| a as f64).collect();
    let step = live.len().div_ceil(1024).max(1);
    if live.is_empty() {
        return discretize(dist, 1.0, n);
    }
    // The CDF at a·j/n is 1 − exp(−(a/λ)^k · (j/n)^k): the powers of j/n are shared by every
    // row, leaving one exp per cell and row (a refit's host time was mostly powf).
    let unit_pow: Vec<f64> = (0..=n).map(|j| (j as f64 / n as f64).powf(dist.shape)).collect();
    let mut w = vec![0f64; n];
    let mut used = 0;
    let mut cdf = vec![0f64; n + 1];
    for &a in live.iter().step_by(step) {
        let c = (a / dist.scale).powf(dist.shape);
        for (v, &u) in cdf.iter_mut().zip(&unit_pow) {
            *v = 1.0 - (-(c * u)).exp();
        }
        let total = cdf[n].max(f64::MIN_POSITIVE);
        for (j, acc) in w.iter_mut().enumerate() {
            *acc += (cdf[j + 1] - cdf[j]) / total;
        }
        used += 1;
    }
    w.iter_mut().for_each(|v| *v /= used as f64);
    ((0..n).map(|j| (j as f64 + 0.5) / n as f64).collect(), w)
}

/// TinyScript's signed or unsigned table for `bits` when every row is scaled by its own absmax
/// (`row_amax`): the Weibull fit of |x| from its moments, the distribution of `|x| / rowmax` it
/// implies ([`discretize_rows`], 4096 cells), then [`optimal_levels_as`].
pub fn levels_for_rows(
    bits: u32,
    signed: bool,
    mean_abs: f64,
    mean_sq: f64,
    row_amax: &[f32],
) -> Result<(Weibull, LevelTable)> {
    let fit = Weibull::fit(mean_abs, mean_sq)?;
    let (pts, w) = discretize_rows(&fit, row_amax, 4096);
    let unit = optimal_levels_as(bits, signed, &pts, &w)?;
    Ok((fit, LevelTable::from_unit(bits, &unit)?))
}

/// TinyScript's table for `bits` from the moments of |x| (`E|x|`, `E x²`) and its absmax: the
/// Weibull fit, discretized on 4096 cells of [0, absmax], then [`optimal_levels`].
pub fn levels_for(bits: u32, mean_abs: f64, mean_sq: f64, amax: f64) -> Result<(Weibull, LevelTable)> {
    let fit = Weibull::fit(mean_abs, mean_sq)?;
    if !(amax > 0.0 && amax.is_finite()) {
        return Err(Error::InvalidArgument(format!("absmax must be positive and finite, got {amax}")));
    }
    let (pts, w) = discretize(&fit, amax, 4096);
    let unit = optimal_levels(bits, &pts, &w)?;
    Ok((fit, LevelTable::from_unit(bits, &unit)?))
}
