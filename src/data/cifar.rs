//! CIFAR-10 from the official binary batches (`cifar-10-binary.tar.gz`, unpacked):
//! `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, each a sequence of 3073-byte
//! records (1 label byte, then 1024 red, 1024 green, 1024 blue bytes of a 32×32 image, row-major).
//!
//! Images are converted to channels-last and normalized per channel. Checks: every file
//! present, a whole number of records (else "truncated"), labels in 0..=9. The official archive
//! publishes no per-file digests, so unlike MNIST the content is checked structurally only.

use super::Dataset;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Bytes per record.
pub const RECORD: usize = 3073;
/// Per-channel means of the training set (R, G, B), on the 0..1 scale.
pub const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel standard deviations.
pub const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// CIFAR-10's training and test sets.
pub struct Cifar10 {
    /// The five training batches (50,000 images).
    pub train: Dataset,
    /// The test batch (10,000 images).
    pub test: Dataset,
}

/// Parses the records of one batch file.
pub fn parse_batch(bytes: &[u8], path: &str) -> Result<Dataset> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::Data {
            path: path.into(),
            detail: format!(
                "truncated or not a CIFAR-10 batch: {} bytes is not a whole number of {RECORD}-byte records",
                bytes.len()
            ),
        });
    }
    let n = bytes.len() / RECORD;
    let mut images = Vec::with_capacity(n * 3072);
    let mut labels = Vec::with_capacity(n);
    for (r, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(Error::Data {
                path: path.into(),
                detail: format!("record {r}: label {} out of range 0..=9", rec[0]),
            });
        }
        labels.push(rec[0]);
        let px = &rec[1..];
        for i in 0..1024 {
            for c in 0..3 {
                images.push((px[c * 1024 + i] as f32 / 255.0 - MEAN[c]) / STD[c]);
            }
        }
    }
    Dataset::new(images, labels, (32, 32, 3), 10)
}

fn concat(parts: Vec<Dataset>) -> Dataset {
    let mut it = parts.into_iter();
    let mut d = it.next().expect("at least one batch");
    for p in it {
        d.images.extend(p.images);
        d.labels.extend(p.labels);
    }
    d
}

impl Cifar10 {
    /// Loads from `dir`, or from `dir/cifar-10-batches-bin` if that is where the files are.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let mut dir: PathBuf = dir.as_ref().to_path_buf();
        if !dir.join("test_batch.bin").exists() && dir.join("cifar-10-batches-bin").is_dir() {
            dir = dir.join("cifar-10-batches-bin");
        }
        let read = |name: &str| -> Result<Dataset> {
            let path = dir.join(name);
            if !path.exists() {
                return Err(Error::Data { path: path.display().to_string(), detail: "missing: expected the official binary batches (data_batch_1.bin … data_batch_5.bin, test_batch.bin) from cifar-10-binary.tar.gz".into() });
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
            parse_batch(&bytes, &path.display().to_string())
        };
        let train = (1..=5).map(|i| read(&format!("data_batch_{i}.bin"))).collect::<Result<Vec<_>>>()?;
        Ok(Cifar10 { train: concat(train), test: read("test_batch.bin")? })
    }
}
