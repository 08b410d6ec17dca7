//! Small MNIST-shaped directories written by the tests.

use std::path::Path;

use super::files::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::idx::tests::{gzip, idx_bytes};

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
