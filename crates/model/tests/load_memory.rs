//! Loading a model many times keeps memory flat: a loaded model no longer referenced frees its
//! graph and weights, and loading leaves nothing in the session.

use rkeras_layers::{Dense, Flatten, Input, Reshape};
use rkeras_model::saving::{load, save};
use rkeras_model::Model;

/// This process's resident memory in KiB, from `/proc/self/status`.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn loading_a_model_thousands_of_times_keeps_memory_flat() {
    let input = Input::new(&[28, 28, 1]);
    let code = Dense::new(49).activation("relu")(Flatten::new()(input));
    let encoder = Model::named("encoder", input, code).unwrap();
    let code_input = Input::new(&[49]);
    let image = Reshape::new(&[28, 28, 1])(Dense::new(784).activation("sigmoid")(code_input));
    let decoder = Model::named("decoder", code_input, image).unwrap();
    let outer = Input::new(&[28, 28, 1]);
    let model = Model::named("autoencoder", outer, decoder(encoder(outer))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("autoencoder.safetensors");
    save(&model, &path).unwrap();
    let load_many = |n: usize| {
        for _ in 0..n {
            let loaded = load(&path).unwrap();
            assert_eq!(loaded.count_params(), 77_665);
        }
    };
    load_many(200);
    let before = resident_kib();
    load_many(2000);
    let grown = resident_kib().saturating_sub(before);
    // Before the fix each load kept ~110 KB (its layers, weights and calls): 215 MB here.
    assert!(
        grown < 8 * 1024,
        "2000 loads grew the resident memory by {grown} KiB"
    );
}
