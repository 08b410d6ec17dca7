//! keras.io's "Simple MNIST convnet" (examples/vision/mnist_convnet.py), as written there: a
//! Sequential of Conv2D 32 and 64 (3x3, relu) each followed by 2x2 max pooling, Flatten,
//! Dropout 0.5 and Dense 10 softmax; categorical cross-entropy on one-hot labels, Adam,
//! accuracy; 15 epochs of batch 128 with `validation_split=0.1`.
//!
//! `cargo run --release --example mnist_convnet` (keras.io reports a test accuracy of 0.9922;
//! Keras 3 on this data: 0.9922, `benches/keras_reference_runs/convnet_15_epochs.txt`).

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

use std::time::Instant;

use rkeras::prelude::*;
use rkeras::utils::to_categorical;

fn main() -> rkeras::Result<()> {
    allocator::keep_freed_memory();
    let args = run::args_or_exit("mnist_convnet", 15, 128);
    rkeras::utils::set_random_seed(args.seed);

    let num_classes = 10;
    let model = Sequential::new([
        Input::new(&[28, 28, 1]).into(),
        Conv2D::new(32, (3, 3)).activation("relu").into(),
        MaxPooling2D::new((2, 2)).into(),
        Conv2D::new(64, (3, 3)).activation("relu").into(),
        MaxPooling2D::new((2, 2)).into(),
        Flatten::new().into(),
        Dropout::new(0.5).into(),
        Dense::new(num_classes).activation("softmax").into(),
    ])?;
    model.summary();
    if args.epochs == 0 {
        return Ok(());
    }

    let ((x_train, y_train), (x_test, y_test)) = run::load_mnist_with_labels(&args)?;
    let (y_train, y_test) = (
        to_categorical(&y_train, num_classes)?,
        to_categorical(&y_test, num_classes)?,
    );
    model.compile_with_metrics("adam", "categorical_crossentropy", &["accuracy"])?;
    let mut options = FitOptions::new()
        .epochs(args.epochs)
        .batch_size(args.batch_size)
        .validation_split(0.1);
    if let Some(steps) = args.steps_per_epoch {
        options = options.steps_per_epoch(steps);
    }
    let start = Instant::now();
    let history = model.fit(&x_train, &y_train, options)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "mnist convnet: {} epochs in {seconds:.1} s ({:.2} s/epoch, validation included)",
        args.epochs,
        seconds / args.epochs as f64
    );
    std::fs::create_dir_all(&args.out)?;
    history.save_json(args.out.join("history.json"))?;
    let logs = model.evaluate(&x_test, &y_test, None)?;
    println!(
        "Test loss: {:.4}\nTest accuracy: {:.4} (keras.io: 0.9922)",
        logs["loss"], logs["accuracy"]
    );
    Ok(())
}
