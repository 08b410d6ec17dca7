//! Running test code on a fixed number of threads, whatever the machine has.

/// `work` inside a rayon pool of two threads, as on the two-core machines this runs on.
pub(crate) fn on_two_threads<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a two-thread pool")
        .install(work)
}
