//! Atomic file replacement: write a temporary file beside the target, fsync it, rename it
//! over the target. A failure at any step leaves the previous file as it was.
//!
//! The temporary is made as [`temporary`](super::temporary) says (a fresh random name, never
//! a file planted there), with the target's permissions; the target is what
//! [`target`](super::target) resolves (a symbolic link is written through; what is not a
//! regular file is refused). Temporaries left by saves killed midway are removed first.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::error::SaveError;
use super::target::resolve;
use super::temporary::{self, folder};

/// Writes `path` atomically with what `write` puts into the file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), SaveError> {
    let io_error = |action: &'static str| {
        move |source: io::Error| SaveError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let target = resolve(path)?;
    temporary::remove_stale(&target.path);
    // Dropping the temporary on an error removes it.
    let mut temporary = temporary::create(&target.path, target.permissions.as_ref())
        .map_err(io_error("cannot create a temporary file beside it"))?;
    let file = temporary.as_file_mut();
    write(file).map_err(io_error("cannot write the temporary file"))?;
    file.flush()
        .map_err(io_error("cannot write the temporary file"))?;
    file.sync_all()
        .map_err(io_error("cannot sync the temporary file"))?;
    temporary
        .persist(&target.path)
        .map_err(|e| io_error("cannot rename the temporary file over it")(e.error))?;
    sync_folder(&target.path);
    Ok(())
}

/// Makes the rename itself durable. Best effort: some filesystems refuse to sync a directory,
/// and the new file is already complete and in place either way.
fn sync_folder(path: &Path) {
    if let Ok(dir) = File::open(folder(path)) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        fs::write(&path, b"old").unwrap();
        write_atomically(&path, |f| f.write_all(b"new contents")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new contents");
        assert_eq!(files_in(dir.path()), ["m.safetensors"]);
    }

    #[test]
    fn a_write_failing_midway_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        fs::write(&path, b"old").unwrap();
        let err = write_atomically(&path, |f| {
            f.write_all(b"half of the")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("m.safetensors"), "{err}");
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(files_in(dir.path()), ["m.safetensors"]);
    }

    #[test]
    fn a_directory_target_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"old").unwrap();
        let err = write_atomically(&path, |f| f.write_all(b"new")).unwrap_err();
        assert!(
            matches!(
                err,
                SaveError::NotAFile {
                    kind: "directory",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"old");
        assert_eq!(files_in(dir.path()), ["taken"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("m.safetensors");
        let err = write_atomically(&path, |f| f.write_all(b"new")).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
