//! The tutorial's dense autoencoder on MNIST: 784 -> 49 -> 784, 50 epochs of batch 256,
//! Adam and binary cross-entropy, validated on the test set.
//!
//! `cargo run --release --example dense_autoencoder -- --epochs 5`

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
    let args = run::args_or_exit("dense_autoencoder", 50, 256);
    rkeras::utils::set_random_seed(args.seed);
    let autoencoder = models::create_dense_ae()?;
    run::tutorial_autoencoder("dense autoencoder", &args, &autoencoder)?;
    Ok(())
}
