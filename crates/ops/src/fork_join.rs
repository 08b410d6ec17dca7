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
/// others on rayon's pool); the results in the order of `parts`. Inside a part,
/// [`worker_threads`] is 1, so the dense kernels and products run on that part's thread alone;
/// the convolution, pooling and upsampling kernels size their work for one thread but still
/// run their loops through rayon (for the calling thread's part, a pool thread runs them while
/// the caller waits).
///
/// For pieces of work large enough that one fork-join for all of them costs less than one per
/// kernel, such as the parts of a training batch.
pub fn on_own_threads<P, T, F>(parts: Vec<P>, work: F) -> Vec<T>
where
    P: Send,
    T: Send,
    F: Fn(P) -> T + Sync,
{
    caller_and_pool(parts, |part| {
        let outer = KERNELS_ON_THIS_THREAD.replace(true);
        // Restored even if `work` panics: the panic travels to the caller on this same thread.
        let _restore = RestoreFlag(outer);
        work(part)
    })
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
const LINGER: Duration = Duration::from_millis(1);

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
