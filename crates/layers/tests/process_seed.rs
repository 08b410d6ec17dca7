//! `set_random_seed` is process-wide, as Keras's is (a test binary of its own: other tests
//! seeding the process in parallel would change the seed under it).

use rand::Rng;
use rkeras_layers::session::{set_random_seed, with_rng};

fn draw() -> u64 {
    with_rng(|r| r.random::<u64>())
}

fn on_a_new_thread() -> u64 {
    std::thread::spawn(draw).join().unwrap()
}

#[test]
fn a_seed_reaches_threads_that_did_not_seed_themselves_and_spares_those_that_did() {
    set_random_seed(21);
    let first = on_a_new_thread();
    set_random_seed(21);
    assert_eq!(on_a_new_thread(), first);
    set_random_seed(22);
    assert_ne!(on_a_new_thread(), first);
    // A pool thread that already drew follows a later seed too.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    set_random_seed(23);
    let seeded = pool.install(draw);
    set_random_seed(23);
    assert_eq!(pool.install(draw), seeded);
    // A thread that seeded itself keeps its own generator, whatever others seed.
    let (expected, got) = std::thread::spawn(|| {
        set_random_seed(5);
        let expected = draw();
        set_random_seed(5);
        std::thread::spawn(|| set_random_seed(6)).join().unwrap();
        (expected, draw())
    })
    .join()
    .unwrap();
    assert_eq!(expected, got);
}
