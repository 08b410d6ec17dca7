//! Atomic file replacement: write a temporary file beside the target, fsync it, rename it
//! over the target. A failure at any step leaves the previous file as it was.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::SaveError;

static NEXT_TEMPORARY: AtomicU64 = AtomicU64::new(0);

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
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = File::create(&temporary)
            .map_err(io_error("cannot create a temporary file beside it"))?;
        write(&mut file).map_err(io_error("cannot write the temporary file"))?;
        file.flush()
            .map_err(io_error("cannot write the temporary file"))?;
        file.sync_all()
            .map_err(io_error("cannot sync the temporary file"))?;
        drop(file);
        fs::rename(&temporary, path).map_err(io_error("cannot rename the temporary file over it"))
    })();
    if result.is_err() {
        // The temporary file may not exist (creation failed); nothing else to clean up.
        let _ = fs::remove_file(&temporary);
        return result;
    }
    sync_parent(path);
    Ok(())
}

/// `.<name>.tmp-<pid>-<n>` in the target's directory, so that the rename stays on one filesystem.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let n = NEXT_TEMPORARY.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Makes the rename itself durable. Best effort: some filesystems refuse to sync a directory,
/// and the new file is already complete and in place either way.
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
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
    fn a_failed_rename_keeps_what_was_there() {
        // Renaming a file over a non-empty directory fails on every platform.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"old").unwrap();
        let err = write_atomically(&path, |f| f.write_all(b"new")).unwrap_err();
        assert!(matches!(err, SaveError::Io { action, .. } if action.contains("rename")));
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
