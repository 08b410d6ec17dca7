//! Session state, as Keras keeps global state: default layer names, the random generator behind
//! initializers, shuffling and random ops, and the device new weights live on.
//!
//! The seed is process-wide, as Keras's `set_random_seed` is: a thread that has not seeded its
//! own session takes the latest seed set anywhere, so a `fit` run on another thread repeats. The
//! rest is kept per thread, so that tests running in parallel do not disturb each other's names
//! or random streams: a thread that calls `set_random_seed` itself draws from its own generator
//! from then on, whatever other threads seed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use candle_core::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Session {
    name_counts: HashMap<String, usize>,
    seed: Option<u64>,
    /// Whether this thread seeded itself (else it follows [`PROCESS_SEED`]).
    seeded_here: bool,
    /// The [`PROCESS_SEED`] generation the generator was last seeded from.
    generation: u64,
    rng: StdRng,
    device: Device,
}

impl Session {
    fn new() -> Self {
        Session {
            name_counts: HashMap::new(),
            seed: None,
            seeded_here: false,
            generation: 0,
            rng: StdRng::from_os_rng(),
            device: Device::Cpu,
        }
    }

    /// Reseeds the generator from the process-wide seed if that changed since, unless this
    /// thread seeded itself.
    fn follow_process_seed(&mut self) {
        if self.seeded_here || PROCESS_GENERATION.load(Ordering::Acquire) == self.generation {
            return;
        }
        let (generation, seed) = *PROCESS_SEED.lock().unwrap_or_else(|e| e.into_inner());
        self.generation = generation;
        self.seed = Some(seed);
        self.rng = StdRng::seed_from_u64(seed);
    }
}

/// The latest seed `set_random_seed` set on any thread, with a count of the calls.
static PROCESS_SEED: Mutex<(u64, u64)> = Mutex::new((0, 0));
/// [`PROCESS_SEED`]'s count, read without the lock on every draw.
static PROCESS_GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::new());
    /// The stream random ops draw from inside [`with_stream`], instead of the session's.
    static STREAM: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// A unique name built from `prefix` as Keras's `uniquify` does: `dense`, then `dense_1`, `dense_2`...
pub fn unique_name(prefix: &str) -> String {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let count = s.name_counts.entry(prefix.to_string()).or_insert(0);
        let name = if *count == 0 {
            prefix.to_string()
        } else {
            format!("{prefix}_{count}")
        };
        *count += 1;
        name
    })
}

/// Seeds the random generator behind weight initializers, shuffling and random ops
/// (Keras's `keras.utils.set_random_seed`): the same seed gives the same run on CPU. The seed
/// reaches every thread that has not seeded itself (see the module documentation).
pub fn set_random_seed(seed: u64) {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        s.seed = Some(seed);
        s.seeded_here = true;
        s.rng = StdRng::seed_from_u64(seed);
    });
    let mut process = PROCESS_SEED.lock().unwrap_or_else(|e| e.into_inner());
    *process = (process.0 + 1, seed);
    PROCESS_GENERATION.store(process.0, Ordering::Release);
}

/// Runs `f` with this thread's session, following the process-wide seed first.
fn with_session<R>(f: impl FnOnce(&mut Session) -> R) -> R {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        s.follow_process_seed();
        f(&mut s)
    })
}

/// A generator for one epoch's shuffling: after `set_random_seed`, it depends only on the seed
/// and the epoch, so a run resumed at epoch `e` shuffles exactly as the uninterrupted run did;
/// unseeded, it is drawn from the session's generator.
pub fn epoch_rng(epoch: usize) -> StdRng {
    with_session(|s| match s.seed {
        Some(seed) => {
            StdRng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        }
        None => StdRng::from_rng(&mut s.rng),
    })
}

