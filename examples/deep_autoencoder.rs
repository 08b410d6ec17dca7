//! The tutorial's deep dense autoencoder on MNIST: 784 -> 147 -> 98 -> 49 -> 98 -> 147 -> 784, 100 epochs of batch 256,
//! Adam and binary cross-entropy, validated on the test set.
//!
//! `cargo run --release --example deep_autoencoder -- --epochs 5`

#[path = "shared/cli.rs"]
mod cli;
#[path = "shared/models.rs"]
mod models;
#[path = "shared/pictures.rs"]
mod pictures;
#[path = "shared/run.rs"]
mod run;

use rkeras::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> rkeras::Result<()> {
    let args = match cli::Args::parse("deep_autoencoder", 100, 256) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    rkeras::utils::set_random_seed(args.seed);

    let models::Autoencoder {
        encoder,
        decoder,
        autoencoder,
    } = models::create_deep_dense_ae()?;
    encoder.summary();
    decoder.summary();
    autoencoder.summary();
    if args.epochs == 0 {
        return Ok(());
    }

    let (x_train, x_test) = run::load_mnist(&args)?;
    autoencoder.compile("adam", "binary_crossentropy")?;
    run::train(
        "deep dense autoencoder",
        &autoencoder,
        &args,
        (&x_train, &x_train),
        (&x_test, &x_test),
    )?;

    let n = 10;
    let imgs = x_test.narrow(0, 0, n)?;
    let encoded_imgs = encoder.predict(&imgs, Some(n))?;
    println!(
        "code of x_test[0]: {:?}",
        encoded_imgs.get(0)?.flatten_all()?.to_vec1::<f32>()?
    );
    let decoded_imgs = decoder.predict(&encoded_imgs, Some(n))?;
    pictures::plot_digits(
        &args.out.join("reconstructions.png"),
        &[&imgs, &decoded_imgs],
    )?;
    run::time_predict(&encoder, &decoder, &x_test)?;
    Ok(())
}
