//! Epoch times of everyday MNIST classifiers through `fit`, beside Keras's on the same machine
//! (`benches/keras_everyday_speed.py`, the same models, settings and data):
//!
//! - `mlp`: Flatten, Dense(128, relu), Dense(10, softmax); sparse categorical cross-entropy,
//!   Adam, accuracy; batch 32; validation on the 10 000 test images.
//! - `convnet`: keras.io's "Simple MNIST convnet" (Sequential: Conv2D 32, MaxPooling2D,
//!   Conv2D 64, MaxPooling2D, Flatten, Dropout 0.5, Dense softmax); categorical cross-entropy,
//!   Adam, accuracy; batch 128; `validation_split` 0.1.
//! - `lstm`: LSTM(128) reading each image a row at a time, Dense(10, softmax); sparse categorical
//!   cross-entropy, Adam, accuracy; batch 128; validation on the test images.
//!
//! What BatchNormalization and Dropout cost, as the difference between two variants' epochs:
//! `mlp-bn` (the MLP with a BatchNormalization after its hidden layer), `convnet-no-dropout`
//! (the convnet without its Dropout) and `convnet-bn` (the convnet with a BatchNormalization
//! after each pooling).
//!
//! `cargo bench --bench everyday_speed -- --models mlp,convnet,lstm --epochs 1`: one line per
//! epoch (seconds, validation included, and the logs), then the test accuracy. Run it right after
//! the Keras script, model by model, and compare the ratio: this machine's speed moves by more
//! than either side's does.

#[path = "../examples/shared/allocator.rs"]
mod allocator;

use std::time::Instant;

use rkeras::datasets::mnist;
use rkeras::prelude::*;

struct Options {
    models: Vec<String>,
    epochs: usize,
    /// A batch size for every model instead of its own (`--batch-size`).
    batch_size: Option<usize>,
}

fn parse_options() -> Options {
    let mut options = Options {
        models: vec!["mlp".into(), "convnet".into(), "lstm".into()],
        epochs: 1,
        batch_size: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--models" => options.models = value().split(',').map(String::from).collect(),
            "--epochs" => options.epochs = value().parse().unwrap_or(options.epochs),
            "--batch-size" => options.batch_size = value().parse().ok(),
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

/// The MNIST images as f32 in [0, 1], `(N, 28, 28, 1)`, and their u8 labels.
struct Data {
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
}

fn load() -> rkeras::Result<Data> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    Ok(Data {
        x_train: mnist::to_unit_images(&x_train)?,
        y_train,
        x_test: mnist::to_unit_images(&x_test)?,
        y_test,
    })
}

/// The MLP classifier on (28, 28) images, with a BatchNormalization after its hidden layer when
/// `batch_norm`.
fn mlp(batch_norm: bool) -> rkeras::Result<Model> {
    let input = Input::new(&[28, 28]);
    let mut hidden = Dense::new(128).activation("relu")(Flatten::new()(input));
    if batch_norm {
        hidden = BatchNormalization::new()(hidden);
    }
    Ok(Model::new(
        input,
        Dense::new(10).activation("softmax")(hidden),
    )?)
}

/// keras.io's "Simple MNIST convnet", without its Dropout unless `dropout`, and with a
/// BatchNormalization after each pooling when `batch_norm`.
fn convnet(dropout: bool, batch_norm: bool) -> rkeras::Result<Sequential> {
    let mut model = Sequential::new([Input::new(&[28, 28, 1]).into()])?;
    for filters in [32, 64] {
        model.add(Conv2D::new(filters, (3, 3)).activation("relu"))?;
        model.add(MaxPooling2D::new((2, 2)))?;
        if batch_norm {
            model.add(BatchNormalization::new())?;
        }
    }
    model.add(Flatten::new())?;
    if dropout {
        model.add(Dropout::new(0.5))?;
    }
    model.add(Dense::new(10).activation("softmax"))?;
    Ok(model)
}

/// LSTM(128) reading each image a row at a time.
fn lstm() -> rkeras::Result<Model> {
    let input = Input::new(&[28, 28]);
    Ok(Model::new(
        input,
        Dense::new(10).activation("softmax")(LSTM::new(128)(input)),
    )?)
}

/// Trains `model` for `epochs` on `x -> y`, printing each epoch's seconds and logs, then the
/// test accuracy.
fn run(
    name: &str,
    model: &Model,
    (x, y): (&Tensor, &Tensor),
    options: FitOptions<'_>,
    (x_test, y_test): (&Tensor, &Tensor),
) -> rkeras::Result<()> {
    let start = Instant::now();
    let history = model.fit(x, y, options)?;
    let seconds = start.elapsed().as_secs_f64();
    let epochs = history.epoch.len().max(1);
    println!(
        "{name}: {epochs} epoch(s) in {seconds:.2} s ({:.2} s/epoch, validation included)",
        seconds / epochs as f64
    );
    for (key, values) in &history.history {
        println!("  {key}: {values:.4?}");
    }
    let logs = model.evaluate(x_test, y_test, None)?;
    println!(
        "  test loss {:.4}, test accuracy {:.4}",
        logs["loss"], logs["accuracy"]
    );
    Ok(())
}

fn main() -> rkeras::Result<()> {
    allocator::keep_freed_memory();
    let options = parse_options();
    let data = load()?;
    for name in &options.models {
        rkeras::utils::set_random_seed(0);
        match name.as_str() {
            "mlp" | "mlp-bn" => {
                let model = mlp(name == "mlp-bn")?;
                model.compile_with_metrics(
                    "adam",
                    "sparse_categorical_crossentropy",
                    &["accuracy"],
                )?;
                let (x, x_test) = (data.x_train.squeeze(3)?, data.x_test.squeeze(3)?);
                let fit = FitOptions::new()
                    .epochs(options.epochs)
                    .batch_size(options.batch_size.unwrap_or(32))
                    .validation_data(&x_test, &data.y_test)
                    .verbose(2);
                run(
                    name,
                    &model,
                    (&x, &data.y_train),
                    fit,
                    (&x_test, &data.y_test),
                )?;
            }
            "convnet" | "convnet-no-dropout" | "convnet-bn" => {
                let model = convnet(name != "convnet-no-dropout", name == "convnet-bn")?;
                model.compile_with_metrics("adam", "categorical_crossentropy", &["accuracy"])?;
                let y = rkeras::utils::to_categorical(&data.y_train, 10)?;
                let y_test = rkeras::utils::to_categorical(&data.y_test, 10)?;
                let fit = FitOptions::new()
                    .epochs(options.epochs)
                    .batch_size(options.batch_size.unwrap_or(128))
                    .validation_split(0.1)
                    .verbose(2);
                run(
                    name,
                    &model,
                    (&data.x_train, &y),
                    fit,
                    (&data.x_test, &y_test),
                )?;
            }
            "lstm" => {
                let model = lstm()?;
                model.compile_with_metrics(
                    "adam",
                    "sparse_categorical_crossentropy",
                    &["accuracy"],
                )?;
                let (x, x_test) = (data.x_train.squeeze(3)?, data.x_test.squeeze(3)?);
                let fit = FitOptions::new()
                    .epochs(options.epochs)
                    .batch_size(options.batch_size.unwrap_or(128))
                    .validation_data(&x_test, &data.y_test)
                    .verbose(2);
                run(
                    name,
                    &model,
                    (&x, &data.y_train),
                    fit,
                    (&x_test, &data.y_test),
                )?;
            }
            other => eprintln!(
                "unknown model '{other}' (mlp, mlp-bn, convnet, convnet-no-dropout, convnet-bn, lstm)"
            ),
        }
    }
    Ok(())
}
