//! Where MNIST is looked for, in order, and where it is downloaded to when it is nowhere.

use std::path::{Path, PathBuf};

use super::cache;
use super::files::{MnistPaths, FILE_NAMES};
use super::origin::Origin;
use super::LabelledImages;
use crate::error::{Error, Result};

/// The environment variable naming a data root: MNIST is looked for in its `mnist/`.
pub const DATA_ENV_VAR: &str = "RKERAS_DATA";

/// The public mirror the files are downloaded from: it serves the four `.gz` files.
pub const DEFAULT_MIRROR: &str = "https://storage.googleapis.com/cvdf-datasets/mnist/";

/// The name of the dataset's directory under a data root or the cache root.
const DATASET_DIR: &str = "mnist";

/// The places MNIST is looked for and fetched into; every input is injected, so the
/// order can be set (and tested) without touching the real environment or home.
///
/// [`DataSource::locate`] looks in each search directory in turn, then in the cache
/// directory; when the four files are in none of them, it downloads the missing ones
/// from the mirror into the cache. A directory counts only when it holds all four files
/// (each raw or `.gz`). [`DataSource::load`] checks each file it reads as the
/// directory's [`Origin`] requires; the cache holds a standard copy, and a damaged file
/// in it is downloaded again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSource {
    search_dirs: Vec<(PathBuf, Origin)>,
    cache_dir: Option<PathBuf>,
    mirror: Option<String>,
}

impl DataSource {
    /// A source that searches nowhere, has no cache and downloads nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The standard order, read from this process's environment: see [`DataSource::standard`]
    /// with `$RKERAS_DATA` (when set and not empty) and the user's home directory.
    pub fn from_environment() -> Self {
        let data_root = std::env::var_os(DATA_ENV_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        Self::standard(data_root, std::env::home_dir())
    }

    /// The standard order for the given data root and home directory:
    /// 1. `data_root/mnist` (the `RKERAS_DATA` variable names such a root), the user's,
    /// 2. the copy shipped with rkeras (`data/mnist` in its repository), a standard one,
    /// 3. the cache `home/.rkeras/datasets/mnist`, filled from [`DEFAULT_MIRROR`] when the
    ///    files are in none of the above.
    pub fn standard(data_root: Option<PathBuf>, home: Option<PathBuf>) -> Self {
        let mut source = Self::new();
        if let Some(root) = data_root {
            source = source.with_search_dir(root.join(DATASET_DIR));
        }
        if let Some(shipped) = shipped_dir() {
            source = source.with_standard_dir(shipped);
        }
        if let Some(home) = home {
            let cache = home.join(".rkeras").join("datasets").join(DATASET_DIR);
            source = source.with_cache_dir(cache);
        }
        source.with_mirror(DEFAULT_MIRROR)
    }

    /// Adds `dir`, holding the user's own copy ([`Origin::User`]), at the end of the
    /// directories searched before the cache.
    pub fn with_search_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.search_dirs.push((dir.into(), Origin::User));
        self
    }

    /// Adds `dir`, holding a standard copy like the one shipped with rkeras
    /// ([`Origin::Standard`]), at the end of the directories searched before the cache.
    pub fn with_standard_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.search_dirs.push((dir.into(), Origin::Standard));
        self
    }

    /// Sets the cache directory: searched last, and where downloads go.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Sets the address the four `<name>.gz` files are downloaded from (a directory URL).
    pub fn with_mirror(mut self, base_url: impl Into<String>) -> Self {
        self.mirror = Some(base_url.into());
        self
    }

    /// The directories searched before the cache, in order, with whose copy each holds.
    pub fn search_dirs(&self) -> &[(PathBuf, Origin)] {
        &self.search_dirs
    }

    /// The cache directory, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// The download address, if any.
    pub fn mirror(&self) -> Option<&str> {
        self.mirror.as_deref()
    }

    /// Finds the four files, downloading the missing ones into the cache when no
    /// directory holds them all (only with both a cache and a mirror). When they cannot
    /// be had, the error lists every directory searched and why the download failed.
    pub fn locate(&self) -> Result<MnistPaths> {
        Ok(match self.find()? {
            Found::Searched(paths, _) | Found::Cached(paths, _) => paths,
        })
    }

    /// Locates the files and reads them, checked: `((x_train, y_train), (x_test, y_test))`.
    pub fn load(&self) -> Result<(LabelledImages, LabelledImages)> {
        match self.find()? {
            Found::Searched(paths, origin) => paths.load(origin),
            Found::Cached(paths, cache) => cache::load(cache, self.mirror.as_deref(), paths),
        }
    }

    /// Where the four files are: as [`DataSource::locate`], saying in which kind of place.
    fn find(&self) -> Result<Found<'_>> {
        if let Some(found) = self.search_dirs.iter().find_map(|(dir, origin)| {
            MnistPaths::find_in(dir).map(|paths| Found::Searched(paths, *origin))
        }) {
            return Ok(found);
        }
        let mut searched: Vec<PathBuf> = self
            .search_dirs
            .iter()
            .map(|(dir, _)| dir.clone())
            .collect();
        let mut download = None;
        if let Some(cache) = &self.cache_dir {
            searched.push(cache.clone());
            if let Some(paths) = MnistPaths::find_in(cache) {
                return Ok(Found::Cached(paths, cache));
            }
            if let Some(mirror) = &self.mirror {
                match cache::download_missing(cache, mirror) {
                    Ok(paths) => return Ok(Found::Cached(paths, cache)),
                    Err(error) => download = Some(Box::new(error)),
                }
            }
        }
        Err(not_found(searched, download))
    }
}

