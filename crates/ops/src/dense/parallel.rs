//! Row-wise work split over rayon's threads, only when it is large enough to pay for the hand-off.
//!
//! These kernels run their own loops instead of candle's elementwise ops, whose spinning thread
//! pool stalls a loaded machine; small work stays on the calling thread.

use std::mem::MaybeUninit;
use std::ops::Range;

use crate::fork_join::{caller_and_pool, worker_threads};
use crate::simd::{vectorized, Kernel};

/// The fewest elements one task gets: below this the hand-off to another thread costs more than
/// the work.
const MIN_TASK_ELEMENTS: usize = 16 * 1024;

/// Rows per task for `rows` rows of `cols` elements: at least [`MIN_TASK_ELEMENTS`] elements, and
/// one task per thread (the caller runs one, see [`caller_and_pool`]). With a single worker
/// thread, every row: handing work to the pool's only thread would just add two context
/// switches.
fn rows_per_task(rows: usize, cols: usize) -> usize {
    let threads = worker_threads();
    if threads == 1 {
        return rows.max(1);
    }
    let by_size = MIN_TASK_ELEMENTS.div_ceil(cols.max(1));
    let by_threads = rows.div_ceil(threads);
    by_size.max(by_threads).clamp(1, rows.max(1))
}

/// `task(row_range)` over consecutive row ranges covering `0..rows`, in parallel when the work is
/// large; the results in row order.
pub(crate) fn in_row_chunks<T, F>(rows: usize, cols: usize, task: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    let step = rows_per_task(rows, cols);
    if step >= rows {
        return vec![task(0..rows)];
    }
    let ranges = (0..rows.div_ceil(step))
        .map(|chunk| chunk * step..rows.min((chunk + 1) * step))
        .collect();
    caller_and_pool(ranges, task)
}

/// `task(row_range, rows_of_out)` over consecutive row ranges of the row-major `out` (rows of
/// `cols` elements), in parallel when the work is large; the results in row order. When `out`
/// ends with a partial row, the last task's slice also holds it (its range counts whole rows).
fn in_row_chunks_mut<E, T, F>(out: &mut [E], cols: usize, task: F) -> Vec<T>
where
    E: Send,
    T: Send,
    F: Fn(Range<usize>, &mut [E]) -> T + Sync,
{
    let rows = out.len().checked_div(cols).unwrap_or(0);
    let step = rows_per_task(rows, cols);
    if step >= rows {
        return vec![task(0..rows, out)];
    }
    let parts = out.chunks_mut(step * cols).enumerate().collect();
    caller_and_pool(parts, |(chunk, rows_out): (usize, &mut [E])| {
        let first = chunk * step;
        task(first..first + rows_out.len() / cols, rows_out)
    })
}

/// Elements per row when [`map_pairs`] splits its work.
const PAIR_ROW: usize = 1024;

/// `f(a[i], b[i])` for every `i` (vectorised, see [`crate::simd`]), written straight into the
/// result (no zero fill first), split over threads when large. `b` must be as long as `a`.
pub(crate) fn map_pairs<F>(a: &[f32], b: &[f32], f: F) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Sync,
{
    let len = a.len().min(b.len());
    // SAFETY: `PairMap` writes every cell of its slice.
    let (out, _) = unsafe {
        write_rows(len, PAIR_ROW, |rows, out| {
            let start = rows.start * PAIR_ROW;
            let span = start..start + out.len();
            vectorized(PairMap {
                a: &a[span.clone()],
                b: &b[span],
                out,
                f: &f,
            })
        })
    };
    out
}

/// `f(a[i])` for every `i`, as [`map_pairs`] (whose second operand it reads again: the same
/// cache lines, so at no measurable cost, and one loop to maintain).
pub(crate) fn map_values<F>(a: &[f32], f: F) -> Vec<f32>
where
    F: Fn(f32) -> f32 + Sync,
{
    map_pairs(a, a, |x, _| f(x))
}

