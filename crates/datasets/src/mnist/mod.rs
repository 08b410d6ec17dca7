//! The MNIST handwritten digits, as Keras's `keras.datasets.mnist` gives them.
//!
//! [`load_data`] looks for the four standard IDX files (each raw or `.gz`) in order:
//! 1. `$RKERAS_DATA/mnist/` when the `RKERAS_DATA` environment variable is set: it names
//!    a data root holding one directory per dataset, like this repository's `data/`;
//! 2. the copy shipped with rkeras, `data/mnist/` at the root of its repository;
//! 3. the cache `~/.rkeras/datasets/mnist/` (like Keras's `~/.keras/datasets`);
//!
//! and when they are in none of these, downloads them from [`DEFAULT_MIRROR`] into the
//! cache, checking each file's SHA-256. [`load_data_from`] reads one given directory
//! and nothing else; [`DataSource`] sets the places by hand.
//!
//! Every file read is checked too: the SHA-256 of its IDX contents, hashed as it is read,
//! must be the standard file's in the shipped copy and the cache (a damaged file in the
//! cache is downloaded again), while a user's own copy (`RKERAS_DATA`, [`load_data_from`])
//! may differ, with a warning on stderr naming the file; see [`Origin`].

mod cache;
mod files;
mod origin;
mod source;

use std::path::Path;

use candle_core::{DType, Tensor};

pub use files::{MnistPaths, IMAGE_SIDE};
pub use origin::Origin;
pub use source::{DataSource, DATA_ENV_VAR, DEFAULT_MIRROR};

use crate::error::{Error, Result};

/// A pair `(images, labels)`: u8 images (N, 28, 28) and u8 labels (N).
pub type LabelledImages = (Tensor, Tensor);

/// Loads MNIST like Keras: `((x_train, y_train), (x_test, y_test))`, the images u8
/// tensors (N, 28, 28) and the labels u8 tensors (N), 60000 for training and 10000 for
/// testing, on the CPU. See the [module documentation](self) for where it looks.
pub fn load_data() -> Result<(LabelledImages, LabelledImages)> {
    DataSource::from_environment().load()
}

/// Loads MNIST from the four files in `dir` (each raw or `.gz`) and from nowhere else:
/// the user's own copy, so a file that is not the standard one gets a warning on stderr.
pub fn load_data_from(dir: impl AsRef<Path>) -> Result<(LabelledImages, LabelledImages)> {
    let dir = dir.as_ref();
    MnistPaths::find_in(dir)
        .ok_or_else(|| source::not_found(vec![dir.to_path_buf()], None))?
        .load(Origin::User)
}

/// The tutorial's network input: u8 images (N, 28, 28) as f32 (N, 28, 28, 1) in [0, 1],
/// that is `x.astype('float32') / 255.`, bit for bit: each pixel divided by 255 in f32 (candle's
/// `tensor / 255.0` multiplies by the rounded reciprocal instead, which is one unit in the last
/// place off for about half the pixel values).
pub fn to_unit_images(x: &Tensor) -> Result<Tensor> {
    let &[count, rows, columns] = x.dims() else {
        return Err(invalid_images(x));
    };
    if x.dtype() != DType::U8 {
        return Err(invalid_images(x));
    }
    let scaled: Vec<f32> = x
        .flatten_all()?
        .to_vec1::<u8>()?
        .into_iter()
        .map(|pixel| f32::from(pixel) / 255.0)
        .collect();
    Ok(Tensor::from_vec(
        scaled,
        (count, rows, columns, 1),
        x.device(),
    )?)
}

