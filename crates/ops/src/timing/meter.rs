//! Wall time, CPU time (all threads) and page faults of a piece of work, and a log of them.

use std::sync::Mutex;
use std::time::Instant;

/// What one measured piece of work cost.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cost {
    /// Elapsed wall-clock milliseconds.
    pub wall_ms: f64,
    /// User plus system CPU milliseconds of the whole process (every thread).
    pub cpu_ms: f64,
    /// Minor page faults taken by the whole process.
    pub faults: f64,
}

/// The process's resource usage at one instant.
struct Snapshot {
    at: Instant,
    cpu_ms: f64,
    faults: f64,
}

impl Snapshot {
    fn now() -> Self {
        // SAFETY: `getrusage` only writes into the zeroed struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
        Self {
            at: Instant::now(),
            cpu_ms: ms(usage.ru_utime) + ms(usage.ru_stime),
            faults: usage.ru_minflt as f64,
        }
    }

    fn cost_since(&self, start: &Self) -> Cost {
        Cost {
            wall_ms: (self.at - start.at).as_secs_f64() * 1e3,
            cpu_ms: self.cpu_ms - start.cpu_ms,
            faults: self.faults - start.faults,
        }
    }
}

/// Runs `work` and returns its result with what it cost.
pub(crate) fn measure<R>(work: impl FnOnce() -> R) -> (R, Cost) {
    let start = Snapshot::now();
    let result = work();
    (result, Snapshot::now().cost_since(&start))
}

/// The process's peak resident memory so far, in MiB.
pub(crate) fn peak_rss_mib() -> f64 {
    // SAFETY: as in `Snapshot::now`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    usage.ru_maxrss as f64 / 1024.0
}

/// Which pass a cost belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Forward,
    Backward,
}

/// Costs recorded by name and pass, in the order they happened.
#[derive(Debug, Default)]
pub(crate) struct CostLog(Mutex<Vec<(String, Pass, Cost)>>);

impl CostLog {
    pub(crate) fn record(&self, name: &str, pass: Pass, cost: Cost) {
        self.0
            .lock()
            .expect("cost log poisoned")
            .push((name.to_owned(), pass, cost));
    }

    /// Takes every record made so far.
    pub(crate) fn drain(&self) -> Vec<(String, Pass, Cost)> {
        std::mem::take(&mut *self.0.lock().expect("cost log poisoned"))
    }
}

/// The median of each field over `costs` (which must not be empty).
pub(crate) fn median(costs: &[Cost]) -> Cost {
    let field = |get: fn(&Cost) -> f64| {
        let mut values: Vec<f64> = costs.iter().map(get).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Cost {
        wall_ms: field(|c| c.wall_ms),
        cpu_ms: field(|c| c.cpu_ms),
        faults: field(|c| c.faults),
    }
}
