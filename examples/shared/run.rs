//! What every tutorial example does around its model: load MNIST, train with the tutorial's
//! settings, time the epochs, write the history and the loss curve, save the model.
#![allow(dead_code)]

use std::time::Instant;

use rkeras::datasets::mnist;
use rkeras::prelude::*;

use super::cli::Args;
use super::pictures::plot_loss;

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