/// The error for a tensor that is not a stack of u8 images.
fn invalid_images(x: &Tensor) -> Error {
    Error::InvalidTensor {
        context: "to_unit_images",
        expected: "u8 images shaped (N, height, width)",
        found: format!("{:?} shaped {:?}", x.dtype(), x.dims()),
    }
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::tests::idx_bytes;
    use fixtures::{copy_shipped, label, pixel, write_altered_test_images, write_tiny_mnist};

    #[test]
    fn loads_a_directory_into_u8_tensors() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_mnist(dir.path(), 3, 2);
        let ((x_train, y_train), (x_test, y_test)) = load_data_from(dir.path()).unwrap();
        assert_eq!(x_train.dims(), [3, 28, 28]);
        assert_eq!(x_test.dims(), [2, 28, 28]);
        for tensor in [&x_train, &y_train, &x_test, &y_test] {
            assert_eq!(tensor.dtype(), DType::U8);
        }
        let expected_train: Vec<u8> = (0..3 * 784).map(pixel).collect();
        assert_eq!(
            x_train.flatten_all().unwrap().to_vec1::<u8>().unwrap(),
            expected_train
        );
        // Image 1, row 2, column 5 is pixel 784 + 2 * 28 + 5 of the stream.
        let one = x_test.get(1).unwrap().get(2).unwrap().get(5).unwrap();
        assert_eq!(one.to_scalar::<u8>().unwrap(), pixel(784 + 61));
        assert_eq!(
            y_train.to_vec1::<u8>().unwrap(),
            [label(0), label(1), label(2)]
        );
        assert_eq!(y_test.to_vec1::<u8>().unwrap(), [0, 1]);
    }

    #[test]
    fn image_and_label_counts_must_match() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_mnist(dir.path(), 3, 2);
        let labels = dir.path().join("t10k-labels-idx1-ubyte");
        std::fs::write(&labels, idx_bytes(0x0801, &[3], &[1, 2, 3])).unwrap();
        match load_data_from(dir.path()) {
            Err(Error::CountMismatch {
                images_path,
                images,
                labels_path,
                labels: label_count,
            }) => {
                assert_eq!(images_path, dir.path().join("t10k-images-idx3-ubyte.gz"));
                assert_eq!((images, label_count), (2, 3));
                assert_eq!(labels_path, labels);
            }
            other => panic!("expected a count mismatch, got {other:?}"),
        }
    }

    #[test]
    fn images_must_be_28_by_28() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_mnist(dir.path(), 3, 2);
        std::fs::remove_file(dir.path().join("train-images-idx3-ubyte.gz")).unwrap();
        let images = dir.path().join("train-images-idx3-ubyte");
        std::fs::write(&images, idx_bytes(0x0803, &[3, 2, 2], &[0; 12])).unwrap();
        let error = load_data_from(dir.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: expected 28x28 images, found 2x2 images",
                images.display()
            )
        );
    }

    #[test]
    fn an_incomplete_directory_is_not_found_and_nothing_else_is_tried() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_mnist(dir.path(), 3, 2);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
        match load_data_from(dir.path()) {
            Err(Error::NotFound {
                searched, download, ..
            }) => {
                assert_eq!(searched, [dir.path()]);
                assert!(download.is_none());
            }
            other => panic!("expected not found, got {other:?}"),
        }
    }

    #[test]
    fn unit_images_are_f32_over_255_with_a_channel_axis() {
        let x = Tensor::from_vec(
            vec![0u8, 51, 255, 102, 204, 153, 1, 254],
            (2, 2, 2),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let unit = to_unit_images(&x).unwrap();
        assert_eq!(unit.dims(), [2, 2, 2, 1]);
        assert_eq!(unit.dtype(), DType::F32);
        let expected = [0.0, 0.2, 1.0, 0.4, 0.8, 0.6, 1.0 / 255.0, 254.0 / 255.0];
        let found = unit.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(found, expected);
    }

    #[test]
    fn unit_images_are_bitwise_numpys_float32_division() {
        // numpy 2.4: (np.array([3, 6, 7, 128, 254], np.uint8).astype('float32') / 255.)
        // .view(np.uint32). Multiplying by f32(1/255) gives 0x3c40c0c2, 0x3cc0c0c2, 0x3ce0e0e2,
        // 0x3f008081 and 0x3f7eff00.
        let x = Tensor::from_vec(
            vec![3u8, 6, 7, 128, 254],
            (1, 1, 5),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let found: Vec<u32> = to_unit_images(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect();
        assert_eq!(
            found,
            [0x3c40c0c1, 0x3cc0c0c1, 0x3ce0e0e1, 0x3f008081, 0x3f7efeff]
        );
    }

    #[test]
    fn unit_images_want_a_stack_of_u8_images() {
        let device = candle_core::Device::Cpu;
        let flat = Tensor::zeros((2, 784), DType::U8, &device).unwrap();
        let floats = Tensor::zeros((2, 28, 28), DType::F32, &device).unwrap();
        for (x, found) in [
            (flat, "U8 shaped [2, 784]"),
            (floats, "F32 shaped [2, 28, 28]"),
        ] {
            let message = to_unit_images(&x).unwrap_err().to_string();
            assert_eq!(
                message,
                format!(
                    "to_unit_images: expected u8 images shaped (N, height, width), found {found}"
                )
            );
        }
    }

    /// `cargo test --release -p rkeras-datasets -- --ignored --nocapture load_time`
    #[test]
    #[ignore = "timing, run by hand in release"]
    fn load_time_of_the_shipped_copy() {
        let source = DataSource::standard(None, None);
        let mut seconds: Vec<f64> = (0..7)
            .map(|_| {
                let start = std::time::Instant::now();
                source.load().unwrap();
                start.elapsed().as_secs_f64()
            })
            .collect();
        seconds.sort_by(f64::total_cmp);
        println!(
            "load of the shipped copy: median {:.1} ms, fastest {:.1} ms",
            seconds[3] * 1e3,
            seconds[0] * 1e3
        );
    }

    #[test]
    fn load_data_from_takes_a_users_copy_with_another_digest() {
        let dir = tempfile::tempdir().unwrap();
        copy_shipped(dir.path());
        write_altered_test_images(dir.path());
        let (_, (x_test, _)) = load_data_from(dir.path()).unwrap();
        assert_eq!(x_test.dims(), [10000, 28, 28]);
    }

    #[test]
    fn the_shipped_copy_is_the_standard_mnist() {
        // Loaded as the standard copy it is: every file has its standard SHA-256.
        let source = DataSource::standard(None, None);
        let ((x_train, y_train), (x_test, y_test)) = source.load().unwrap();
        assert_eq!(x_train.dims(), [60000, 28, 28]);
        assert_eq!(x_test.dims(), [10000, 28, 28]);
        let train_labels = y_train.to_vec1::<u8>().unwrap();
        let test_labels = y_test.to_vec1::<u8>().unwrap();
        // The well-known first labels of each set.
        assert_eq!(train_labels[..5], [5, 0, 4, 1, 9]);
        assert_eq!(test_labels[..5], [7, 2, 1, 0, 4]);
        let mut train_counts = [0usize; 10];
        for &label in &train_labels {
            train_counts[usize::from(label)] += 1;
        }
        assert_eq!(
            train_counts,
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
    }
}
