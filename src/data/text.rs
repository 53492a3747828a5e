//! Text for character-level language models: a corpus as byte tokens over the bytes it uses,
//! split into training and validation tokens, and batches of windows (the inputs a token's ids,
//! the labels the next tokens).
//!
//! [`Text::shakespeare`] is the corpus embedded in the crate (seven tragedies, 993,263 bytes,
//! 73 distinct characters; see `data/shakespeare/README.md`), checked against its SHA-256;
//! [`Text::from_file`] reads any text file (its vocabulary is the bytes it holds, so UTF-8
//! multi-byte characters become several tokens).

use super::{read_maybe_gz, sha256_hex};
use crate::{rng, Error, Result};
use std::path::Path;

const EMBEDDED: &[u8] = include_bytes!("../../data/shakespeare/tragedies.txt.gz");
const EMBEDDED_SUMS: &str = include_str!("../../data/shakespeare/SHA256SUMS");

/// A corpus as tokens: each byte's index in the sorted list of the bytes it uses.
#[derive(Clone, Debug)]
pub struct Text {
    name: String,
    vocab: Vec<u8>,
    index: [Option<u32>; 256],
    ids: Vec<u32>,
}

impl Text {
    /// The corpus of `bytes` (at least two tokens, so one window has an input and a label).
    pub fn new(name: impl Into<String>, bytes: &[u8]) -> Result<Self> {
        let name = name.into();
        if bytes.len() < 2 {
            return Err(Error::Data { path: name, detail: format!("{} bytes: too short to model", bytes.len()) });
        }
        let mut seen = [false; 256];
        for &b in bytes {
            seen[b as usize] = true;
        }
        let vocab: Vec<u8> = (0..=255u8).filter(|&b| seen[b as usize]).collect();
        let mut index = [None; 256];
        for (i, &b) in vocab.iter().enumerate() {
            index[b as usize] = Some(i as u32);
        }
        let ids = bytes.iter().map(|&b| index[b as usize].expect("every byte is in the vocabulary")).collect();
        Ok(Text { name, vocab, index, ids })
    }

    /// A text file (`.gz` decompressed); any bytes, usually UTF-8 text.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::new(path.display().to_string(), &read_maybe_gz(path)?)
    }

    /// The Shakespeare corpus embedded in the crate, checked against its SHA-256.
    pub fn shakespeare() -> Result<Self> {
        let err = |d: String| Error::Data { path: "embedded tragedies.txt".into(), detail: d };
        let bytes = super::gunzip(EMBEDDED).map_err(|e| err(e.to_string()))?;
        let want = EMBEDDED_SUMS.split_whitespace().next().unwrap_or_default();
        if sha256_hex(&bytes) != want {
            return Err(err("SHA-256 mismatch".into()));
        }
        Self::new("embedded Shakespeare", &bytes)
    }

    /// Where it came from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Distinct tokens (the model's vocabulary size).
    pub fn vocab(&self) -> usize {
        self.vocab.len()
    }

    /// The corpus as token ids.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// `s` as token ids; a byte the corpus never uses is an error.
    pub fn encode(&self, s: &[u8]) -> Result<Vec<u32>> {
        s.iter()
            .map(|&b| {
                self.index[b as usize].ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "byte {b:#04x} ({:?}) is not in {}'s vocabulary",
                        b as char, self.name
                    ))
                })
            })
            .collect()
    }

    /// Token ids as text (ids past the vocabulary as U+FFFD; invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().map(|&i| self.vocab.get(i as usize).copied().unwrap_or(b'?')).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The fixed split: the first `1 − validation` of the tokens for training, the rest for
    /// validation (each at least `min_len` tokens, or an error).
    pub fn split(&self, validation: f64, min_len: usize) -> Result<(Tokens, Tokens)> {
        if !(0.0..1.0).contains(&validation) {
            return Err(Error::InvalidArgument(format!("validation fraction {validation} is not in [0, 1)")));
        }
        let cut = ((self.ids.len() as f64) * (1.0 - validation)).round() as usize;
        let (a, b) = self.ids.split_at(cut);
        if a.len() < min_len || b.len() < min_len {
            return Err(Error::Data {
                path: self.name.clone(),
                detail: format!(
                    "{} tokens split into {} and {}: each part needs at least {min_len}",
                    self.ids.len(),
                    a.len(),
                    b.len()
                ),
            });
        }
        Ok((Tokens(a.to_vec()), Tokens(b.to_vec())))
    }
}

