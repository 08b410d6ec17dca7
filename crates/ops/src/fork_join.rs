//! Work split between the calling thread and rayon's pool.
//!
//! A parallel iterator started outside the pool hands every part to the pool's threads and puts
//! the caller to sleep until they finish: each call wakes two threads and sleeps one, a few
//! microseconds of context switches apiece on a small machine. Here the caller runs the first
//! part itself while the pool runs the others.

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
    let mut results: Vec<Option<T>> = rest.iter().map(|_| None).collect();
    let work = &work;
    let head = rayon::in_place_scope(|scope| {
        for (part, slot) in rest.into_iter().zip(results.iter_mut()) {
            scope.spawn(move |_| *slot = Some(work(part)));
        }
        work(first)
    });
    std::iter::once(head)
        // The scope returns only once every spawned part has run (a panic in one propagates).
        .chain(results.into_iter().flatten())
        .collect()
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
