//! An MLP classifier on MNIST, as a Keras user writes it in their first hour: Flatten,
//! Dense(128, relu), Dense(10, softmax), sparse categorical cross-entropy, Adam, accuracy;
//! 3 epochs of batch 32 (Keras's default), validated on the test set.
//!
//! `cargo run --release --example mnist_mlp` (Keras 3 on the same data: test accuracy 0.9732,
//! `benches/keras_reference_runs/mlp_3_epochs.txt`).

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
    let args = run::args_or_exit("mnist_mlp", 3, 32);
    rkeras::utils::set_random_seed(args.seed);

    let input = Input::new(&[28, 28]);
    let hidden = Dense::new(128).activation("relu")(Flatten::new()(input));
    let model = Model::new(input, Dense::new(10).activation("softmax")(hidden))?;
    model.summary();
    if args.epochs == 0 {
        return Ok(());
    }

    let ((x_train, y_train), (x_test, y_test)) = run::load_mnist_with_labels(&args)?;
    let (x_train, x_test) = (x_train.squeeze(3)?, x_test.squeeze(3)?);
    model.compile_with_metrics("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    run::train(
        "mnist mlp",
        &model,
        &args,
        (&x_train, &y_train),
        (&x_test, &y_test),
    )?;
    let logs = model.evaluate(&x_test, &y_test, None)?;
    println!(
        "test loss {:.4}, test accuracy {:.4} (Keras 3: 0.0856, 0.9732)",
        logs["loss"], logs["accuracy"]
    );
    Ok(())
}
