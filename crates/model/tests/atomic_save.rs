//! Saving cannot be redirected and does not damage what it replaces: planted symbolic links at
//! temporary names, the target's permissions, targets that are not regular files, symbolic
//! link targets, and the temporaries of killed saves (issue 16, items 1-3). Unix only.
#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rkeras_layers::{Dense, Input};
use rkeras_model::saving::{load, save};
use rkeras_model::Model;

use common::small_model;

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn temporaries_in(dir: &Path, target: &str) -> Vec<PathBuf> {
    let prefix = format!(".{target}.tmp");
    names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .map(|n| dir.join(n))
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_symlink_planted_at_a_temporary_name_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    // Every name the old scheme (`.<name>.tmp-<pid>-<n>`) would try first.
    for n in 0..512 {
        let planted = dir
            .path()
            .join(format!(".m.safetensors.tmp-{}-{n}", std::process::id()));
        symlink(&victim, planted).unwrap();
    }
    let path = dir.path().join("m.safetensors");
    save(&small_model(), &path).unwrap();
    assert!(
        fs::read(&victim).unwrap() == b"precious",
        "the victim was overwritten"
    );
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
    assert_eq!(load(&path).unwrap().count_params(), 11);
}

#[test]
fn saving_over_a_file_keeps_its_permissions() {
    let dir = tempfile::tempdir().unwrap();
    for wanted in [0o600, 0o640, 0o604] {
        let path = dir.path().join(format!("m{wanted:o}.safetensors"));
        save(&small_model(), &path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(wanted)).unwrap();
        save(&small_model(), &path).unwrap();
        assert_eq!(mode(&path), wanted, "saving changed mode {wanted:o}");
    }
    // A new file gets what File::create gives (0666 less the umask).
    let created = dir.path().join("plain");
    fs::File::create(&created).unwrap();
    let new = dir.path().join("new.safetensors");
    save(&small_model(), &new).unwrap();
    assert_eq!(mode(&new), mode(&created));
}

#[test]
fn a_fifo_directory_or_device_target_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = save(&small_model(), &fifo).unwrap_err().to_string();
    assert!(
        err.contains("fifo") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    let empty_dir = dir.path().join("empty");
    fs::create_dir(&empty_dir).unwrap();
    let err = save(&small_model(), &empty_dir).unwrap_err().to_string();
    assert!(err.contains("directory, not a regular file"), "{err}");
    assert!(empty_dir.is_dir());

    // A character device like /dev/null (made here when allowed, as root can).
    let null = dir.path().join("null");
    let made = Command::new("mknod")
        .args([null.as_os_str(), "c".as_ref(), "1".as_ref(), "3".as_ref()])
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let err = save(&small_model(), &null).unwrap_err().to_string();
        assert!(err.contains("character device"), "{err}");
        assert!(fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device());
    }
    assert!(temporaries_in(dir.path(), "fifo").is_empty());
    assert!(temporaries_in(dir.path(), "empty").is_empty());
}

#[test]
fn a_symlink_target_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.safetensors");
    fs::write(&real, b"old").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join("link.safetensors");
    symlink("real.safetensors", &link).unwrap();
    save(&small_model(), &link).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(load(&real).unwrap().count_params(), 11);
    assert_eq!(mode(&real), 0o600);

    let dangling = dir.path().join("dangling.safetensors");
    symlink("nowhere/absent", &dangling).unwrap();
    let err = save(&small_model(), &dangling).unwrap_err().to_string();
    assert!(err.contains("dangling.safetensors"), "{err}");
    assert!(fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn stale_temporaries_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let old_style = dir.path().join(".m.safetensors.tmp-4242-7");
    let new_style = dir.path().join(".m.safetensors.tmp-Xy12ab");
    fs::write(&old_style, vec![0; 1000]).unwrap();
    fs::write(&new_style, vec![0; 1000]).unwrap();
    // Another process's save in progress: it holds a lock on its temporary.
    let live = dir.path().join(".m.safetensors.tmp-LiveOne");
    let live_file = fs::File::create(&live).unwrap();
    live_file.lock().unwrap();
    // Another target's temporary is not this save's business.
    let other = dir.path().join(".other.safetensors.tmp-1-1");
    fs::write(&other, b"x").unwrap();
    save(&small_model(), &path).unwrap();
    assert_eq!(
        names_in(dir.path()),
        [
            ".m.safetensors.tmp-LiveOne",
            ".other.safetensors.tmp-1-1",
            "m.safetensors"
        ]
    );
}

const SAVE_LOOP_ENV: &str = "RKERAS_SAVE_LOOP";

fn big_model() -> Model {
    let input = Input::named("x", &[512]);
    Model::named("big", input, Dense::new(2048).name("wide")(input)).unwrap()
}

/// The child of `saves_killed_midway_leave_nothing_behind`: saves forever until killed.
#[test]
fn save_loop_child() {
    let Ok(path) = std::env::var(SAVE_LOOP_ENV) else {
        return;
    };
    let model = big_model();
    loop {
        save(&model, &path).unwrap();
    }
}

#[test]
fn saves_killed_midway_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut left_behind = 0;
    let mut bytes_lost = 0;
    for kill in 0..20u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["save_loop_child", "--exact", "--test-threads=1"])
            .env(SAVE_LOOP_ENV, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !path.exists() && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20 + 13 * kill));
        child.kill().unwrap();
        child.wait().unwrap();
        let stale = temporaries_in(dir.path(), "m.safetensors");
        left_behind = stale.len();
        bytes_lost = stale
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum::<u64>();
    }
    eprintln!("after 20 kills: {left_behind} temporaries, {bytes_lost} bytes");
    save(&big_model(), &path).unwrap();
    assert_eq!(names_in(dir.path()), ["m.safetensors"]);
    assert_eq!(load(&path).unwrap().count_params(), 512 * 2048 + 2048);
}
