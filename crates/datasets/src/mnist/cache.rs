//! The download cache: the files a mirror serves, downloaded when missing and downloaded
//! again when damaged.

use std::path::{Path, PathBuf};

use super::files::{MnistPaths, ALL_FILES};
use super::origin::Origin;
use super::source::not_found;
use super::LabelledImages;
use crate::download::Downloader;
use crate::error::{Error, Result};

/// Downloads into `cache` each file it lacks, verified, from `mirror`.
pub(super) fn download_missing(cache: &Path, mirror: &str) -> Result<MnistPaths> {
    let downloader = Downloader::new();
    let separator = if mirror.ends_with('/') { "" } else { "/" };
    for file in ALL_FILES
        .iter()
        .filter(|file| file.find_in(cache).is_none())
    {
        let url = format!("{mirror}{separator}{}", file.gz_name());
        eprintln!("Downloading data from {url}");
        downloader.fetch_verified(&url, &cache.join(file.gz_name()), file.content_sha256)?;
    }
    MnistPaths::find_in(cache).ok_or_else(|| not_found(vec![cache.to_path_buf()], None))
}

/// Loads `paths`, the copy in `cache`: a standard copy, so each file must have its standard
/// SHA-256. A file that does not, or is not even valid IDX (a download cut short), is an
/// error naming it without a `mirror`; with one, it is deleted and downloaded again.
pub(super) fn load(
    cache: &Path,
    mirror: Option<&str>,
    mut paths: MnistPaths,
) -> Result<(LabelledImages, LabelledImages)> {
    // Each damaged file is replaced at most once: a fresh download that fails its check
    // again (a disk that corrupts it) is an error, not a loop.
    let mut replaced: Vec<PathBuf> = Vec::new();
    loop {
        let error = match paths.load(Origin::Standard) {
            Err(error) => error,
            loaded => return loaded,
        };
        let (Some(mirror), Some(damaged)) = (mirror, error.damaged_file()) else {
            return Err(error);
        };
        if replaced.iter().any(|path| path == damaged) {
            return Err(error);
        }
        let damaged = damaged.to_path_buf();
        eprintln!("{error}; downloading it again");
        std::fs::remove_file(&damaged).map_err(|source| Error::io(&damaged, source))?;
        replaced.push(damaged);
        paths = download_missing(cache, mirror)?;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::DigestMismatch;
    use crate::idx::tests::gzip;
    use crate::mnist::files::{TEST_IMAGES, TEST_LABELS, TRAIN_LABELS};
    use crate::mnist::fixtures::{
        copy_shipped, mirror_of_shipped, shipped, shipped_contents, write_altered_test_images,
    };
    use crate::mnist::DataSource;
    use crate::test_server::TestServer;

    /// Cuts the cached `.gz` of `file` to half its length, as an interrupted copy would.
    fn truncate(cache: &Path, file: &str) -> PathBuf {
        let path = cache.join(file);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        path
    }

    #[test]
    fn a_truncated_cached_file_is_downloaded_again_and_loads() {
        let server = mirror_of_shipped();
        let cache = tempfile::tempdir().unwrap();
        copy_shipped(cache.path());
        let labels = truncate(cache.path(), &TRAIN_LABELS.gz_name());
        let source = DataSource::new()
            .with_cache_dir(cache.path())
            .with_mirror(format!("{}mnist/", server.base_url()));
        let ((_, y_train), _) = source.load().unwrap();
        assert_eq!(y_train.dims(), [60000]);
        assert_eq!(server.requested(), ["/mnist/train-labels-idx1-ubyte.gz"]);
        assert_eq!(
            std::fs::read(labels).unwrap(),
            std::fs::read(shipped().join(TRAIN_LABELS.gz_name())).unwrap()
        );
    }

    #[test]
    fn cached_files_with_other_digests_give_way_to_standard_ones() {
        let server = mirror_of_shipped();
        let cache = tempfile::tempdir().unwrap();
        copy_shipped(cache.path());
        // A raw file with an altered pixel, in front of the good `.gz`.
        let (altered_images, _) = write_altered_test_images(cache.path());
        // A valid `.gz` of altered labels, the only copy of the file.
        let mut labels = shipped_contents(&TEST_LABELS.gz_name());
        labels[8] = (labels[8] + 1) % 10;
        std::fs::write(cache.path().join(TEST_LABELS.gz_name()), gzip(&labels)).unwrap();
        let source = DataSource::new()
            .with_cache_dir(cache.path())
            .with_mirror(format!("{}mnist/", server.base_url()));
        let (_, (x_test, y_test)) = source.load().unwrap();
        assert_eq!(x_test.dims(), [10000, 28, 28]);
        assert_eq!(y_test.to_vec1::<u8>().unwrap()[..5], [7, 2, 1, 0, 4]);
        assert_eq!(server.requested(), ["/mnist/t10k-labels-idx1-ubyte.gz"]);
        assert!(!altered_images.exists());
    }

    #[test]
    fn a_cached_file_with_another_digest_is_an_error_naming_it_without_a_mirror() {
        let cache = tempfile::tempdir().unwrap();
        copy_shipped(cache.path());
        let (altered, found) = write_altered_test_images(cache.path());
        match DataSource::new().with_cache_dir(cache.path()).load() {
            Err(Error::WrongDigest(mismatch)) => assert_eq!(
                mismatch,
                DigestMismatch {
                    path: altered.clone(),
                    expected: TEST_IMAGES.content_sha256.to_owned(),
                    found,
                }
            ),
            other => panic!("expected a wrong digest, got {other:?}"),
        }
        assert!(altered.exists());
    }

    #[test]
    fn a_damaged_cached_file_that_cannot_be_downloaded_again_is_a_download_error() {
        let server = TestServer::start(HashMap::new());
        let cache = tempfile::tempdir().unwrap();
        copy_shipped(cache.path());
        truncate(cache.path(), &TRAIN_LABELS.gz_name());
        let source = DataSource::new()
            .with_cache_dir(cache.path())
            .with_mirror(server.base_url());
        match source.load() {
            Err(Error::Download { url, reason }) => {
                assert_eq!(
                    url,
                    format!("{}train-labels-idx1-ubyte.gz", server.base_url())
                );
                assert_eq!(reason, "HTTP status 404");
            }
            other => panic!("expected a download error, got {other:?}"),
        }
    }
}
