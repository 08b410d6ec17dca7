//! The four files of the MNIST distribution: their names, their contents' checksums,
//! finding them in a directory and reading them into tensors.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::LabelledImages;
use crate::error::{Error, Result};
use crate::idx;

/// The side of an MNIST image, in pixels.
pub const IMAGE_SIDE: usize = 28;

/// One file of the MNIST distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MnistFile {
    /// Its standard name, without `.gz`.
    pub(crate) name: &'static str,
    /// The SHA-256 of its uncompressed contents (lower-case hex). The contents, not the
    /// `.gz` bytes: mirrors recompress the files, the IDX bytes inside stay the same.
    pub(crate) content_sha256: &'static str,
}

/// The 60000 training images.
pub(crate) const TRAIN_IMAGES: MnistFile = MnistFile {
    name: "train-images-idx3-ubyte",
    content_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
};
/// The 60000 training labels.
pub(crate) const TRAIN_LABELS: MnistFile = MnistFile {
    name: "train-labels-idx1-ubyte",
    content_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
};
/// The 10000 test images.
pub(crate) const TEST_IMAGES: MnistFile = MnistFile {
    name: "t10k-images-idx3-ubyte",
    content_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
};
/// The 10000 test labels.
pub(crate) const TEST_LABELS: MnistFile = MnistFile {
    name: "t10k-labels-idx1-ubyte",
    content_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};

/// The four files, training set first.
pub(crate) const ALL_FILES: [MnistFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// The four files' names, as an error message lists them.
pub(crate) const FILE_NAMES: &[&str] = &[
    TRAIN_IMAGES.name,
    TRAIN_LABELS.name,
    TEST_IMAGES.name,
    TEST_LABELS.name,
];

impl MnistFile {
    /// The file in `dir`: `name` when it exists, else `name.gz` when that exists.
    pub(crate) fn find_in(&self, dir: &Path) -> Option<PathBuf> {
        [dir.join(self.name), dir.join(self.gz_name())]
            .into_iter()
            .find(|path| path.is_file())
    }

    /// Its gzipped name, as mirrors serve it.
    pub(crate) fn gz_name(&self) -> String {
        format!("{}.gz", self.name)
    }
}

/// Where the four files of one copy of MNIST are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistPaths {
    /// `train-images-idx3-ubyte`, raw or `.gz`.
    pub train_images: PathBuf,
    /// `train-labels-idx1-ubyte`, raw or `.gz`.
    pub train_labels: PathBuf,
    /// `t10k-images-idx3-ubyte`, raw or `.gz`.
    pub test_images: PathBuf,
    /// `t10k-labels-idx1-ubyte`, raw or `.gz`.
    pub test_labels: PathBuf,
}

impl MnistPaths {
    /// The four files in `dir` (each raw or gzipped), or `None` when any is missing.
    pub fn find_in(dir: impl AsRef<Path>) -> Option<Self> {
        let dir = dir.as_ref();
        Some(Self {
            train_images: TRAIN_IMAGES.find_in(dir)?,
            train_labels: TRAIN_LABELS.find_in(dir)?,
            test_images: TEST_IMAGES.find_in(dir)?,
            test_labels: TEST_LABELS.find_in(dir)?,
        })
    }

    /// Reads the files: `((x_train, y_train), (x_test, y_test))`, images u8 (N, 28, 28)
    /// and labels u8 (N), on the CPU. The training and test sets are read in parallel.
    pub fn load(&self) -> Result<(LabelledImages, LabelledImages)> {
        let (train, test) = std::thread::scope(|scope| {
            let train = scope.spawn(|| read_split(&self.train_images, &self.train_labels));
            let test = read_split(&self.test_images, &self.test_labels);
            (join(train), test)
        });
        Ok((train?, test?))
    }
}

/// The result of a scoped thread; a panic there is passed on unchanged.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

/// Reads one image file and its label file into `(images, labels)` tensors.
fn read_split(images_path: &Path, labels_path: &Path) -> Result<LabelledImages> {
    let images = idx::read_images(images_path)?;
    if (images.rows, images.columns) != (IMAGE_SIDE, IMAGE_SIDE) {
        return Err(Error::format(
            images_path,
            format!("{IMAGE_SIDE}x{IMAGE_SIDE} images"),
            format!("{}x{} images", images.rows, images.columns),
        ));
    }
    let labels = idx::read_labels(labels_path)?;
    if labels.len() != images.count {
        return Err(Error::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    let count = images.count;
    let images = Tensor::from_vec(images.pixels, (count, IMAGE_SIDE, IMAGE_SIDE), &Device::Cpu)?;
    let labels = Tensor::from_vec(labels, count, &Device::Cpu)?;
    Ok((images, labels))
}
