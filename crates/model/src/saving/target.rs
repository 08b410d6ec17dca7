//! What a save replaces: the regular file at the path, or the one a symbolic link there names
//! (a save writes through a link, as `File::create` would, and the link stays a link; a link to
//! nothing is refused). Anything else (a directory, a FIFO, a device) is refused and left as it
//! is. The target's permissions are read here, to be kept.

use std::fs::{self, Permissions};
use std::io;
use std::path::{Path, PathBuf};

use super::error::SaveError;
use super::regular::not_a_file;

/// The file a save to some path replaces.
#[derive(Debug)]
pub struct Target {
    /// Its path, with any symbolic link at the saved path followed.
    pub path: PathBuf,
    /// Its permissions, when it exists.
    pub permissions: Option<Permissions>,
}

/// The target of a save to `path`.
pub fn resolve(path: &Path) -> Result<Target, SaveError> {
    let io = |action: &'static str| {
        move |source| SaveError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let resolved = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Target {
                path: path.to_path_buf(),
                permissions: None,
            })
        }
        Err(e) => return Err(io("cannot inspect")(e)),
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(io("cannot follow the symbolic link"))?
        }
        Ok(_) => path.to_path_buf(),
    };
    let metadata = fs::metadata(&resolved).map_err(io("cannot inspect"))?;
    if !metadata.is_file() {
        return Err(not_a_file(
            path,
            "cannot save over it",
            metadata.file_type(),
        ));
    }
    Ok(Target {
        path: resolved,
        permissions: Some(metadata.permissions()),
    })
}
