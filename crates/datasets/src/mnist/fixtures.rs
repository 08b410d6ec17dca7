//! MNIST-shaped directories written by the tests: small ones, and copies of the shipped one.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::files::{ALL_FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::idx::tests::{gzip, idx_bytes};
use crate::test_server::TestServer;

/// The offset of the pixel [`write_altered_test_images`] changes: image 5, row 14, column 8.
pub(crate) const ALTERED_PIXEL: usize = 16 + 5 * 784 + 14 * 28 + 8;

/// The copy of MNIST shipped with rkeras.
pub(crate) fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

/// A server holding the shipped `.gz` files, the real MNIST, under `/mnist/`.
pub(crate) fn mirror_of_shipped() -> TestServer {
    let answers = ALL_FILES
        .iter()
        .map(|file| {
            let body = std::fs::read(shipped().join(file.gz_name())).unwrap();
            (format!("/mnist/{}", file.gz_name()), (200, body))
        })
        .collect();
    TestServer::start(answers)
}

/// Copies the four shipped `.gz` files into `dir`.
pub(crate) fn copy_shipped(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in ALL_FILES {
        std::fs::copy(shipped().join(file.gz_name()), dir.join(file.gz_name())).unwrap();
    }
}

/// The IDX contents of a shipped file.
pub(crate) fn shipped_contents(gz_name: &str) -> Vec<u8> {
    let mut contents = Vec::new();
    GzDecoder::new(std::fs::File::open(shipped().join(gz_name)).unwrap())
        .read_to_end(&mut contents)
        .unwrap();
    contents
}

/// The lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Writes into `dir` the raw test images of the shipped copy with one pixel changed, which
/// a directory search prefers to the `.gz`; returns its path and the SHA-256 of its bytes.
pub(crate) fn write_altered_test_images(dir: &Path) -> (PathBuf, String) {
    let mut contents = shipped_contents(&TEST_IMAGES.gz_name());
    contents[ALTERED_PIXEL] ^= 0x01;
    let path = dir.join(TEST_IMAGES.name);
    std::fs::write(&path, &contents).unwrap();
    (path, sha256(&contents))
}

/// The pixel at `index` of the fixture's pixel stream: distinct from its neighbours.
pub(crate) fn pixel(index: usize) -> u8 {
    (index * 7 % 256) as u8
}

/// The label of example `index`.
pub(crate) fn label(index: usize) -> u8 {
    (index % 10) as u8
}

/// Writes a copy of MNIST with `train` and `test` examples of 28x28 into `dir`, the
/// images gzipped and the labels raw.
pub(crate) fn write_tiny_mnist(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (images, labels, count) in [
        (TRAIN_IMAGES, TRAIN_LABELS, train),
        (TEST_IMAGES, TEST_LABELS, test),
    ] {
        let pixels: Vec<u8> = (0..count * 28 * 28).map(pixel).collect();
        let labels_data: Vec<u8> = (0..count).map(label).collect();
        let images_bytes = idx_bytes(0x0803, &[count as u32, 28, 28], &pixels);
        std::fs::write(dir.join(images.gz_name()), gzip(&images_bytes)).unwrap();
        let labels_bytes = idx_bytes(0x0801, &[count as u32], &labels_data);
        std::fs::write(dir.join(labels.name), labels_bytes).unwrap();
    }
}
