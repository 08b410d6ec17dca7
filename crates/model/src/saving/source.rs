//! Where a load reads from: a file, or bytes already in memory, read by byte range so that
//! only what is needed is ever read, and nothing larger than the source is allocated.

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use super::error::SaveError;
use super::regular::open_regular;

/// A file's bytes, read on demand; `path` names it in errors.
pub struct Source<'p, R> {
    reader: R,
    len: u64,
    path: &'p Path,
}

impl<'p> Source<'p, File> {
    /// The regular file at `path` (see [`open_regular`]).
    pub fn open(path: &'p Path) -> Result<Self, SaveError> {
        let file = open_regular(path)?;
        let len = file
            .metadata()
            .map_err(|source| SaveError::Io {
                path: path.to_path_buf(),
                action: "cannot read the size of",
                source,
            })?
            .len();
        Ok(Source {
            reader: file,
            len,
            path,
        })
    }
}

impl<'p, 'b> Source<'p, Cursor<&'b [u8]>> {
    /// `bytes`, named `path` in errors.
    pub fn from_bytes(bytes: &'b [u8], path: &'p Path) -> Self {
        Source {
            len: bytes.len() as u64,
            reader: Cursor::new(bytes),
            path,
        }
    }
}

impl<'p, R: Read + Seek> Source<'p, R> {
    /// The path that names the source in errors.
    pub fn path(&self) -> &'p Path {
        self.path
    }

    /// The source's size in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The `len` bytes at `offset`, which must lie within the source: checked before the
    /// buffer is allocated.
    pub fn read_at(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, SaveError> {
        let path = self.path;
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(SaveError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "{len} bytes at offset {offset} lie beyond the file's {} bytes",
                    self.len
                ),
            });
        }
        let mut bytes = Vec::new();
        usize::try_from(len)
            .ok()
            .and_then(|n| bytes.try_reserve_exact(n).ok())
            .ok_or_else(|| SaveError::Format {
                path: path.to_path_buf(),
                reason: format!("{len} bytes at offset {offset} do not fit in memory"),
            })?;
        let io = |source| SaveError::Io {
            path: path.to_path_buf(),
            action: "cannot read",
            source,
        };
        self.reader.seek(SeekFrom::Start(offset)).map_err(io)?;
        (&mut self.reader)
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 != len {
            return Err(SaveError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "the file ended after {} of the {len} bytes at offset {offset}: it shrank while being read",
                    bytes.len()
                ),
            });
        }
        Ok(bytes)
    }
}
