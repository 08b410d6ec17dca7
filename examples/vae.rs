//! keras.io's variational autoencoder on MNIST (examples/generative/vae.py): a convolutional
//! encoder to a 2-D code's mean and log-variance, a sampling layer (a user-defined layer with
//! two inputs, random draws and the KL divergence added with `add_loss`), a Conv2DTranspose
//! decoder; the reconstruction loss is the cross-entropy summed over the 784 pixels (here the
//! mean cross-entropy weighted by 784), trained with Adam for 30 epochs of batch 128 on the
//! 70 000 images. Writes the 2-D latent manifold of digits as a picture, as the tutorial series
//! draws it.
//!
//! `cargo run --release --example vae -- --seed 1`: 30 epochs, final loss 151.62, and a
//! manifold where the digits change along both axes (epochs 1-5: 213.9, 172.8, 166.3, 163.3,
//! 161.5; Keras 3 on this data with seed 0, `benches/keras_vae.py`: 211.1, 188.4, 172.5, 164.2,
//! 160.6). A 2-D code can get stuck with one axis unused: with `--seed 0` the KL term kept the
//! first axis at the prior and the loss stayed at 167.5 after 30 epochs.

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
#[path = "shared/vae_models.rs"]
mod vae_models;

use std::time::Instant;

use rkeras::prelude::*;
use vae_models::{decoder, encoder, LATENT_DIM};

/// The decoded digits of a `n × n` grid of codes over [-scale, scale]², one row of the picture
/// per code row (top row: the largest second coordinate), as keras.io's `plot_latent_space`.
fn latent_manifold(decoder: &Model, n: usize, scale: f32) -> rkeras::Result<Vec<Tensor>> {
    let at = |i: usize| -scale + 2.0 * scale * i as f32 / (n - 1) as f32;
    (0..n)
        .map(|row| {
            let codes: Vec<f32> = (0..n).flat_map(|col| [at(col), at(n - 1 - row)]).collect();
            let codes = Tensor::from_vec(codes, (n, LATENT_DIM), &Device::Cpu)?;
            Ok(decoder.predict(&codes, None)?)
        })
        .collect()
}

fn main() -> rkeras::Result<()> {
    allocator::keep_freed_memory();
    let args = run::args_or_exit("vae", 30, 128);
    rkeras::utils::set_random_seed(args.seed);

    let (encoder, decoder) = (encoder()?, decoder()?);
    encoder.summary();
    decoder.summary();
    let image = Input::new(&[28, 28, 1]);
    let vae = Model::named("vae", image, decoder(encoder(image).get(2)))?;
    if args.epochs == 0 {
        return Ok(());
    }

    let ((x_train, _), (x_test, _)) = run::load_mnist_with_labels(&args)?;
    let mnist_digits = Tensor::cat(&[&x_train, &x_test], 0)?;
    // keras.io's reconstruction loss sums the pixels' cross-entropies: 784 times their mean.
    vae.compile_with(
        "adam",
        "binary_crossentropy",
        CompileOptions::new().loss_weights(&[(28 * 28) as f64]),
    )?;
    let mut options = FitOptions::new()
        .epochs(args.epochs)
        .batch_size(args.batch_size);
    if let Some(steps) = args.steps_per_epoch {
        options = options.steps_per_epoch(steps);
    }
    let start = Instant::now();
    let history = vae.fit(&mnist_digits, &mnist_digits, options)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "vae: {} epochs in {seconds:.1} s ({:.2} s/epoch); final loss {:.2} (reconstruction + KL)",
        args.epochs,
        seconds / args.epochs as f64,
        history.loss().last().copied().unwrap_or(f64::NAN)
    );
    std::fs::create_dir_all(&args.out)?;
    history.save_json(args.out.join("history.json"))?;
    let rows = latent_manifold(&decoder, 15, 1.0)?;
    let rows: Vec<&Tensor> = rows.iter().collect();
    pictures::plot_digits(&args.out.join("latent_manifold.png"), &rows)?;
    Ok(())
}
