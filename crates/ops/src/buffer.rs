//! Buffers for the ops' results, allocated so that touching them first is cheap.
//!
//! A large allocation is fresh memory that the kernel maps page by page on first touch: with
//! 4 KiB pages a 100 MB result takes some 25 000 page faults (30-50 ms). And a fresh page that is
//! *read* before it is written is first mapped to the shared zero page, then faults again on the
//! write, which also shoots down the TLBs of every core running the process. Memory an allocator
//! hands out again is no cheaper to zero: `calloc` clears it in one pass over the whole result,
//! out of cache, before the kernel writes it again. Hence:
//!
//! - results are allocated by [`Fresh`], which on Linux asks for transparent huge pages (one
//!   fault per 2 MiB), and not zeroed;
//! - kernels write each chunk of a result through [`Uninit`], once, before anything reads it:
//!   one that accumulates zeroes its chunk first, while the chunk is in cache.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

/// Results at least this large (in bytes) ask for huge pages (on Linux, the one system asked).
#[cfg(any(target_os = "linux", test))]
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// A result buffer whose cells are not initialised yet: every cell is written exactly once,
/// chunk by chunk through [`Uninit`], before [`Fresh::into_written`] hands the buffer out.
pub(crate) struct Fresh {
    cells: Vec<MaybeUninit<f32>>,
    /// Cells written so far (the chunks are disjoint and each is written once).
    written: AtomicUsize,
    /// Whether the cells were handed out in chunks (which happens once, so that no cell is
    /// in two chunks).
    handed_out: bool,
}

impl Fresh {
    /// `len` unwritten cells, backed by transparent huge pages where the OS offers them.
    pub(crate) fn new(len: usize) -> Self {
        let mut cells: Vec<MaybeUninit<f32>> = Vec::with_capacity(len);
        // SAFETY: `MaybeUninit` needs no initialisation, and the capacity is `len`.
        unsafe { cells.set_len(len) };
        advise_huge_pages(cells.as_ptr().cast(), len);
        Self {
            cells,
            written: AtomicUsize::new(0),
            handed_out: false,
        }
    }

    /// The number of cells.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// The buffer in consecutive chunks of `chunk_len` cells (the last one may be shorter).
    ///
    /// Panics if the buffer was already handed out (an internal invariant, never user input).
    pub(crate) fn chunks(&mut self, chunk_len: usize) -> impl Iterator<Item = Uninit<'_>> {
        let (cells, written) = self.hand_out();
        Uninit { cells, written }.pieces(chunk_len)
    }

    /// The buffer in consecutive chunks of `chunk_len` cells (the last one may be shorter), for
    /// writing in parallel.
    ///
    /// Panics if the buffer was already handed out (an internal invariant, never user input).
    pub(crate) fn par_chunks(
        &mut self,
        chunk_len: usize,
    ) -> impl IndexedParallelIterator<Item = Uninit<'_>> {
        let (cells, written) = self.hand_out();
        cells
            .par_chunks_mut(chunk_len.max(1))
            .map(move |cells| Uninit { cells, written })
    }

    /// The cells and the count of written ones, the first and only time they are asked for.
    fn hand_out(&mut self) -> (&mut [MaybeUninit<f32>], &AtomicUsize) {
        assert!(
            !std::mem::replace(&mut self.handed_out, true),
            "a result buffer was handed out twice"
        );
        (&mut self.cells, &self.written)
    }

    /// The buffer, once every cell has been written.
    ///
    /// Panics if some cell was not (an internal invariant of the kernels, never user input).
    pub(crate) fn into_written(self) -> Vec<f32> {
        let len = self.cells.len();
        assert_eq!(
            self.written.into_inner(),
            len,
            "a kernel left cells of its result unwritten"
        );
        let mut cells = std::mem::ManuallyDrop::new(self.cells);
        let capacity = cells.capacity();
        // SAFETY: every cell was written: the count covers `len` cells, and it comes from
        // disjoint chunks (handed out once, split only by consuming them), each adding its
        // length once, after writing all its cells. `MaybeUninit<f32>` has the layout of `f32`, so the allocation is reused as is.
        unsafe { Vec::from_raw_parts(cells.as_mut_ptr().cast::<f32>(), len, capacity) }
    }
}

