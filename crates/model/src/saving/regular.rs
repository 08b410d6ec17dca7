//! Regular files only: saving replaces nothing else, and loading opens nothing else (a FIFO
//! would block the open forever, a device would be read without end).

use std::fs::{self, File, FileType, OpenOptions};
use std::path::Path;

use super::error::SaveError;

/// What a file type is, in words, for messages.
fn kind(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_char_device() {
            return "character device";
        }
        if file_type.is_block_device() {
            return "block device";
        }
        if file_type.is_socket() {
            return "socket";
        }
    }
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// The error for `path`, which holds a `file_type` that is not a regular file.
pub fn not_a_file(path: &Path, action: &'static str, file_type: FileType) -> SaveError {
    SaveError::NotAFile {
        path: path.to_path_buf(),
        action,
        kind: kind(file_type),
    }
}

/// Opens the regular file at `path` (after any symbolic links) for reading, refusing anything
/// else before opening it, and opening without blocking in case it was swapped meanwhile.
pub fn open_regular(path: &Path) -> Result<File, SaveError> {
    let io = |action: &'static str| {
        move |source| SaveError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let file_type = fs::metadata(path).map_err(io("cannot open"))?.file_type();
    if !file_type.is_file() {
        return Err(not_a_file(path, "cannot load it", file_type));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io("cannot open"))?;
    let file_type = file.metadata().map_err(io("cannot open"))?.file_type();
    if !file_type.is_file() {
        return Err(not_a_file(path, "cannot load it", file_type));
    }
    Ok(file)
}
