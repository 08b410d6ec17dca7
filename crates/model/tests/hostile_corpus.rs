//! The hostile-file corpus (`common/corpus.rs`), loaded from files in a child process that
//! measures each load's peak memory and time, and from bytes in this one: every load ends in
//! a result naming the file, in bounded memory and under a second. Linux only.
#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use rkeras_model::saving::{load, read_bytes, Registry};

use common::corpus::{cases, materialize, Content};
use common::peak::{self, Outcome};

const MIB: u64 = 1 << 20;

/// The child process that loads the corpus' files.
#[test]
fn corpus_child() {
    peak::child(|path| load(path).map(|_| ()).map_err(|e| e.to_string()));
}

/// The memory a load may take: the header region twice over (read, then parsed) and 64 MiB.
fn memory_bound(path: &Path) -> u64 {
    let meta = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => meta,
        _ => return 64 * MIB,
    };
    let mut prefix = [0u8; 8];
    let claimed = match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut prefix)) {
        Ok(()) => u64::from_le_bytes(prefix).saturating_add(8),
        Err(_) => 0,
    };
    2 * claimed.min(meta.len()) + 64 * MIB
}

#[test]
fn every_hostile_file_is_a_clean_error_in_bounded_memory_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    let paths = materialize(&cases, dir.path());
    let results = peak::measure("corpus_child", &paths, Duration::from_secs(60));
    let mut failures = Vec::new();
    let (mut ok, mut errors, mut panics, mut hangs) = (0, 0, 0, 0);
    let (mut max_growth, mut max_time) = (0, Duration::ZERO);
    for (case, m) in cases.iter().zip(&results) {
        assert_eq!(m.path, dir.path().join(&case.name));
        let len = std::fs::metadata(&m.path).map_or(0, |m| m.len());
        max_growth = max_growth.max(m.peak_growth);
        max_time = max_time.max(m.elapsed);
        match &m.outcome {
            Outcome::Ok => ok += 1,
            Outcome::Err(e) => {
                errors += 1;
                if !e.starts_with(&m.path.display().to_string()) {
                    failures.push(format!("{}: error does not name the file: {e}", case.name));
                }
            }
            Outcome::Panic(p) => {
                panics += 1;
                failures.push(format!("{}: panicked: {p}", case.name));
            }
            Outcome::Hang => {
                hangs += 1;
                failures.push(format!("{}: hung", case.name));
            }
        }
        if case
            .valid
            .is_some_and(|valid| valid != (m.outcome == Outcome::Ok))
        {
            failures.push(format!(
                "{}: expected valid {:?} but {:?}",
                case.name, case.valid, m.outcome
            ));
        }
        if m.peak_growth > memory_bound(&m.path) {
            failures.push(format!(
                "{}: {} MiB for a {} MiB file",
                case.name,
                m.peak_growth / MIB,
                len / MIB
            ));
        }
        if len < 100_000_000 && m.elapsed > Duration::from_secs(1) {
            failures.push(format!("{}: took {:?}", case.name, m.elapsed));
        }
    }
    eprintln!(
        "{} files: {ok} loaded, {errors} clean errors, {panics} panics, {hangs} hangs; \
         peak growth at most {} MiB, time at most {max_time:?}",
        results.len(),
        max_growth / MIB
    );
    let mut slowest: Vec<_> = cases.iter().zip(&results).collect();
    slowest.sort_by_key(|(_, m)| std::cmp::Reverse(m.peak_growth));
    for (case, m) in slowest.iter().take(8) {
        eprintln!(
            "  {}: {} MiB, {:?}",
            case.name,
            m.peak_growth / MIB,
            m.elapsed
        );
    }
    assert_eq!(results.len(), cases.len());
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(40)].join("\n")
    );
}

#[test]
fn every_hostile_byte_string_is_a_clean_error() {
    let registry = Registry::default();
    let mut failures = Vec::new();
    let mut tried = 0;
    for case in cases() {
        let Content::Bytes(bytes) = &case.content else {
            continue;
        };
        tried += 1;
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            read_bytes(bytes, Path::new("corpus.safetensors"), &registry)
        }));
        let elapsed = start.elapsed();
        match result {
            Err(_) => failures.push(format!("{}: panicked", case.name)),
            Ok(Ok(_)) if case.valid == Some(false) => {
                failures.push(format!("{}: loaded", case.name))
            }
            Ok(Err(e)) if case.valid == Some(true) => failures.push(format!("{}: {e}", case.name)),
            Ok(Err(e)) if !e.to_string().starts_with("corpus.safetensors: ") => {
                failures.push(format!("{}: error does not name the file: {e}", case.name))
            }
            _ => {}
        }
        if elapsed > Duration::from_secs(1) {
            failures.push(format!("{}: took {elapsed:?}", case.name));
        }
    }
    eprintln!("{tried} byte strings tried, {} failures", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
