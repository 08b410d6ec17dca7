//! The error type of `rkeras-plot`.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while drawing or writing a picture.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument that cannot be drawn.
    #[error("{argument}: expected {expected}, found {found}")]
    InvalidInput {
        /// The argument at fault.
        argument: String,
        /// What is accepted.
        expected: String,
        /// What was given.
        found: String,
    },
    /// Creating, writing or renaming the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or its directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Encoding the PNG failed.
    #[error("{}: {source}", path.display())]
    Encoding {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: png::EncodingError,
    },
}

impl Error {
    /// An [`Error::InvalidInput`].
    pub(crate) fn invalid(
        argument: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::InvalidInput {
            argument: argument.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The result type of `rkeras-plot`.
pub type Result<T> = std::result::Result<T, Error>;
