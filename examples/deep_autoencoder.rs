//! The tutorial's deep dense autoencoder on MNIST: 784 -> 147 -> 98 -> 49 -> 98 -> 147 -> 784, 100 epochs of batch 256,
//! Adam and binary cross-entropy, validated on the test set.
//!
//! `cargo run --release --example deep_autoencoder -- --epochs 5`

#[path = "shared/allocator.rs"]
mod allocator;
#[path = "shared/cli.rs"]
mod cli;
#[path = "shared/models.rs"]
mod models;
#[path = "shared/pictures.rs"]
mod pictures;
#[path = "shared/run.rs"]
mod run;

fn main() -> rkeras::Result<()> {
    allocator::keep_freed_memory();
    let args = run::args_or_exit("deep_autoencoder", 100, 256);
    rkeras::utils::set_random_seed(args.seed);
    let autoencoder = models::create_deep_dense_ae()?;
    run::tutorial_autoencoder("deep dense autoencoder", &args, &autoencoder)?;
    Ok(())
}
