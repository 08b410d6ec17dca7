//! The tutorial's convolutional autoencoder on MNIST: 28x28x1 -> 7x7x1 -> 28x28x1 with Conv2D, MaxPooling2D and UpSampling2D, 64 epochs of batch 256,
//! Adam and binary cross-entropy, validated on the test set.
//!
//! `cargo run --release --example conv_autoencoder -- --epochs 5`

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
    let args = run::args_or_exit("conv_autoencoder", 64, 256);
    rkeras::utils::set_random_seed(args.seed);
    let autoencoder = models::create_deep_conv_ae()?;
    run::tutorial_autoencoder("convolutional autoencoder", &args, &autoencoder)?;
    Ok(())
}