/// A fresh row-major buffer of `len` elements (rows of `cols`, the last one possibly partial),
/// written by `task(row_range, rows_of_out)` as [`in_row_chunks_mut`] splits it (no zero fill
/// first), and the tasks' results in row order.
///
/// # Safety
///
/// `task` must write every cell of the slice it is given.
pub(crate) unsafe fn write_rows<T, F>(len: usize, cols: usize, task: F) -> (Vec<f32>, Vec<T>)
where
    T: Send,
    F: Fn(Range<usize>, &mut [MaybeUninit<f32>]) -> T + Sync,
{
    let mut out = Vec::with_capacity(len);
    let results = in_row_chunks_mut(&mut out.spare_capacity_mut()[..len], cols, task);
    // SAFETY: the tasks cover `0..len` (the last one takes the partial row) and, by this
    // function's contract, write every cell of it.
    unsafe { out.set_len(len) };
    (out, results)
}

/// `out[i] = f(a[i], b[i])` over slices of one length.
struct PairMap<'a, F> {
    a: &'a [f32],
    b: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    f: &'a F,
}

impl<F: Fn(f32, f32) -> f32> Kernel for PairMap<'_, F> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for ((out, &a), &b) in self.out.iter_mut().zip(self.a).zip(self.b) {
            out.write((self.f)(a, b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_in_order() {
        for (rows, cols) in [(0, 5), (1, 1), (3, 7), (256, 784), (1000, 3), (257, 1024)] {
            let ranges = in_row_chunks(rows, cols, |r| r);
            let covered: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(covered, (0..rows).collect::<Vec<_>>(), "{rows}x{cols}");

            let mut out = vec![0.0f32; rows * cols];
            let ranges = in_row_chunks_mut(&mut out, cols, |r, chunk| {
                assert_eq!(chunk.len(), r.len() * cols);
                for (i, row) in r.clone().zip(chunk.chunks_mut(cols)) {
                    row.fill(i as f32);
                }
                r
            });
            let covered: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(covered, (0..rows).collect::<Vec<_>>(), "{rows}x{cols}");
            for (i, row) in out.chunks(cols.max(1)).enumerate() {
                assert!(row.iter().all(|&v| v == i as f32), "{rows}x{cols} row {i}");
            }
        }
    }

    #[test]
    fn a_partial_last_row_goes_to_the_last_task() {
        for len in [5, 1024 * 40 + 17] {
            let mut out = vec![0.0f32; len];
            let tails = in_row_chunks_mut(&mut out, 1024, |_, chunk| {
                chunk.fill(1.0);
                chunk.len() % 1024
            });
            assert!(out.iter().all(|&v| v == 1.0), "{len}");
            assert_eq!(tails.last(), Some(&(len % 1024)));
        }
    }

    #[test]
    fn pairs_are_mapped_in_order_small_and_large() {
        for len in [0, 3, 5 * MIN_TASK_ELEMENTS + 1] {
            let a: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 7) as f32).collect();
            let out = map_pairs(&a, &b, |x, y| x * 10.0 + y);
            assert_eq!(out.len(), len);
            assert!(out
                .iter()
                .enumerate()
                .all(|(i, &v)| v == i as f32 * 10.0 + (i % 7) as f32));
            let squares = map_values(&a, |x| x * x);
            assert!(squares.iter().zip(&a).all(|(&s, &x)| s == x * x));
        }
    }

    #[test]
    fn large_work_is_split_and_small_work_is_not() {
        assert_eq!(rows_per_task(16, 100), 16);
        let step = rows_per_task(256, 784);
        if worker_threads() == 1 {
            assert_eq!(step, 256);
        } else {
            assert!(step < 256 && step * 784 >= MIN_TASK_ELEMENTS, "{step}");
        }
    }

    #[test]
    fn one_worker_thread_takes_all_rows_in_one_task() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a one-thread pool");
        assert_eq!(pool.install(|| rows_per_task(100_000, 1024)), 100_000);
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a two-thread pool");
        assert!(two.install(|| rows_per_task(100_000, 1024)) < 100_000);
    }
}
