//! Datasets: loaders for MNIST (IDX, SHA-256 checked) and CIFAR-10 (official binary batches),
//! the MNIST subset embedded in the crate, seeded shuffling, and text for character-level
//! language models ([`text`], with a Shakespeare corpus embedded).
//!
//! Images are stored normalized, channels-last (`[n, h, w, c]`, so a row of a batch is one
//! image in the NHWC layout lowbit's layers use); labels are class indices.

pub mod cifar;
pub mod mnist;
pub mod text;

use crate::{rng, Error, Result};

/// An in-memory labelled image set. Built by [`Dataset::new`], which checks that the pixels,
/// labels, shape and classes fit together, so every method after it is safe.
#[derive(Clone)]
pub struct Dataset {
    images: Vec<f32>,
    labels: Vec<u8>,
    shape: (usize, usize, usize),
    classes: usize,
}

impl Dataset {
    /// `n` images of `shape` `(h, w, c)` — `images` holds `n · h · w · c` normalized pixels,
    /// image after image, channels last — and their `n` labels, each below `classes`.
    pub fn new(images: Vec<f32>, labels: Vec<u8>, shape: (usize, usize, usize), classes: usize) -> Result<Self> {
        let dim = shape.0.checked_mul(shape.1).and_then(|v| v.checked_mul(shape.2));
        let want = dim.and_then(|d| d.checked_mul(labels.len()));
        match (dim, want) {
            (Some(d), Some(n)) if d > 0 && n == images.len() => {}
            _ => {
                return Err(Error::Shape {
                    op: "Dataset::new",
                    detail: format!(
                        "{} labels of {shape:?} images need their pixels, got {} values",
                        labels.len(),
                        images.len()
                    ),
                })
            }
        }
        if classes == 0 || classes > 256 {
            return Err(Error::InvalidArgument(format!(
                "Dataset::new: {classes} classes (1 to 256, labels are bytes)"
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
            return Err(Error::InvalidArgument(format!(
                "Dataset::new: label {bad} out of range for {classes} classes"
            )));
        }
        Ok(Dataset { images, labels, shape, classes })
    }

    /// The pixels, `len() · dim()` values.
    pub fn images(&self) -> &[f32] {
        &self.images
    }

    /// The labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// An image's shape `(h, w, c)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if it holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image.
    pub fn dim(&self) -> usize {
        self.shape.0 * self.shape.1 * self.shape.2
    }

    /// The first `n` images (or all, if fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset { images: self.images[..n * self.dim()].to_vec(), labels: self.labels[..n].to_vec(), ..self.clone() }
    }

    /// Copies the images and labels at `idx` into one batch; an index past the set is an error.
    pub fn gather(&self, idx: &[usize]) -> Result<(Vec<f32>, Vec<u32>)> {
        let d = self.dim();
        if let Some(bad) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidArgument(format!("Dataset::gather: index {bad} of a set of {}", self.len())));
        }
        let mut x = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            x.extend_from_slice(&self.images[i * d..(i + 1) * d]);
        }
        Ok((x, idx.iter().map(|&i| self.labels[i] as u32).collect()))
    }

    /// The index order of epoch `epoch` under `seed` (a Fisher–Yates shuffle driven by
    /// [`rng`], so the same seed gives the same order everywhere).
    pub fn order(&self, seed: u32, epoch: u32) -> Vec<usize> {
        shuffled(self.len(), seed, epoch)
    }
}

/// `0..n` shuffled by `(seed, epoch)`.
pub fn shuffled(n: usize, seed: u32, epoch: u32) -> Vec<usize> {
    let key = rng::key(seed, rng::streams::data_order(epoch));
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = ((rng::draw(key, i as u32) as u64 * (i as u64 + 1)) >> 32) as usize;
        v.swap(i, j);
    }
    v
}

/// Reads a file, decompressing it if its name ends in `.gz`.
pub(crate) fn read_maybe_gz(path: &std::path::Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
    if path.extension().is_some_and(|e| e == "gz") {
        gunzip(&raw)
            .map_err(|e| Error::Data { path: path.display().to_string(), detail: format!("corrupt gzip data: {e}") })
    } else {
        Ok(raw)
    }
}

pub(crate) fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let a = shuffled(1000, 7, 0);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, shuffled(1000, 7, 0));
        assert_ne!(a, shuffled(1000, 7, 1));
        assert_ne!(a, shuffled(1000, 8, 0));
    }
}
