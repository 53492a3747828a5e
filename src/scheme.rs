//! Quantization schemes as small values: a format, a scale granularity and a rounding mode; and
//! the layout (groups, words) they give a `[rows, cols]` tensor.

use crate::format::Format;
use crate::{rng, Error, Result};

/// Which elements share a scale.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per row (per sample: Chen et al.'s PSQ).
    PerRow,
    /// One scale per block of `n` consecutive elements of a row (`n` a power of two, at least 8,
    /// and at least 16 for int2, so that blocks hold whole words).
    PerBlock(u32),
}

impl Granularity {
    /// Per row, or the block a block-scaled format requires ([`Format::block`]).
    pub fn native(format: Format) -> Self {
        format.block().map_or(Granularity::PerRow, Granularity::PerBlock)
    }
}

impl std::fmt::Display for Granularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Granularity::PerTensor => f.write_str("tensor"),
            Granularity::PerRow => f.write_str("row"),
            Granularity::PerBlock(n) => write!(f, "block{n}"),
        }
    }
}

/// How values between two codes are resolved.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round to nearest, ties to even (LUQ's log4: ties up; see `format::log4`).
    Nearest,
    /// Stochastic rounding, unbiased, reproducible from `(seed, stream)`; element `i` of the
    /// (logical, row-major) tensor uses draw `rng::draw24(rng::key(seed, stream), i)`.
    Stochastic {
        /// The run's seed.
        seed: u32,
        /// A stream id separating independent uses of one seed (layer, step, sample...).
        stream: u32,
    },
}

impl Rounding {
    /// `(key, stochastic)`: the key the draws use outside a step plan (the references' view).
    pub fn key(self) -> (u32, bool) {
        match self {
            Rounding::Nearest => (0, false),
            Rounding::Stochastic { seed, stream } => (rng::key(seed, stream), true),
        }
    }

    /// `(seed, stream, stochastic)` as the kernels receive them (they add the recorder's
    /// [`crate::record::StepState::stream_base`] to the stream).
    pub fn seed_stream(self) -> (u32, u32, bool) {
        match self {
            Rounding::Nearest => (0, 0, false),
            Rounding::Stochastic { seed, stream } => (seed, stream, true),
        }
    }
}

/// The longest run along K whose sum of products of `a` and `b` codes an i32 holds exactly,
/// whatever the codes: `⌊(2³¹ − 1) / (max_lane(a) · max_lane(b))⌋` rounded down to a multiple of
/// 32 (the 128×128 tile folds between K steps of 32). Int8 × int8: 131,040; log4 × log4:
/// 524,256. A product over a longer K (a convolution's weight gradient sums over batch · height ·
/// width) is summed in chunks of at most this, each folded into f32 in order. Unbounded
/// (`u32::MAX`) unless both formats are integer formats.
pub fn exact_chunk(a: Format, b: Format) -> u32 {
    match (a.max_lane(), b.max_lane()) {
        (Some(x), Some(y)) => (i32::MAX as u32 / (x * y)) / 32 * 32,
        _ => u32::MAX,
    }
}

/// A complete quantization scheme.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuantScheme {
    /// The number format.
    pub format: Format,
    /// The scale granularity.
    pub granularity: Granularity,
    /// The rounding mode.
    pub rounding: Rounding,
}

impl QuantScheme {
    /// Per-tensor scale, round to nearest.
    pub fn per_tensor(format: Format) -> Self {
        QuantScheme { format, granularity: Granularity::PerTensor, rounding: Rounding::Nearest }
    }
    /// Per-row scale, round to nearest.
    pub fn per_row(format: Format) -> Self {
        QuantScheme { format, granularity: Granularity::PerRow, rounding: Rounding::Nearest }
    }
    /// Round to nearest with the format's own granularity: per row, or the block a block-scaled
    /// format requires (MXFP8, MXFP4: 32; NVFP4: 16).
    pub fn native(format: Format) -> Self {
        QuantScheme { format, granularity: Granularity::native(format), rounding: Rounding::Nearest }
    }
    /// Per-block scale, round to nearest.
    pub fn per_block(format: Format, block: u32) -> Self {
        QuantScheme { format, granularity: Granularity::PerBlock(block), rounding: Rounding::Nearest }
    }
    /// The same scheme with stochastic rounding.
    pub fn stochastic(self, seed: u32, stream: u32) -> Self {
        QuantScheme { rounding: Rounding::Stochastic { seed, stream }, ..self }
    }
}

