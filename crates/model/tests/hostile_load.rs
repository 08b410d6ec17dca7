//! Loading cannot exhaust memory, hang, or pass hostile content on silently (issue 16, items
//! 5, 6, 7, 9 and 10). Peak memory is measured in a child process (Linux only).
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use rkeras_model::saving::{load, read_bytes, Registry};

use common::peak::{self, Outcome};
use common::{renamed, small_model_bytes, split, with_header};

const MIB: u64 = 1 << 20;

/// The child process of the memory tests.
#[test]
fn measured_child() {
    peak::child(|path| load(path).map(|_| ()).map_err(|e| e.to_string()));
}

fn measured(path: &Path) -> peak::Measurement {
    let mut results = peak::measure(
        "measured_child",
        &[path.to_path_buf()],
        Duration::from_secs(60),
    );
    results.remove(0)
}

fn load_error(bytes: &[u8]) -> String {
    read_bytes(
        bytes,
        Path::new("hostile.safetensors"),
        &Registry::default(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn a_huge_file_with_a_bad_header_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.safetensors");
    fs::write(&path, with_header("{}", &[])).unwrap();
    // 1 GiB, sparse: the header says "{}" and the rest is a hole.
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let m = measured(&path);
    assert!(
        matches!(&m.outcome, Outcome::Err(e) if e.contains("sparse.safetensors")),
        "{m:?}"
    );
    assert!(m.peak_growth < 32 * MIB, "{m:?}");
    assert!(m.elapsed < Duration::from_secs(1), "{m:?}");
}

#[test]
fn a_header_of_a_million_empty_tensors_is_refused_in_bounded_memory() {
    let entries: Vec<String> = (0..1_000_000)
        .map(|i| format!(r#""t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#))
        .collect();
    let bytes = with_header(&format!("{{{}}}", entries.join(",")), &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("million.safetensors");
    fs::write(&path, &bytes).unwrap();
    let m = measured(&path);
    assert!(
        matches!(&m.outcome, Outcome::Err(e) if e.contains("entries")),
        "{m:?}"
    );
    // The header itself, read once, and a bounded amount of parsing on top.
    assert!(
        m.peak_growth < bytes.len() as u64 + 32 * MIB,
        "{} MiB for a {} MiB file",
        m.peak_growth / MIB,
        bytes.len() as u64 / MIB
    );
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.safetensors");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (send, receive) = mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || send.send(load(&path).map(|_| ()).map_err(|e| e.to_string())));
    let result = receive
        .recv_timeout(Duration::from_secs(10))
        .expect("loading a FIFO blocked");
    let err = result.unwrap_err();
    assert!(
        err.contains("model.safetensors") && err.contains("FIFO"),
        "{err}"
    );
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("directory, not a regular file"), "{err}");
}

#[test]
fn duplicate_entries_are_refused_naming_them() {
    let bytes = small_model_bytes();
    let (header, data) = split(&bytes);
    let entry = |name: &str| format!("{}:{}", serde_json::json!(name), header[name]);
    let others: Vec<String> = header
        .keys()
        .filter(|k| *k != "hidden/kernel")
        .map(|k| entry(k))
        .collect();
    // The same tensor twice, with identical offsets and so identical bytes.
    let twice = format!(
        "{{{},{},{}}}",
        entry("hidden/kernel"),
        others.join(","),
        entry("hidden/kernel")
    );
    let err = load_error(&with_header(&twice, &data));
    assert!(
        err.starts_with("hostile.safetensors: ") && err.contains("'hidden/kernel'"),
        "{err}"
    );
    assert!(err.contains("twice"), "{err}");

    let metadata = header["__metadata__"].to_string();
    let doubled = metadata.replacen('{', r#"{"format":"rkeras","#, 1);
    let text = Some(format!("\"__metadata__\":{doubled}"))
        .into_iter()
        .chain(
            header
                .keys()
                .filter(|k| *k != "__metadata__")
                .map(|k| entry(k)),
        )
        .collect::<Vec<_>>()
        .join(",");
    let err = load_error(&with_header(&format!("{{{text}}}"), &data));
    assert!(err.contains("'format'") && err.contains("twice"), "{err}");
}

#[test]
fn a_layer_name_with_control_characters_is_refused_escaped() {
    let hostile = renamed(&small_model_bytes(), "hidden", "\u{1b}[2J\u{1b}[31mowned");
    let err = load_error(&hostile);
    assert!(
        !err.contains('\u{1b}'),
        "the raw escape reached the message: {err:?}"
    );
    assert!(err.contains(r"\u{1b}[2J"), "{err}");
    assert!(err.starts_with("hostile.safetensors: "), "{err}");

    let slash = renamed(&small_model_bytes(), "hidden", "a/b");
    let err = load_error(&slash);
    assert!(err.contains("'a/b'") && err.contains('/'), "{err}");
}
