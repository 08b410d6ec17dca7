//! Work split between the calling thread and rayon's pool, and how many threads the kernels
//! spread their work over.
//!
//! A parallel iterator started outside the pool hands every part to the pool's threads and puts
//! the caller to sleep until they finish: each call wakes two threads and sleeps one, a few
//! microseconds of context switches apiece on a small machine. Here the caller runs the first
//! part itself while the pool runs the others.
//!
//! Those microseconds add up when a training step runs dozens of small kernels, each split in
//! its own fork-join: [`on_own_threads`] instead runs whole pieces of work (a part of a batch
//! through a whole model) one per thread, with the kernels inside running on that thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

thread_local! {
    /// Set while this thread runs a part given by [`on_own_threads`]: its kernels stay on it.
    static KERNELS_ON_THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The number of threads the CPU kernels spread their work over: rayon's, or 1 inside a part
/// run by [`on_own_threads`].
pub fn worker_threads() -> usize {
    if KERNELS_ON_THIS_THREAD.get() {
        1
    } else {
        rayon::current_num_threads().max(1)
    }
}

/// `work(part)` for each of `parts`, one part per thread (the first on the calling thread, the
/// others on rayon's pool, each on a thread of its own); the results in the order of `parts`.
/// Inside a part, [`worker_threads`] is 1: the kernels run on that part's thread alone, their
/// loops never handed to the pool.
///
/// For pieces of work large enough that one fork-join for all of them costs less than one per
/// kernel, such as the parts of a training batch. Parts may wait for each other (see
/// [`Seat`](crate::Seat)) when [`parts_can_meet`] says so: no part then runs on a thread
/// that another part holds.
pub fn on_own_threads<P, T, F>(parts: Vec<P>, work: F) -> Vec<T>
where
    P: Send,
    T: Send,
    F: Fn(P) -> T + Sync,
{
    caller_and_distinct_workers(parts, |part| {
        let outer = KERNELS_ON_THIS_THREAD.replace(true);
        // Restored even if `work` panics: the panic travels to the caller on this same thread.
        let _restore = RestoreFlag(outer);
        work(part)
    })
}

/// Whether `parts` parts given to [`on_own_threads`] by this thread all run at once, each on a
/// thread of its own, so that they may wait for each other: the pool has a thread for each
/// part but the caller's.
pub fn parts_can_meet(parts: usize) -> bool {
    parts <= helper_threads() + 1
}

/// The threads of rayon's pool besides the calling one, which may be one of them (a program
/// running its training inside a pool of its own).
fn helper_threads() -> usize {
    rayon::current_num_threads() - usize::from(rayon::current_thread_index().is_some())
}

/// The fewest items a piece of a kernel's parallel loop holds: inside a part run by
/// [`on_own_threads`], all of them, so that the loop runs on the part's thread without
/// touching rayon's pool (where the part's thread could take up other work while it waits, or
/// sleep until a pool thread ran the loop for it); one elsewhere.
pub(crate) fn min_piece_len() -> usize {
    if KERNELS_ON_THIS_THREAD.get() {
        usize::MAX
    } else {
        1
    }
}

/// Puts back the flag a part found when it started.
struct RestoreFlag(bool);

impl Drop for RestoreFlag {
    fn drop(&mut self) {
        KERNELS_ON_THIS_THREAD.set(self.0);
    }
}

/// `work(part)` for each of `parts`, the first on the calling thread and the others on rayon's
/// pool; the results in the order of `parts`.
pub(crate) fn caller_and_pool<P, T, F>(parts: Vec<P>, work: F) -> Vec<T>
where
    P: Send,
    T: Send,
    F: Fn(P) -> T + Sync,
{
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let rest: Vec<P> = parts.collect();
    if rest.is_empty() {
        // Nothing to hand off: the threads lingering from the last split keep waiting for the
        // next one.
        return vec![work(first)];
    }
    let handed_off = rest.len();
    // Ends the lingering of the threads the previous split left spinning, so they take these
    // parts at once.
    ROUND.fetch_add(1, Ordering::Release);
    let mut results: Vec<Option<T>> = rest.iter().map(|_| None).collect();
    let work = &work;
    let unfinished = AtomicUsize::new(handed_off);
    let unfinished = &unfinished;
    let head = rayon::in_place_scope(|scope| {
        for (part, slot) in rest.into_iter().zip(results.iter_mut()) {
            scope.spawn(move |_| {
                *slot = Some(work(part));
                unfinished.fetch_sub(1, Ordering::Release);
            });
        }
        let head = work(first);
        // The scope's own wait puts this thread to sleep, and a sleeping thread takes its time
        // to wake (see `LINGER`): the other parts usually end within microseconds of this one.
        spin_while(|| unfinished.load(Ordering::Acquire) > 0);
        head
    });
    linger(handed_off);
    std::iter::once(head)
        // The scope returns only once every spawned part has run (a panic in one propagates).
        .chain(results.into_iter().flatten())
        .collect()
}

/// `work(part)` for each of `parts`: the first on the calling thread, the others each on a
/// rayon thread of its own (with `n` pool threads besides the caller, the `i`-th of them runs
/// parts `i + 1`, `i + 1 + n`, ... one after the other; all on the caller for none); the
/// results in the order of `parts`. Unlike a spawned job, which any thread may take up, even
/// one waiting inside another part, a broadcast job runs on the thread it was sent to.
fn caller_and_distinct_workers<P, T, F>(parts: Vec<P>, work: F) -> Vec<T>
where
    P: Send,
    T: Send,
    F: Fn(P) -> T + Sync,
{
    let helpers = helper_threads();
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    if helpers == 0 {
        return std::iter::once(first).chain(parts).map(work).collect();
    }
    let rest: Vec<Mutex<Option<P>>> = parts.map(|part| Mutex::new(Some(part))).collect();
    if rest.is_empty() {
        return vec![work(first)];
    }
    ROUND.fetch_add(1, Ordering::Release);
    let results: Vec<Mutex<Option<T>>> = rest.iter().map(|_| Mutex::new(None)).collect();
    let (work, rest, results) = (&work, &rest, &results);
    let caller = rayon::current_thread_index();
    let unfinished = AtomicUsize::new(rest.len());
    let unfinished = &unfinished;
    let head = rayon::in_place_scope(|scope| {
        scope.spawn_broadcast(move |_, thread| {
            let helper = match caller {
                Some(caller) if thread.index() == caller => return,
                Some(caller) if thread.index() > caller => thread.index() - 1,
                _ => thread.index(),
            };
            for index in (helper..rest.len()).step_by(helpers) {
                let part = take(&rest[index]);
                *lock(&results[index]) = part.map(work);
                unfinished.fetch_sub(1, Ordering::Release);
            }
        });
        let head = work(first);
        spin_while(|| unfinished.load(Ordering::Acquire) > 0);
        head
    });
    linger(rest.len().min(helpers));
    std::iter::once(head)
        .chain(results.iter().filter_map(take))
        .collect()
}

/// The value in `slot`, taken out.
fn take<V>(slot: &Mutex<Option<V>>) -> Option<V> {
    lock(slot).take()
}

/// `mutex` locked, even if a thread panicked holding it (the slots hold plain values).
fn lock<V>(mutex: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts the splits: a lingering thread stops when it changes.
static ROUND: AtomicU64 = AtomicU64::new(0);

/// How long a pool thread stays awake after a split, waiting for the next one.
///
/// A thread that falls asleep takes its time to wake: on a virtual machine, waking an idle
/// virtual CPU was measured at 170 us on average, a tenth of a training step of the dense
/// autoencoder, whose steps follow each other after half a millisecond of single-threaded work
/// (the optimizer update, the next batch's gather). Waiting awake for a bounded time (as OpenMP
/// and Eigen's pools do) avoids that; a machine with other work loses at most this much of a
/// core per split.
pub(crate) const LINGER: Duration = Duration::from_millis(1);

/// Keeps `threads` of rayon's threads spinning (up to [`LINGER`]) until the next split starts.
fn linger(threads: usize) {
    let round = ROUND.load(Ordering::Acquire);
    for _ in 0..threads {
        rayon::spawn(move || spin_while(|| ROUND.load(Ordering::Acquire) == round));
    }
}

/// Spins while `condition` holds, for at most [`LINGER`]. On a pool thread it runs any work
/// waiting in the pool meanwhile (candle's own parallel products, a kernel's parallel loop), so
/// that spinning never holds work up.
fn spin_while(condition: impl Fn() -> bool) {
    let start = Instant::now();
    while condition() && start.elapsed() < LINGER {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_and_results_keep_their_order() {
        for count in [0, 1, 2, 7] {
            let parts: Vec<usize> = (0..count).collect();
            let results = caller_and_pool(parts, |part| part * 10);
            assert_eq!(results, (0..count).map(|p| p * 10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn kernels_inside_a_part_stay_on_its_thread_and_the_flag_is_restored() {
        let outside = worker_threads();
        assert_eq!(outside, rayon::current_num_threads().max(1));
        let inside = on_own_threads(vec![0, 1, 2], |_| worker_threads());
        assert_eq!(inside, vec![1, 1, 1]);
        assert_eq!(worker_threads(), outside);
        let nested = on_own_threads(vec![0], |_| on_own_threads(vec![0], |_| 0));
        assert_eq!(nested, vec![vec![0]]);
        assert_eq!(worker_threads(), outside);
    }

    #[test]
    fn parts_that_can_meet_run_at_once_on_threads_of_their_own() {
        use crate::meeting::seats;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // Each part waits at two meetings for all the others: run one after the other on any
        // one thread, they would never return.
        let meet = |parts: usize| {
            assert!(parts_can_meet(parts) && !parts_can_meet(parts + 1));
            let results = on_own_threads(seats(parts), |seat| {
                let index = seat.index() as f64;
                let first = seat.exchange(vec![index]).unwrap();
                let second = seat.exchange(vec![2.0 * index]).unwrap();
                (first.concat(), second.concat(), std::thread::current().id())
            });
            let threads: std::collections::HashSet<_> = results.iter().map(|r| r.2).collect();
            assert_eq!(threads.len(), parts);
            let indices: Vec<f64> = (0..parts).map(|i| i as f64).collect();
            let doubled: Vec<f64> = indices.iter().map(|i| 2.0 * i).collect();
            for (first, second, _) in results {
                assert_eq!((&first, &second), (&indices, &doubled));
            }
        };
        // Inside a pool (a program training in a pool of its own): the caller and the pool's
        // two other threads; from outside: the caller and every thread of the global pool.
        pool.install(|| meet(3));
        meet(rayon::current_num_threads() + 1);
    }

    #[test]
    fn parts_may_borrow_disjoint_slices() {
        let mut data = vec![0u32; 10];
        let parts: Vec<(usize, &mut [u32])> = data.chunks_mut(3).enumerate().collect();
        let lengths = caller_and_pool(parts, |(index, chunk)| {
            chunk.fill(index as u32 + 1);
            chunk.len()
        });
        assert_eq!(lengths, vec![3, 3, 3, 1]);
        assert_eq!(data, vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
    }
}