/// Where every element, word and scale of a quantized `[rows, cols]` tensor lives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct QuantLayout {
    /// Rows of the (logical) tensor.
    pub rows: u32,
    /// Columns: the packed dimension.
    pub cols: u32,
    /// The format.
    pub format: Format,
    /// The scale granularity.
    pub granularity: Granularity,
    /// Packed words per row, `ceil(cols / per_word)`; the tail of a row is padded with code 0.
    pub words_per_row: u32,
    /// Scale groups per row (per block: `ceil(cols / block)`; otherwise 1).
    pub groups_per_row: u32,
    /// Total number of scales.
    pub n_groups: u32,
    /// `group(row, col) = row * row_mul + col / block_div`.
    pub row_mul: u32,
    /// See `row_mul`.
    pub block_div: u32,
}

impl QuantLayout {
    /// Validates the combination and computes the layout.
    pub fn new(rows: usize, cols: usize, format: Format, granularity: Granularity) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(Error::Empty("QuantLayout::new"));
        }
        if rows.checked_mul(cols).is_none_or(|n| n > u32::MAX as usize) {
            return Err(Error::InvalidArgument(format!("{rows}x{cols} elements exceeds the 2^32 element index range")));
        }
        if let Some(b) = format.block() {
            if granularity != Granularity::PerBlock(b) {
                return Err(Error::InvalidArgument(format!(
                    "{format} has one scale per block of {b} values along the packed dimension, not {granularity}"
                )));
            }
        }
        let (rows, cols) = (rows as u32, cols as u32);
        let per_word = format.per_word();
        let words_per_row = cols.div_ceil(per_word);
        let (groups_per_row, n_groups, row_mul, block_div) = match granularity {
            Granularity::PerTensor => (1, 1, 0, u32::MAX),
            Granularity::PerRow => (1, rows, 1, u32::MAX),
            Granularity::PerBlock(b) => {
                if b < per_word.max(8) || !b.is_power_of_two() {
                    return Err(Error::InvalidArgument(format!(
                        "block size {b}: must be a power of two of at least {} (so blocks hold whole packed {format} words)",
                        per_word.max(8)
                    )));
                }
                let g = cols.div_ceil(b);
                (g, rows * g, g, b)
            }
        };
        Ok(QuantLayout { rows, cols, format, granularity, words_per_row, groups_per_row, n_groups, row_mul, block_div })
    }

    /// Codes per word.
    pub fn per_word(&self) -> u32 {
        self.format.per_word()
    }

    /// Group maxima a quantizer reduces: one per group, and one more for the tensor's maximum
    /// when the format's scales depend on it (NVFP4).
    pub fn amax_len(&self) -> usize {
        self.n_groups as usize + self.format.needs_tensor_amax() as usize
    }

    /// Total packed words.
    pub fn words(&self) -> usize {
        self.rows as usize * self.words_per_row as usize
    }

    /// Scale group of element `(row, col)`.
    pub fn group(&self, row: u32, col: u32) -> u32 {
        row * self.row_mul + col / self.block_div
    }

    /// Words per scale group that a workgroup segment reduces over (a power of two, at most 256).
    pub fn seg(&self) -> u32 {
        match self.granularity {
            Granularity::PerBlock(b) => (b / self.per_word()).min(256),
            _ => 256,
        }
    }

    /// Elements per scale chunk along K of a product of this operand with `other` (both packed
    /// along the same K): the smaller scale block, or all of K rounded up to whole 4-lane words
    /// when neither is block-scaled — but never more than [`exact_chunk`] of the two formats.
    /// Integer GEMMs sum each chunk exactly in i32, then scale it and add it in f32.
    pub fn shared_chunk(&self, other: &QuantLayout) -> u32 {
        let block = |g: Granularity| match g {
            Granularity::PerBlock(n) => Some(n),
            _ => None,
        };
        let chunk = match (block(self.granularity), block(other.granularity)) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => self.cols.div_ceil(4) * 4,
        };
        chunk.min(exact_chunk(self.format, other.format))
    }

    /// The same layout for the transposed tensor `[cols, rows]`.
    pub fn transposed(&self) -> Result<Self> {
        QuantLayout::new(self.cols as usize, self.rows as usize, self.format, self.granularity)
    }
}
