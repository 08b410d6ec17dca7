//! Whose copy of MNIST a directory holds, and so what a file whose contents are not the
//! standard ones leads to.

use std::path::Path;

use super::files::MnistFile;
use crate::error::{DigestMismatch, Result};

/// Whose copy of MNIST a directory holds. It decides what a file whose IDX contents do not
/// have the standard SHA-256 leads to; a file that is not valid IDX is an error in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// rkeras's own copy, shipped with it or downloaded into its cache: such a file is an
    /// error.
    Standard,
    /// The user's own copy (`load_data_from`, `RKERAS_DATA`), which may legitimately
    /// differ, re-encoded for instance: such a file is used, with a warning on stderr.
    User,
}

impl Origin {
    /// Checks `found`, the SHA-256 of the IDX contents read from `path`, against `file`'s:
    /// `None` when they match, else the mismatch to warn about in a user's copy, or an
    /// error in a standard one.
    pub(crate) fn check(
        self,
        file: MnistFile,
        path: &Path,
        found: String,
    ) -> Result<Option<DigestMismatch>> {
        if found == file.content_sha256 {
            return Ok(None);
        }
        let mismatch = DigestMismatch {
            path: path.to_path_buf(),
            expected: file.content_sha256.to_owned(),
            found,
        };
        match self {
            Self::Standard => Err(mismatch.into()),
            Self::User => Ok(Some(mismatch)),
        }
    }
}

/// Says on stderr that a file of the user's copy is not the standard one and is used anyway.
pub(crate) fn warn(mismatch: &DigestMismatch) {
    eprintln!("warning: {mismatch}; using it anyway");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::mnist::files::TEST_LABELS;

    #[test]
    fn the_standard_digest_passes_in_any_copy() {
        for origin in [Origin::Standard, Origin::User] {
            let found = TEST_LABELS.content_sha256.to_owned();
            let checked = origin.check(TEST_LABELS, Path::new("labels"), found);
            assert_eq!(checked.unwrap(), None);
        }
    }

    #[test]
    fn another_digest_is_an_error_in_a_standard_copy_and_a_warning_in_a_users() {
        let path = Path::new("/data/mnist/t10k-labels-idx1-ubyte");
        let found = "ab".repeat(32);
        let mismatch = DigestMismatch {
            path: path.to_path_buf(),
            expected: TEST_LABELS.content_sha256.to_owned(),
            found: found.clone(),
        };
        let users = Origin::User.check(TEST_LABELS, path, found.clone());
        assert_eq!(users.unwrap(), Some(mismatch.clone()));
        match Origin::Standard.check(TEST_LABELS, path, found.clone()) {
            Err(Error::WrongDigest(error)) => assert_eq!(error, mismatch),
            other => panic!("expected a wrong digest, got {other:?}"),
        }
        assert_eq!(
            mismatch.to_string(),
            format!(
                "/data/mnist/t10k-labels-idx1-ubyte: expected SHA-256 \
                 ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 \
                 of its IDX contents (the standard file's), found {found}"
            )
        );
    }
}
