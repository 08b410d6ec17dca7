//! Peak memory and time of loads, measured one file at a time in a child process (this test
//! binary run again on one test), so that neither tests running in parallel threads nor
//! earlier loads blur the numbers. Linux only: the peak is `/proc/self/status`'s VmHWM, reset before each load by
//! writing 5 to `/proc/self/clear_refs`.

use std::io::{BufRead, BufReader};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment variable that tells the child test which file to load.
const CASE_ENV: &str = "RKERAS_PEAK_CASE";

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

/// In the child (when the parent set the case): loads the case with `load` and prints how it
/// went on one line. Does nothing in a normal test run.
pub fn child(load: impl Fn(&Path) -> Result<(), String>) {
    let Ok(path) = std::env::var(CASE_ENV) else {
        return;
    };
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kb("VmRSS:");
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| load(Path::new(&path))));
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
    println!("MEASURED\t{growth}\t{elapsed}\t{kind}\t{message}");
}

/// Loads each of `cases` in a fresh child process running `child_test` (a test of this
/// binary that calls [`child`]), so that no load inherits another's freed memory, and returns
/// a measurement per case. A load running longer than `timeout` is killed and reported as a
/// hang; a child that dies without reporting is reported as a panic.
pub fn measure(child_test: &str, cases: &[PathBuf], timeout: Duration) -> Vec<Measurement> {
    cases
        .iter()
        .map(|path| measure_one(child_test, path, timeout))
        .collect()
}

fn measure_one(child_test: &str, path: &Path, timeout: Duration) -> Measurement {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (send, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print `test <name> ... ` on the same line first.
            if let Some((_, report)) = line.split_once("MEASURED\t") {
                let _ = send.send(report.to_string());
            }
        }
    });
    let measurement = |peak_growth, elapsed, outcome| Measurement {
        path: path.to_path_buf(),
        peak_growth,
        elapsed,
        outcome,
    };
    let report = lines.recv_timeout(timeout);
    let _ = child.kill();
    let status = child.wait().unwrap();
    match report {
        Ok(report) => {
            let fields: Vec<&str> = report.splitn(4, '\t').collect();
            let [growth, micros, kind, message] = fields[..] else {
                panic!("a malformed report: {report}");
            };
            let outcome = match kind {
                "ok" => Outcome::Ok,
                "err" => Outcome::Err(message.to_string()),
                _ => Outcome::Panic(message.to_string()),
            };
            measurement(
                growth.parse().unwrap(),
                Duration::from_micros(micros.parse().unwrap()),
                outcome,
            )
        }
        Err(mpsc::RecvTimeoutError::Timeout) => measurement(0, timeout, Outcome::Hang),
        Err(mpsc::RecvTimeoutError::Disconnected) => measurement(
            0,
            Duration::ZERO,
            Outcome::Panic(format!("the child died: {status}")),
        ),
    }
}