/// A run of token ids to cut windows from.
#[derive(Clone, Debug)]
pub struct Tokens(Vec<u32>);

impl Tokens {
    /// The ids.
    pub fn ids(&self) -> &[u32] {
        &self.0
    }

    /// Windows of `context` inputs (each needs one more token, its last label) that fit.
    pub fn windows(&self, context: usize) -> usize {
        self.0.len().saturating_sub(context)
    }

    /// The batch of the windows starting at `starts`: inputs `ids[s..s + context]` as f32 (one
    /// per position, the layout [`crate::nn::ops::Embedding`] reads) and labels
    /// `ids[s + 1..s + context + 1]`.
    pub fn batch(&self, starts: &[usize], context: usize) -> Result<(Vec<f32>, Vec<u32>)> {
        if context == 0 {
            return Err(Error::InvalidArgument("a window needs at least one position".into()));
        }
        if let Some(bad) = starts.iter().find(|&&s| s >= self.windows(context)) {
            return Err(Error::InvalidArgument(format!(
                "window at {bad} of {context} positions does not fit in {} tokens",
                self.0.len()
            )));
        }
        let mut x = Vec::with_capacity(starts.len() * context);
        let mut labels = Vec::with_capacity(starts.len() * context);
        for &s in starts {
            x.extend(self.0[s..s + context].iter().map(|&i| i as f32));
            labels.extend_from_slice(&self.0[s + 1..s + context + 1]);
        }
        Ok((x, labels))
    }

    /// The starts of batch `index` of a run: `batch` windows drawn uniformly under `seed` from
    /// the data-order stream `index` ([`rng::streams::data_order`]), so a run's data are the
    /// same on every machine and for every scheme.
    pub fn random_starts(&self, seed: u32, index: u32, batch: usize, context: usize) -> Vec<usize> {
        let n = self.windows(context) as u64;
        let key = rng::key(seed, rng::streams::data_order(index));
        (0..batch as u32).map(|i| ((rng::draw(key, i) as u64 * n) >> 32) as usize).collect()
    }

    /// The starts of up to `max` non-overlapping windows from the beginning (a fixed
    /// validation set).
    pub fn tiled_starts(&self, context: usize, max: usize) -> Vec<usize> {
        (0..self.windows(context)).step_by(context.max(1)).take(max).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_windows_shift_by_one() {
        let t = Text::new("t", b"abracadabra").unwrap();
        assert_eq!(t.vocab(), 5);
        assert_eq!(t.decode(t.ids()), "abracadabra");
        assert_eq!(t.encode(b"cab").unwrap(), vec![2, 0, 1]);
        assert!(t.encode(b"z").is_err());
        let (train, val) = t.split(0.3, 2).unwrap();
        assert_eq!((train.ids().len(), val.ids().len()), (8, 3));
        let (x, y) = train.batch(&[0, 3], 3).unwrap();
        assert_eq!(x, vec![0.0, 1.0, 4.0, 0.0, 2.0, 0.0]);
        assert_eq!(y, vec![1, 4, 0, 2, 0, 3]);
        assert!(train.batch(&[5], 3).is_err());
        assert_eq!(train.tiled_starts(3, 10), vec![0, 3]);
        let s = train.random_starts(1, 0, 100, 3);
        assert!(s.iter().all(|&s| s < 5) && s != train.random_starts(1, 1, 100, 3));
        assert!(Text::new("short", b"a").is_err());
        assert!(t.split(0.9, 2).is_err());
    }

    #[test]
    fn embedded_shakespeare_verifies() {
        let t = Text::shakespeare().unwrap();
        assert_eq!((t.ids().len(), t.vocab()), (993_263, 73));
        assert!(t.decode(&t.ids()[..25]).starts_with("HAMLET, PRINCE OF DENMARK"));
    }
}
