//! Peak memory and time of loads, measured one file at a time in a child process (this test
//! binary run again on one test), so that tests running in parallel threads do not blur the
//! numbers. Linux only: the peak is `/proc/self/status`'s VmHWM, reset before each load by
//! writing 5 to `/proc/self/clear_refs`.

use std::io::{BufRead, BufReader, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment variable that tells the child test which file lists the cases.
const CASES_ENV: &str = "RKERAS_PEAK_CASES";

/// How one load ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It loaded.
    Ok,
    /// A clean error, with its message.
    Err(String),
    /// It panicked (or the child died).
    Panic(String),
    /// It ran past the per-case time limit and was killed.
    Hang,
}

/// One measured load.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The file loaded.
    pub path: PathBuf,
    /// How far the resident memory rose above what it was before the load, in bytes.
    pub peak_growth: u64,
    /// How long the load took.
    pub elapsed: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// In the child (when the parent set the cases): loads each case with `load`, printing one
/// line per case. Does nothing in a normal test run.
pub fn child(load: impl Fn(&Path) -> Result<(), String>) {
    let Ok(list) = std::env::var(CASES_ENV) else {
        return;
    };
    let cases = std::fs::read_to_string(list).unwrap();
    let mut out = std::io::stdout();
    for (i, path) in cases.lines().enumerate() {
        writeln!(out, "START\t{i}").unwrap();
        out.flush().unwrap();
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let before = status_kb("VmRSS:");
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| load(Path::new(path))));
        let elapsed = start.elapsed().as_micros();
        let growth = status_kb("VmHWM:").saturating_sub(before) * 1024;
        let (kind, message) = match result {
            Ok(Ok(())) => ("ok", String::new()),
            Ok(Err(e)) => ("err", e),
            Err(panic) => (
                "panic",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            ),
        };
        let message = message
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\t', "\\t");
        writeln!(out, "DONE\t{i}\t{growth}\t{elapsed}\t{kind}\t{message}").unwrap();
        out.flush().unwrap();
    }
}

/// Runs `child_test` (a test of this binary that calls [`child`]) on `cases` and returns a
/// measurement per case. A case running longer than `per_case` is killed and reported as a
/// hang; a child that dies reports its case as a panic; the rest run in a fresh child.
pub fn measure(child_test: &str, cases: &[PathBuf], per_case: Duration) -> Vec<Measurement> {
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    let mut next = 0;
    while next < cases.len() {
        let list = dir.path().join(format!("cases-{next}"));
        let text: Vec<String> = cases[next..]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        std::fs::write(&list, text.join("\n")).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CASES_ENV, &list)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if send.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut started = None;
        loop {
            match lines.recv_timeout(per_case) {
                Ok(line) => {
                    let fields: Vec<&str> = line.splitn(6, '\t').collect();
                    match fields.as_slice() {
                        ["START", i] => started = Some(next + i.parse::<usize>().unwrap()),
                        ["DONE", i, growth, micros, kind, message] => {
                            let index = next + i.parse::<usize>().unwrap();
                            let message = message.to_string();
                            results.push(Measurement {
                                path: cases[index].clone(),
                                peak_growth: growth.parse().unwrap(),
                                elapsed: Duration::from_micros(micros.parse().unwrap()),
                                outcome: match *kind {
                                    "ok" => Outcome::Ok,
                                    "err" => Outcome::Err(message),
                                    _ => Outcome::Panic(message),
                                },
                            });
                            started = None;
                        }
                        _ => {} // The test harness's own lines.
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let index = started.unwrap_or(next);
                    results.push(Measurement {
                        path: cases[index].clone(),
                        peak_growth: 0,
                        elapsed: per_case,
                        outcome: Outcome::Hang,
                    });
                    next = index + 1;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().unwrap();
                    match started {
                        Some(index) => {
                            results.push(Measurement {
                                path: cases[index].clone(),
                                peak_growth: 0,
                                elapsed: Duration::ZERO,
                                outcome: Outcome::Panic(format!("the child died: {status}")),
                            });
                            next = index + 1;
                        }
                        None => next = cases.len(),
                    }
                    break;
                }
            }
        }
    }
    results
}
