//! The four files of the MNIST distribution: their names, their contents' checksums,
//! finding them in a directory and reading them, checked, into tensors.

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::origin::{self, Origin};
use super::LabelledImages;
use crate::digest::Sha256Reader;
use crate::error::{DigestMismatch, Error, Result};
use crate::idx;

/// The side of an MNIST image, in pixels.
pub const IMAGE_SIDE: usize = 28;

/// One file of the MNIST distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MnistFile {
    /// Its standard name, without `.gz`.
    pub(crate) name: &'static str,
    /// The SHA-256 of its IDX contents (lower-case hex): the one digest every copy is
    /// checked against, downloaded, shipped, cached or the user's, raw or gzipped. The
    /// contents, not the `.gz` bytes: mirrors and the shipped copy compress the files
    /// differently, the IDX bytes inside are the same.
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
    /// Each file's IDX contents are hashed as they are read and checked against the
    /// standard file's SHA-256 as `origin` requires: another digest is an error for a
    /// [`Origin::Standard`] copy and a warning on stderr for a [`Origin::User`] one.
    pub fn load(&self, origin: Origin) -> Result<(LabelledImages, LabelledImages)> {
        let (sets, mismatches) = self.read(origin)?;
        for mismatch in &mismatches {
            origin::warn(mismatch);
        }
        Ok(sets)
    }

    /// Reads and checks the files as [`MnistPaths::load`] does, but returns the files of a
    /// user's copy that are not the standard ones instead of warning about them.
    pub(crate) fn read(
        &self,
        origin: Origin,
    ) -> Result<((LabelledImages, LabelledImages), Vec<DigestMismatch>)> {
        let (train, test) = std::thread::scope(|scope| {
            let train = scope.spawn(|| {
                read_split(
                    (TRAIN_IMAGES, &self.train_images),
                    (TRAIN_LABELS, &self.train_labels),
                    origin,
                )
            });
            let test = read_split(
                (TEST_IMAGES, &self.test_images),
                (TEST_LABELS, &self.test_labels),
                origin,
            );
            (join(train), test)
        });
        let (train, mut mismatches) = train?;
        let (test, test_mismatches) = test?;
        mismatches.extend(test_mismatches);
        Ok(((train, test), mismatches))
    }
}

/// The result of a scoped thread; a panic there is passed on unchanged.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

/// Reads one image file and its label file into `(images, labels)` tensors, checking
/// both as `origin` requires; returns them with the mismatches to warn about.
fn read_split(
    (images_file, images_path): (MnistFile, &Path),
    (labels_file, labels_path): (MnistFile, &Path),
    origin: Origin,
) -> Result<(LabelledImages, Vec<DigestMismatch>)> {
    let mut mismatches = Vec::new();
    let images = read_checked(
        images_file,
        images_path,
        idx::parse_images,
        origin,
        &mut mismatches,
    )?;
    if (images.rows, images.columns) != (IMAGE_SIDE, IMAGE_SIDE) {
        return Err(Error::format(
            images_path,
            format!("{IMAGE_SIDE}x{IMAGE_SIDE} images"),
            format!("{}x{} images", images.rows, images.columns),
        ));
    }
    let labels = read_checked(
        labels_file,
        labels_path,
        idx::parse_labels,
        origin,
        &mut mismatches,
    )?;
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
    Ok(((images, labels), mismatches))
}

/// Reads `file` from `path` with `parse`, hashing its IDX contents on the way, and checks
/// their SHA-256 as `origin` requires; a mismatch to warn about goes to `mismatches`.
fn read_checked<T>(
    file: MnistFile,
    path: &Path,
    parse: fn(&mut dyn Read, &Path) -> Result<T>,
    origin: Origin,
    mismatches: &mut Vec<DigestMismatch>,
) -> Result<T> {
    let mut reader = Sha256Reader::new(idx::open(path)?);
    let contents = parse(&mut reader, path)?;
    mismatches.extend(origin.check(file, path, reader.hex_digest())?);
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mnist::fixtures::{
        copy_shipped, shipped_contents, write_altered_test_images, ALTERED_PIXEL,
    };

    #[test]
    fn a_users_copy_with_another_digest_is_read_and_its_file_reported() {
        let dir = tempfile::tempdir().unwrap();
        copy_shipped(dir.path());
        let (altered, found) = write_altered_test_images(dir.path());
        let paths = MnistPaths::find_in(dir.path()).unwrap();
        let ((_, (x_test, _)), mismatches) = paths.read(Origin::User).unwrap();
        assert_eq!(
            mismatches,
            [DigestMismatch {
                path: altered,
                expected: TEST_IMAGES.content_sha256.to_owned(),
                found,
            }]
        );
        let pixels = x_test.flatten_all().unwrap().to_vec1::<u8>().unwrap();
        let header = 16;
        let standard = shipped_contents(&TEST_IMAGES.gz_name())[ALTERED_PIXEL];
        assert_eq!(pixels[ALTERED_PIXEL - header], standard ^ 0x01);
    }

    #[test]
    fn a_standard_copy_with_another_digest_is_an_error_naming_the_file_and_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        copy_shipped(dir.path());
        let (altered, found) = write_altered_test_images(dir.path());
        let paths = MnistPaths::find_in(dir.path()).unwrap();
        let error = paths.read(Origin::Standard).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: expected SHA-256 {} of its IDX contents (the standard file's), found {found}",
                altered.display(),
                TEST_IMAGES.content_sha256
            )
        );
    }
}
