//! The temporary file of an atomic save: created beside the target under a random name that
//! no file has (create-new, so that nothing planted there is followed or reused), and locked
//! while the save runs. A later save of the same target removes the temporaries no one holds
//! a lock on: those of saves killed midway.

use std::ffi::OsString;
use std::fs::{self, File, Permissions};
use std::io;
use std::path::Path;

use tempfile::NamedTempFile;

/// The longest part of the target's name a temporary's name repeats, in characters.
const MAX_NAME_CHARS: usize = 128;

/// How often a temporary is made again when a concurrent save removed it before it was locked.
const ATTEMPTS: usize = 8;

/// The folder of `target`.
pub fn folder(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `.<name>.tmp-`: how the names of the target's temporaries start.
fn prefix(target: &Path) -> OsString {
    let name = target
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy());
    let name: String = name.chars().take(MAX_NAME_CHARS).collect();
    format!(".{name}.tmp-").into()
}

/// A new temporary file beside `target`, locked, with `permissions` (the target's) or, for a
/// new target, those `File::create` gives (0666 less the umask). A target's permissions are
/// kept less any set-id and sticky bits.
pub fn create(target: &Path, permissions: Option<&Permissions>) -> io::Result<NamedTempFile> {
    let prefix = prefix(target);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).rand_bytes(12);
    #[cfg(unix)]
    if permissions.is_none() {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(Permissions::from_mode(0o666));
    }
    for _ in 0..ATTEMPTS {
        let temporary = builder.tempfile_in(folder(target))?;
        let file = temporary.as_file();
        if let Some(permissions) = permissions {
            file.set_permissions(kept(permissions))?;
        }
        // Where the filesystem has no locks, a cleaner cannot take one either, and so never
        // takes this temporary for a stale one.
        let _ = file.lock();
        if still_linked(file)? {
            return Ok(temporary);
        }
    }
    Err(io::Error::other(
        "another save keeps removing the temporary files made here",
    ))
}

#[cfg(unix)]
fn kept(permissions: &Permissions) -> Permissions {
    use std::os::unix::fs::PermissionsExt;
    Permissions::from_mode(permissions.mode() & 0o777)
}

#[cfg(not(unix))]
fn kept(permissions: &Permissions) -> Permissions {
    permissions.clone()
}

/// Whether `file` still has a name (a concurrent save may have removed it as stale between
/// its creation and its lock).
#[cfg(unix)]
fn still_linked(file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    Ok(file.metadata()?.nlink() > 0)
}

#[cfg(not(unix))]
fn still_linked(_: &File) -> io::Result<bool> {
    Ok(true)
}

/// Removes the temporaries of `target` that no save holds a lock on. Best effort: what cannot
/// be inspected, opened or removed is left.
pub fn remove_stale(target: &Path) {
    let prefix = prefix(target);
    let Ok(entries) = fs::read_dir(folder(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .as_encoded_bytes()
            .starts_with(prefix.as_encoded_bytes())
        {
            continue;
        }
        let path = entry.path();
        if let Some(_lock) = lock_if_unheld(&path) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// The regular file at `path`, locked, if no one else holds a lock on it. Symbolic links are
/// not followed, and FIFOs are not waited on.
fn lock_if_unheld(path: &Path) -> Option<File> {
    if !fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    file.try_lock().ok()?;
    Some(file)
}