/// The four files, found in a search directory holding a copy of the given origin, or in
/// the given cache directory.
enum Found<'a> {
    Searched(MnistPaths, Origin),
    Cached(MnistPaths, &'a Path),
}

/// The error for files that are nowhere.
pub(crate) fn not_found(searched: Vec<PathBuf>, download: Option<Box<Error>>) -> Error {
    Error::NotFound {
        dataset: DATASET_DIR,
        files: FILE_NAMES,
        searched,
        download,
    }
}

/// `data/mnist` at the root of the repository this crate was built from.
fn shipped_dir() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(|root| root.join("data").join(DATASET_DIR))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::DigestMismatch;
    use crate::mnist::files::TEST_IMAGES;
    use crate::mnist::fixtures::{
        copy_shipped, mirror_of_shipped, shipped, write_altered_test_images, write_tiny_mnist,
    };
    use crate::test_server::TestServer;

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn standard_order_is_data_root_shipped_copy_then_home_cache() {
        let source = DataSource::standard(Some("/data".into()), Some("/home/ada".into()));
        let shipped = shipped_dir().unwrap();
        assert_eq!(
            source.search_dirs(),
            [
                (PathBuf::from("/data/mnist"), Origin::User),
                (shipped.clone(), Origin::Standard)
            ]
        );
        assert_eq!(
            source.cache_dir(),
            Some(Path::new("/home/ada/.rkeras/datasets/mnist"))
        );
        assert_eq!(source.mirror(), Some(DEFAULT_MIRROR));
        assert!(shipped.ends_with("data/mnist"));
        assert_eq!(
            std::fs::canonicalize(&shipped).unwrap(),
            std::fs::canonicalize(crate::mnist::fixtures::shipped()).unwrap()
        );

        let bare = DataSource::standard(None, None);
        assert_eq!(bare.search_dirs(), [(shipped, Origin::Standard)]);
        assert_eq!(bare.cache_dir(), None);
    }

    #[test]
    fn first_complete_search_dir_wins_over_later_ones_and_the_cache() {
        let root = tempfile::tempdir().unwrap();
        let (partial, complete, later, cache) = (
            root.path().join("partial"),
            root.path().join("complete"),
            root.path().join("later"),
            root.path().join("cache"),
        );
        for dir in [&partial, &complete, &later, &cache] {
            write_tiny_mnist(dir, 2, 1);
        }
        std::fs::remove_file(partial.join("train-labels-idx1-ubyte")).unwrap();
        let source = DataSource::new()
            .with_search_dir(&partial)
            .with_search_dir(&complete)
            .with_search_dir(&later)
            .with_cache_dir(&cache);
        let paths = source.locate().unwrap();
        assert_eq!(paths, MnistPaths::find_in(&complete).unwrap());
        assert_eq!(paths.train_labels, complete.join("train-labels-idx1-ubyte"));
    }

    #[test]
    fn each_search_dir_is_checked_as_its_origin_requires() {
        let dir = tempfile::tempdir().unwrap();
        copy_shipped(dir.path());
        let (altered, found) = write_altered_test_images(dir.path());
        let users = DataSource::new().with_search_dir(dir.path());
        let (_, (x_test, _)) = users.load().unwrap();
        assert_eq!(x_test.dims(), [10000, 28, 28]);
        match DataSource::new().with_standard_dir(dir.path()).load() {
            Err(Error::WrongDigest(mismatch)) => assert_eq!(
                mismatch,
                DigestMismatch {
                    path: altered,
                    expected: TEST_IMAGES.content_sha256.to_owned(),
                    found,
                }
            ),
            other => panic!("expected a wrong digest, got {other:?}"),
        }
    }

    #[test]
    fn cache_is_used_without_downloading_when_complete() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        write_tiny_mnist(&cache, 2, 1);
        let server = TestServer::start(HashMap::new());
        let source = DataSource::new()
            .with_search_dir(root.path().join("empty"))
            .with_cache_dir(&cache)
            .with_mirror(server.base_url());
        assert_eq!(
            source.locate().unwrap(),
            MnistPaths::find_in(&cache).unwrap()
        );
        assert!(server.requested().is_empty());
    }

    #[test]
    fn downloads_only_the_missing_files_into_the_cache_and_loads_them() {
        let server = mirror_of_shipped();
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            std::fs::copy(shipped().join(name), cache.join(name)).unwrap();
        }
        // The mirror address without its trailing slash gets one.
        let source = DataSource::new()
            .with_cache_dir(&cache)
            .with_mirror(format!("{}mnist", server.base_url()));
        let ((x_train, y_train), (x_test, _)) = source.load().unwrap();
        assert_eq!(
            server.requested(),
            [
                "/mnist/train-images-idx3-ubyte.gz",
                "/mnist/train-labels-idx1-ubyte.gz"
            ]
        );
        assert_eq!(
            file_names(&cache),
            [
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz"
            ]
        );
        assert_eq!(x_train.dims(), [60000, 28, 28]);
        assert_eq!(y_train.dims(), [60000]);
        assert_eq!(x_test.dims(), [10000, 28, 28]);
    }

    #[test]
    fn a_file_not_matching_its_checksum_is_refused_and_not_kept() {
        let root = tempfile::tempdir().unwrap();
        let impostor = root.path().join("impostor");
        write_tiny_mnist(&impostor, 2, 1);
        let body = std::fs::read(impostor.join("train-images-idx3-ubyte.gz")).unwrap();
        let server = TestServer::start(HashMap::from([(
            "/train-images-idx3-ubyte.gz".to_owned(),
            (200, body),
        )]));
        let cache = root.path().join("cache");
        let source = DataSource::new()
            .with_cache_dir(&cache)
            .with_mirror(server.base_url());
        match source.locate() {
            Err(Error::NotFound {
                download: Some(download),
                ..
            }) => assert!(matches!(*download, Error::Checksum { .. }), "{download:?}"),
            other => panic!("expected not found after a bad download, got {other:?}"),
        }
        assert!(file_names(&cache).is_empty());
    }

    #[test]
    fn offline_error_lists_the_places_and_the_download_failure() {
        let server = TestServer::start(HashMap::new());
        let root = tempfile::tempdir().unwrap();
        let (env_dir, cache) = (root.path().join("env/mnist"), root.path().join("cache"));
        let source = DataSource::new()
            .with_search_dir(&env_dir)
            .with_cache_dir(&cache)
            .with_mirror(server.base_url());
        let error = source.locate().unwrap_err();
        let url = format!("{}train-images-idx3-ubyte.gz", server.base_url());
        assert_eq!(
            error.to_string(),
            format!(
                "dataset mnist not found; looked in:\n  {}\n  {}\n\
                 and the download failed: download of {url} failed: HTTP status 404\n\
                 Put the files train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                 t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or gzipped as .gz) \
                 in one of these directories, or set RKERAS_DATA to a directory holding mnist/ with them.",
                env_dir.display(),
                cache.display()
            )
        );
        assert!(file_names(&cache).is_empty());
    }

    #[test]
    fn without_a_cache_nothing_is_downloaded() {
        let server = TestServer::start(HashMap::new());
        let source = DataSource::new().with_mirror(server.base_url());
        match source.locate() {
            Err(Error::NotFound {
                searched, download, ..
            }) => {
                assert!(searched.is_empty());
                assert!(download.is_none());
            }
            other => panic!("expected not found, got {other:?}"),
        }
        assert!(server.requested().is_empty());
    }
}
