//! What every tutorial example does around its model: load MNIST, train with the tutorial's
//! settings, time the epochs, write the history and the loss curve, save the model.
#![allow(dead_code)]

use std::time::Instant;

use rkeras::datasets::mnist;
use rkeras::prelude::*;

use super::cli::Args;
use super::models::Autoencoder;
use super::pictures::{plot_digits, plot_loss};

/// The options of `example`, with the tutorial's defaults; prints the usage and exits on a
/// bad option.
pub fn args_or_exit(example: &str, epochs: usize, batch_size: usize) -> Args {
    match Args::parse(example, epochs, batch_size) {
        Ok(args) => {
            rkeras::utils::set_default_device(args.device.clone());
            args
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}

/// The tutorial's steps for one autoencoder: print the three summaries, train on MNIST
/// (`x -> x`, validated on the test set), print the code of `x_test[0]`, plot ten digits and
/// their reconstructions, time predict. Returns the test images, or `None` with `--epochs 0`.
pub fn tutorial_autoencoder(
    title: &str,
    args: &Args,
    ae: &Autoencoder,
) -> rkeras::Result<Option<Tensor>> {
    let Autoencoder {
        encoder,
        decoder,
        autoencoder,
    } = ae;
    encoder.summary();
    decoder.summary();
    autoencoder.summary();
    if args.epochs == 0 {
        return Ok(None);
    }

    let (x_train, x_test) = load_mnist(args)?;
    autoencoder.compile("adam", "binary_crossentropy")?;
    train(
        title,
        autoencoder,
        args,
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
    plot_digits(
        &args.out.join("reconstructions.png"),
        &[&imgs, &decoded_imgs],
    )?;
    time_predict(encoder, decoder, &x_test)?;
    Ok(Some(x_test))
}

/// The tutorial's data: `(x_train, x_test)` as f32 `(N, 28, 28, 1)` in [0, 1].
pub fn load_mnist(args: &Args) -> rkeras::Result<(Tensor, Tensor)> {
    let ((x_train, _), (x_test, _)) = match &args.data {
        Some(dir) => mnist::load_data_from(dir)?,
        None => mnist::load_data()?,
    };
    Ok((
        mnist::to_unit_images(&x_train)?,
        mnist::to_unit_images(&x_test)?,
    ))
}

/// MNIST with its labels: `((x_train, y_train), (x_test, y_test))`, the images f32
/// `(N, 28, 28, 1)` in [0, 1], the labels u8 `(N)`.
pub fn load_mnist_with_labels(args: &Args) -> rkeras::Result<((Tensor, Tensor), (Tensor, Tensor))> {
    let ((x_train, y_train), (x_test, y_test)) = match &args.data {
        Some(dir) => mnist::load_data_from(dir)?,
        None => mnist::load_data()?,
    };
    Ok((
        (mnist::to_unit_images(&x_train)?, y_train),
        (mnist::to_unit_images(&x_test)?, y_test),
    ))
}

/// Trains `model` on `x -> y` with `validation_data=(x_val, y_val)`, prints seconds per epoch,
/// writes the history JSON and the loss curve, and saves the model when asked.
pub fn train(
    name: &str,
    model: &Model,
    args: &Args,
    (x, y): (&Tensor, &Tensor),
    (x_val, y_val): (&Tensor, &Tensor),
) -> rkeras::Result<History> {
    std::fs::create_dir_all(&args.out)?;
    let mut options = FitOptions::new()
        .epochs(args.epochs)
        .batch_size(args.batch_size)
        .shuffle(true)
        .validation_data(x_val, y_val);
    if let Some(steps) = args.steps_per_epoch {
        options = options.steps_per_epoch(steps);
    }
    println!("training on {:?}", model.device().location());
    let start = Instant::now();
    let history = model.fit(x, y, options)?;
    let seconds = start.elapsed().as_secs_f64();
    if args.epochs > 0 {
        println!(
            "{name}: {} epochs in {seconds:.2} s ({:.3} s/epoch, validation included); final loss {:.4}, val_loss {:.4}",
            args.epochs,
            seconds / args.epochs as f64,
            history.loss().last().copied().unwrap_or(f64::NAN),
            history.val_loss().last().copied().unwrap_or(f64::NAN),
        );
    }
    let history_path = args
        .history
        .clone()
        .unwrap_or_else(|| args.out.join("history.json"));
    history.save_json(&history_path)?;
    println!("wrote {}", history_path.display());
    plot_loss(&args.out.join("loss.png"), name, &history)?;
    if let Some(path) = &args.save {
        model.save(path)?;
        println!("saved {}", path.display());
    }
    Ok(history)
}

/// Prints how long `predict` takes on `x` through `encoder` then `decoder`.
pub fn time_predict(encoder: &Model, decoder: &Model, x: &Tensor) -> rkeras::Result<()> {
    let start = Instant::now();
    let codes = encoder.predict(x, None)?;
    decoder.predict(&codes, None)?;
    println!(
        "encoder+decoder predict on {} images: {:.3} s",
        x.dims()[0],
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
