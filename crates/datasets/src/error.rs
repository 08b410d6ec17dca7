//! The error type of `rkeras-datasets`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while finding, downloading or reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or renaming a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's contents are not what its format requires (magic number, sizes, length).
    #[error("{}: expected {expected}, found {found}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the format requires.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// An image file and its label file describe different numbers of examples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels: expected the same count",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The number of images it holds.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// The number of labels it holds.
        labels: usize,
    },
    /// An HTTP request failed: no connection, an error status, a broken transfer.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The address requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A downloaded file's contents do not have the published SHA-256.
    #[error(
        "download of {url} is corrupt: expected SHA-256 {expected} of its contents, found {found}"
    )]
    Checksum {
        /// The address downloaded.
        url: String,
        /// The expected hex digest.
        expected: String,
        /// The digest of what arrived.
        found: String,
    },
    /// A file's IDX contents do not have the standard SHA-256, in a copy that must be the
    /// standard one: shipped with rkeras, or downloaded into its cache.
    #[error(transparent)]
    WrongDigest(#[from] DigestMismatch),
    /// The dataset's files are in none of the places searched, and could not be downloaded.
    #[error("{}", not_found_message(dataset, files, searched, download.as_deref()))]
    NotFound {
        /// The dataset's name, also the name of its directory under `RKERAS_DATA`.
        dataset: &'static str,
        /// The files it needs.
        files: &'static [&'static str],
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
        /// Why the download failed, when one was tried.
        download: Option<Box<Error>>,
    },
    /// A tensor argument has the wrong rank or element type.
    #[error("{context}: expected {expected}, found {found}")]
    InvalidTensor {
        /// The function that received it.
        context: &'static str,
        /// What it accepts.
        expected: &'static str,
        /// What it received.
        found: String,
    },
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// A file whose IDX contents (after gunzip, when gzipped) do not have the SHA-256 of the
/// standard file of that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: expected SHA-256 {expected} of its IDX contents (the standard file's), found {found}",
    path.display()
)]
pub struct DigestMismatch {
    /// The file.
    pub path: PathBuf,
    /// The standard file's digest, lower-case hex.
    pub expected: String,
    /// The digest of this file's contents, lower-case hex.
    pub found: String,
}

impl Error {
    /// The file this error finds damaged: one that is not valid IDX, like a gzip stream cut
    /// short, or whose contents are not the standard ones.
    pub(crate) fn damaged_file(&self) -> Option<&Path> {
        match self {
            Self::Format { path, .. } | Self::WrongDigest(DigestMismatch { path, .. }) => {
                Some(path)
            }
            _ => None,
        }
    }

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An [`Error::Format`] for `path`.
    pub(crate) fn format(
        path: &Path,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// The result type of `rkeras-datasets`.
pub type Result<T> = std::result::Result<T, Error>;

/// Says where the files were looked for, why the download failed, and where to put them.
fn not_found_message(
    dataset: &str,
    files: &[&str],
    searched: &[PathBuf],
    download: Option<&Error>,
) -> String {
    let mut message = format!("dataset {dataset} not found; looked in:");
    for dir in searched {
        let _ = write!(message, "\n  {}", dir.display());
    }
    if searched.is_empty() {
        message.push_str(" (no directory)");
    }
    match download {
        Some(error) => {
            let _ = write!(message, "\nand the download failed: {error}");
        }
        None => message.push_str("\nand no download was attempted"),
    }
    let _ = write!(
        message,
        "\nPut the files {} (each raw or gzipped as .gz) in one of these directories, \
         or set RKERAS_DATA to a directory holding {dataset}/ with them.",
        files.join(", ")
    );
    message
}