/// A chunk of a [`Fresh`] buffer, not written yet. Each way of writing it writes every cell
/// and returns the chunk as plain floats.
pub(crate) struct Uninit<'a> {
    cells: &'a mut [MaybeUninit<f32>],
    written: &'a AtomicUsize,
}

impl<'a> Uninit<'a> {
    /// The number of cells.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// The chunk in consecutive pieces of `len` cells (the last one may be shorter), each to be
    /// written on its own.
    pub(crate) fn pieces(self, len: usize) -> impl Iterator<Item = Uninit<'a>> {
        let written = self.written;
        self.cells
            .chunks_mut(len.max(1))
            .map(move |cells| Uninit { cells, written })
    }

    /// Sets every cell to `value`.
    pub(crate) fn fill(self, value: f32) -> &'a mut [f32] {
        for cell in self.cells.iter_mut() {
            cell.write(value);
        }
        self.into_written()
    }

    /// Hands the chunk's cells to `write`, which writes each of them, and views them as floats:
    /// for a kernel that produces the values in place rather than in a buffer to copy from.
    ///
    /// # Safety
    ///
    /// `write` must write every cell of the slice it is given.
    pub(crate) unsafe fn write_with(
        self,
        write: impl FnOnce(&mut [MaybeUninit<f32>]),
    ) -> &'a mut [f32] {
        write(&mut *self.cells);
        self.into_written()
    }

    /// Writes the concatenation of `parts`, which must cover the chunk exactly.
    ///
    /// Panics if they are longer or shorter (an internal invariant, never user input).
    pub(crate) fn concat<'p>(self, parts: impl IntoIterator<Item = &'p [f32]>) -> &'a mut [f32] {
        let mut at = 0;
        for part in parts {
            let cells = &mut self.cells[at..at + part.len()];
            for (cell, &value) in cells.iter_mut().zip(part) {
                cell.write(value);
            }
            at += part.len();
        }
        assert_eq!(at, self.cells.len(), "the parts do not cover the chunk");
        self.into_written()
    }

    /// Counts the chunk as written and views it as floats; every method calls it last, after
    /// writing every cell.
    fn into_written(self) -> &'a mut [f32] {
        let Self { cells, written } = self;
        written.fetch_add(cells.len(), Ordering::Relaxed);
        // SAFETY: the caller wrote every cell; `MaybeUninit<f32>` has the layout of `f32`, and
        // the unique borrow `cells` is consumed here.
        unsafe { std::slice::from_raw_parts_mut(cells.as_mut_ptr().cast::<f32>(), cells.len()) }
    }
}

