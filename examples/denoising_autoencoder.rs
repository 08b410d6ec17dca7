//! The tutorial's denoising autoencoder: a noiser (a Lambda adding N(0.5, 0.5) noise, clipped
//! to [0, 1]) in front of the dense autoencoder, trained on batches of 16 to give back the
//! clean digit. Training the denoiser trains the dense autoencoder inside it, so its encoder
//! and decoder then clean noised digits on their own.
//!
//! The tutorial trains 200 epochs; the default here is 1 (3750 steps), which already
//! denoises visibly. `cargo run --release --example denoising_autoencoder -- --epochs 5`

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

use rkeras::prelude::*;

fn main() -> rkeras::Result<()> {
    allocator::keep_freed_memory();
    let batch_size = 16;
    let args = run::args_or_exit("denoising_autoencoder", 1, batch_size);
    rkeras::utils::set_random_seed(args.seed);

    let models::Autoencoder {
        encoder,
        decoder,
        autoencoder,
    } = models::create_dense_ae()?;
    let (noiser, denoiser_model) = models::create_denoising_model(&autoencoder)?;
    noiser.summary();
    denoiser_model.summary();
    if args.epochs == 0 {
        return Ok(());
    }

    let (x_train, x_test) = run::load_mnist(&args)?;
    denoiser_model.compile("adam", "binary_crossentropy")?;
    run::train(
        "denoiser",
        &denoiser_model,
        &args,
        (&x_train, &x_train),
        (&x_test, &x_test),
    )?;

    let n = 10;
    let imgs = x_test.narrow(0, 0, batch_size)?;
    let noised_imgs = noiser.predict(&imgs, Some(batch_size))?;
    let encoded_imgs = encoder.predict(&noised_imgs.narrow(0, 0, n)?, Some(n))?;
    println!(
        "code of the noised x_test[0]: {:?}",
        encoded_imgs.get(0)?.to_vec1::<f32>()?
    );
    let decoded_imgs = decoder.predict(&encoded_imgs, Some(n))?;
    pictures::plot_digits(
        &args.out.join("denoised.png"),
        &[
            &imgs.narrow(0, 0, n)?,
            &noised_imgs.narrow(0, 0, n)?,
            &decoded_imgs,
        ],
    )?;
    Ok(())
}
