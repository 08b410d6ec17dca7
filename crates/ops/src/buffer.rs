//! Buffers for the ops' results, allocated so that touching them first is cheap.
//!
//! A large allocation is fresh memory that the kernel maps page by page on first touch: with
//! 4 KiB pages a 100 MB result takes some 25 000 page faults (30-50 ms). And a fresh page that is
//! *read* before it is written is first mapped to the shared zero page, then faults again on the
//! write, which also shoots down the TLBs of every core running the process. Hence two rules:
//!
//! - results are allocated by [`zeroed`], which on Linux asks for transparent huge pages
//!   (one fault per 2 MiB);
//! - every kernel writes each cell of a fresh result before it reads it (accumulating kernels
//!   zero-fill their chunk first, while it is in cache).

/// Results at least this large (in bytes) ask for huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// A zero-filled buffer of `len` elements, backed by transparent huge pages where the OS offers
/// them for large buffers.
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    let buffer = vec![0.0f32; len];
    if std::mem::size_of_val(buffer.as_slice()) >= HUGE_PAGE_MIN_BYTES {
        advise_huge_pages(&buffer);
    }
    buffer
}

/// Asks the kernel to back the whole 2 MiB pages inside `buffer` with huge pages. Advisory: it
/// changes no contents, and a kernel without transparent huge pages just declines.
#[cfg(target_os = "linux")]
fn advise_huge_pages(buffer: &[f32]) {
    const HUGE_PAGE: usize = 2 << 20;
    let start = buffer.as_ptr() as usize;
    let end = start + std::mem::size_of_val(buffer);
    let (first, last) = (
        start.next_multiple_of(HUGE_PAGE),
        end / HUGE_PAGE * HUGE_PAGE,
    );
    if first < last {
        // SAFETY: the range lies inside `buffer`'s allocation, and MADV_HUGEPAGE only changes how
        // its pages are backed, never what they hold. The result is deliberately ignored: the
        // advice is optional.
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
fn advise_huge_pages(_buffer: &[f32]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_are_zero() {
        for len in [0, 1, 1000, (HUGE_PAGE_MIN_BYTES / 4) * 3 + 5] {
            let buffer = zeroed(len);
            assert_eq!(buffer.len(), len);
            assert!(buffer.iter().all(|&v| v == 0.0));
        }
    }
}