/// Runs `f` with the random generator random ops draw from: the stream of the enclosing
/// [`with_stream`], else the session's.
pub fn with_rng<R>(f: impl FnOnce(&mut StdRng) -> R) -> R {
    let mut f = Some(f);
    let from_stream = STREAM.with(|stream| {
        let mut stream = stream.borrow_mut();
        let rng = stream.as_mut()?;
        f.take().map(|f| f(rng))
    });
    match (from_stream, f) {
        (Some(result), _) => result,
        (None, Some(f)) => with_session(|s| f(&mut s.rng)),
        (None, None) => unreachable!("`f` runs in exactly one of the two generators"),
    }
}

/// A base for the keys of [`with_stream`], fixed by the seed when one is set (so that a seeded
/// run draws the same numbers every time), else drawn from the session's generator.
pub fn stream_base() -> u64 {
    with_session(|s| match s.seed {
        Some(seed) => mix(seed, 0x005E_ED0F_57EA),
        None => s.rng.random(),
    })
}

/// The key of the stream of one part of one step: a function of its three parts only (never
/// of the thread that runs it), so that a seeded run repeats on any thread.
pub fn stream_key(base: u64, step: u64, part: u64) -> u64 {
    mix(mix(base, step), part)
}

/// Runs `f` with the random ops on this thread drawing from the stream `key` names (training
/// runs each part of each step in its own stream).
pub fn with_stream<T>(key: u64, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<StdRng>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STREAM.with(|stream| *stream.borrow_mut() = self.0.take());
        }
    }
    let previous = STREAM.with(|stream| stream.replace(Some(StdRng::seed_from_u64(key))));
    let _restore = Restore(previous);
    f()
}

/// SplitMix64's finaliser over `a` and `b`: well-spread keys from small counters.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The device new weights are created on (CPU unless changed).
pub fn default_device() -> Device {
    SESSION.with(|s| s.borrow().device.clone())
}

/// Sets the device new weights are created on, e.g. `Device::new_cuda(0)?`.
pub fn set_default_device(device: Device) {
    SESSION.with(|s| s.borrow_mut().device = device);
}

/// Forgets every default name given so far and every symbolic tensor not yet in a model
/// (Keras's `keras.backend.clear_session`). Models already built keep working.
pub fn clear_session() {
    SESSION.with(|s| s.borrow_mut().name_counts.clear());
    crate::symbolic::reset_arena();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn names_follow_keras_uniquify() {
        clear_session();
        assert_eq!(unique_name("dense"), "dense");
        assert_eq!(unique_name("dense"), "dense_1");
        assert_eq!(unique_name("conv2d"), "conv2d");
        assert_eq!(unique_name("dense"), "dense_2");
        clear_session();
        assert_eq!(unique_name("dense"), "dense");
    }

    #[test]
    fn epoch_generators_depend_on_seed_and_epoch_only() {
        set_random_seed(9);
        let draw = |epoch| epoch_rng(epoch).random::<u64>();
        let (a0, a1) = (draw(0), draw(1));
        let _ = with_rng(|r| r.random::<u64>());
        assert_eq!((draw(0), draw(1)), (a0, a1));
        assert_ne!(a0, a1);
        set_random_seed(10);
        assert_ne!(draw(0), a0);
    }

    #[test]
    fn streams_depend_on_their_key_only() {
        let draw = || with_rng(|r| r.random::<u64>());
        let a = with_stream(stream_key(1, 2, 3), draw);
        let b = with_stream(stream_key(1, 2, 3), || with_stream(9, draw));
        let c = with_stream(stream_key(1, 2, 3), draw);
        assert_eq!(a, c);
        assert_ne!(a, b);
        assert_ne!(a, with_stream(stream_key(1, 2, 4), draw));
        set_random_seed(5);
        let base = stream_base();
        assert_eq!(stream_base(), base);
        set_random_seed(6);
        assert_ne!(stream_base(), base);
    }

    #[test]
    fn seeding_repeats_the_stream() {
        set_random_seed(7);
        let a: Vec<u32> = with_rng(|r| (0..4).map(|_| r.random()).collect());
        set_random_seed(7);
        let b: Vec<u32> = with_rng(|r| (0..4).map(|_| r.random()).collect());
        assert_eq!(a, b);
    }
}