/// Runs `write` on `buffer` (a thread's scratch, say) as one [`Uninit`] chunk, so that a kernel
/// that writes results can write into a reused buffer; returns what `write` returns.
///
/// Panics if `write` left cells unwritten (an internal invariant, never user input).
pub(crate) fn overwrite<T>(buffer: &mut [f32], write: impl FnOnce(Uninit<'_>) -> T) -> T {
    let len = buffer.len();
    let written = AtomicUsize::new(0);
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and an `Uninit` only ever stores
    // initialised floats into its cells, so the buffer's floats stay initialised.
    let cells = unsafe { &mut *(buffer as *mut [f32] as *mut [MaybeUninit<f32>]) };
    let result = write(Uninit {
        cells,
        written: &written,
    });
    assert_eq!(
        written.into_inner(),
        len,
        "a kernel left cells of its buffer unwritten"
    );
    result
}

/// Asks the kernel to back the whole 2 MiB pages of the `len` floats at `start` with huge pages,
/// when they are at least [`HUGE_PAGE_MIN_BYTES`]. Advisory: it changes no contents, and a kernel
/// without transparent huge pages just declines.
#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *const f32, len: usize) {
    const HUGE_PAGE: usize = 2 << 20;
    let bytes = len * std::mem::size_of::<f32>();
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    let start = start as usize;
    let end = start + bytes;
    let (first, last) = (
        start.next_multiple_of(HUGE_PAGE),
        end / HUGE_PAGE * HUGE_PAGE,
    );
    if first < last {
        // SAFETY: the range lies inside the caller's allocation, and MADV_HUGEPAGE only changes
        // how its pages are backed, never what they hold. The result is deliberately ignored:
        // the advice is optional.
        unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *const f32, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    const LARGE: usize = (HUGE_PAGE_MIN_BYTES / 4) * 3 + 5;

    #[test]
    fn fresh_buffers_hold_what_each_chunk_wrote() {
        for len in [0, 1, 10, LARGE] {
            let mut fresh = Fresh::new(len);
            assert_eq!(fresh.len(), len);
            let written: Vec<&mut [f32]> = fresh
                .chunks(4)
                .enumerate()
                .map(|(index, chunk)| match (index % 2, chunk.len()) {
                    (0, _) => chunk.fill(index as f32),
                    (_, 4) => chunk.concat([[1.0, 2.0].as_slice(), &[], &[3.0, 4.0]]),
                    (_, short) => chunk.concat(std::iter::repeat_n([5.0].as_slice(), short)),
                })
                .collect();
            for chunk in written {
                chunk[0] += 0.5;
            }
            let buffer = fresh.into_written();
            assert_eq!(buffer.len(), len);
            for (i, &v) in buffer.iter().enumerate() {
                let (index, at) = (i / 4, i % 4);
                let full = len - index * 4 >= 4;
                let expected = match (index % 2, full) {
                    (0, _) => index as f32,
                    (_, true) => [1.0, 2.0, 3.0, 4.0][at],
                    (_, false) => 5.0,
                } + if at == 0 { 0.5 } else { 0.0 };
                assert_eq!(v, expected, "cell {i}");
            }
        }
    }

    #[test]
    fn parallel_chunks_cover_the_buffer() {
        let mut fresh = Fresh::new(LARGE);
        fresh
            .par_chunks(1000)
            .enumerate()
            .for_each(|(index, chunk)| {
                chunk.fill(index as f32);
            });
        let buffer = fresh.into_written();
        assert!(buffer
            .iter()
            .enumerate()
            .all(|(i, &v)| v == (i / 1000) as f32));
    }

    #[test]
    #[should_panic(expected = "handed out twice")]
    fn a_buffer_is_handed_out_once() {
        let mut fresh = Fresh::new(8);
        for chunk in fresh.chunks(4).take(1) {
            chunk.fill(1.0);
        }
        // Writing the first half twice must not pass for writing the whole buffer.
        for chunk in fresh.chunks(4).take(1) {
            chunk.fill(2.0);
        }
    }

    #[test]
    #[should_panic(expected = "do not cover")]
    fn parts_that_do_not_cover_the_chunk_are_caught() {
        let mut fresh = Fresh::new(4);
        for chunk in fresh.chunks(4) {
            chunk.concat([[1.0, 2.0].as_slice()]);
        }
    }

    #[test]
    fn a_reused_buffer_is_overwritten_piece_by_piece() {
        let mut buffer = vec![7.0; 6];
        let sum = overwrite(&mut buffer, |cells| {
            cells
                .pieces(4)
                .map(|piece| piece.fill(2.0).iter().sum::<f32>())
                .sum::<f32>()
        });
        assert_eq!(sum, 12.0);
        assert_eq!(buffer, [2.0; 6]);
    }

    #[test]
    #[should_panic(expected = "unwritten")]
    fn a_reused_buffer_left_partly_unwritten_is_caught() {
        overwrite(&mut [0.0; 4], |cells| {
            cells.pieces(2).take(1).for_each(|piece| {
                piece.fill(1.0);
            })
        });
    }

    #[test]
    #[should_panic(expected = "unwritten")]
    fn a_chunk_left_unwritten_is_caught() {
        let mut fresh = Fresh::new(8);
        for chunk in fresh.chunks(4).take(1) {
            chunk.fill(1.0);
        }
        drop(fresh.into_written());
    }
}
