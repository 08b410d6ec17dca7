//! The allocator of the examples and benchmarks: mimalloc, told to keep the memory a training
//! step frees for the next step.
//!
//! A training step allocates its activations and gradients afresh (25 MB tensors in the conv
//! autoencoder) and frees them at its end. By default mimalloc returns freed memory to the OS
//! 10 ms later, so every step of more than 10 ms maps its buffers anew, and the kernel zeroes
//! each page on first touch: a quarter of a conv step went to zeroing pages (60 000 page faults
//! in 8 steps). Keeping the memory took the deep autoencoder's example from 45 000 page faults
//! to 550 over five epochs and its epoch about 10% faster. The cost: memory freed once is never
//! given back, so the examples' peak memory rose from about 0.45 to 0.6 GB (the data loader's
//! temporaries stay mapped).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: position 15 of `mi_option_t` in the `mimalloc.h` of both
/// mimalloc 2 and 3 (`libmimalloc-sys` names no constant for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the OS (a purge delay of -1), so that the
/// next training step reuses it without page faults. Call it first thing in `main`.
pub fn keep_freed_memory() {
    // SAFETY: setting an option is a plain store that mimalloc allows at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
    // SAFETY: reading an option is a plain load.
    debug_assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, -1);
}
