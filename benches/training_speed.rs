//! Training and predict speed of the tutorial's dense, deep and conv autoencoders on the real
//! MNIST, through `fit` and through a bare hand-written loop over the same layers and kernels
//! (eager forward, the loss, candle's `loss.backward()`, Adam), as a user would write it on
//! candle. `fit` runs its own layer-level backward pass, so a ratio below 1 means the framework
//! is faster than the hand-written candle loop, not merely close to it.
//!
//! `cargo bench --bench training_speed` (the tutorial's models), or with options after `--`:
//! `--models dense,dense-elu,dense-user,deep,conv --steps N --conv-steps N`, and `--fit-only`
//! to time `fit` alone (for profiling it). `dense-elu` and `dense-user` are the dense
//! autoencoder with an ELU code, in Dense itself and in a Lambda after it.
//! Epoch times are extrapolated from `steps` timed steps to the 235 steps of an epoch of
//! batch 256, and labelled so. See `benches/README.md` for the latest figures.

#[path = "../examples/shared/allocator.rs"]
mod allocator;
#[path = "../examples/shared/models.rs"]
mod models;

use std::time::Instant;

use rkeras::datasets::mnist;
use rkeras::fit::losses::{BinaryCrossentropy, Loss};
use rkeras::fit::optimizers::Optimizer;
use rkeras::layers::CallContext;
use rkeras::prelude::*;

const BATCH: usize = 256;
const STEPS_PER_EPOCH: usize = 235;

struct Options {
    models: Vec<String>,
    steps: usize,
    conv_steps: usize,
    fit_only: bool,
}

fn parse_options() -> Options {
    let mut options = Options {
        models: vec!["dense".into(), "deep".into(), "conv".into()],
        steps: 100,
        conv_steps: 8,
        fit_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--models" => options.models = value().split(',').map(String::from).collect(),
            "--steps" => options.steps = value().parse().unwrap_or(options.steps),
            "--conv-steps" => options.conv_steps = value().parse().unwrap_or(options.conv_steps),
            "--fit-only" => options.fit_only = true,
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

fn build(name: &str) -> rkeras::Result<models::Autoencoder> {
    match name {
        "dense" => models::create_dense_ae(),
        // The dense autoencoder with an ELU code (Dense's own backward, composed derivative).
        "dense-elu" => dense_ae_with_code(|x| Dense::new(49).activation("elu")(x)),
        // ... and with the ELU in a layer without a hand-written backward (a Lambda): training
        // differentiates that layer's call by candle's autograd, on the same path.
        "dense-user" => {
            dense_ae_with_code(|x| Lambda::new(|z: &Tensor| Ok(z.elu(1.0)?))(Dense::new(49)(x)))
        }
        "deep" => models::create_deep_dense_ae(),
        _ => models::create_deep_conv_ae(),
    }
}

/// The tutorial's dense autoencoder with the code layer `code` makes from the flat image.
fn dense_ae_with_code(
    code: impl Fn(SymbolicTensor) -> SymbolicTensor,
) -> rkeras::Result<models::Autoencoder> {
    let input_img = Input::new(&[28, 28, 1]);
    let encoded = code(Flatten::new()(input_img));
    let input_encoded = Input::new(&[49]);
    let decoded = Reshape::new(&[28, 28, 1])(Dense::new(784).activation("sigmoid")(input_encoded));
    let encoder = Model::named("encoder", input_img, encoded)?;
    let decoder = Model::named("decoder", input_encoded, decoded)?;
    let autoencoder = Model::named("autoencoder", input_img, decoder(encoder(input_img)))?;
    Ok(models::Autoencoder {
        encoder,
        decoder,
        autoencoder,
    })
}

/// Seconds per step of `fit` over `steps` steps (after one warm-up step).
fn time_fit(model: &Model, x: &Tensor, steps: usize) -> rkeras::Result<f64> {
    model.compile("adam", "binary_crossentropy")?;
    let options = || FitOptions::new().verbose(0).batch_size(BATCH);
    model.fit(x, x, options().steps_per_epoch(1))?;
    let start = Instant::now();
    model.fit(x, x, options().steps_per_epoch(steps))?;
    Ok(start.elapsed().as_secs_f64() / steps as f64)
}

/// Seconds per step of a hand-written candle loop over the same layers and kernels.
fn time_bare_loop(model: &Model, x: &Tensor, steps: usize) -> rkeras::Result<f64> {
    let loss_fn = BinaryCrossentropy::new();
    let mut adam = rkeras::fit::optimizers::Adam::new();
    let vars: Vec<_> = model
        .trainable_weights()
        .into_iter()
        .map(|w| w.var)
        .collect();
    let rows = x.dims()[0];
    let mut step = |i: usize| -> rkeras::Result<()> {
        let start = (i * BATCH) % (rows - BATCH);
        let xb = x.narrow(0, start, BATCH)?;
        let y = model
            .forward_t(std::slice::from_ref(&xb), &mut CallContext::new(true))?
            .remove(0);
        let loss = loss_fn.compute(&xb, &y)?;
        let grads = loss.backward()?;
        let pairs: Vec<_> = vars
            .iter()
            .filter_map(|v| grads.get(v.as_tensor()).map(|g| (v, g)))
            .collect();
        adam.apply_gradients(&pairs)?;
        loss.to_scalar::<f32>()?;
        Ok(())
    };
    step(0)?;
    let start = Instant::now();
    for i in 1..=steps {
        step(i)?;
    }
    Ok(start.elapsed().as_secs_f64() / steps as f64)
}

/// Seconds for `encoder.predict` then `decoder.predict` on `x` (batch 32, Keras's default).
fn time_predict(ae: &models::Autoencoder, x: &Tensor) -> rkeras::Result<f64> {
    let start = Instant::now();
    let codes = ae.encoder.predict(x, None)?;
    ae.decoder.predict(&codes, None)?;
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> rkeras::Result<()> {
    allocator::keep_freed_memory();
    let options = parse_options();
    let ((x_train, _), (x_test, _)) = mnist::load_data()?;
    let (x_train, x_test) = (
        mnist::to_unit_images(&x_train)?,
        mnist::to_unit_images(&x_test)?,
    );
    println!(
        "{:<10} {:>6} {:>12} {:>12} {:>10} {:>16} {:>18}",
        "model",
        "steps",
        "fit ms/step",
        "bare ms/step",
        "fit/bare",
        "epoch s (extrap.)",
        "predict 10k (s)"
    );
    for name in &options.models {
        let steps = if name == "conv" {
            options.conv_steps
        } else {
            options.steps
        };
        rkeras::utils::set_random_seed(0);
        let through_fit = build(name)?;
        let fit = time_fit(&through_fit.autoencoder, &x_train, steps)?;
        if options.fit_only {
            println!("{name:<10} {steps:>6} {:>12.2}", fit * 1e3);
            continue;
        }
        rkeras::utils::set_random_seed(0);
        let bare = time_bare_loop(&build(name)?.autoencoder, &x_train, steps)?;
        let predict = time_predict(&through_fit, &x_test)?;
        println!(
            "{:<10} {:>6} {:>12.2} {:>12.2} {:>10.3} {:>16.2} {:>18.3}",
            name,
            steps,
            fit * 1e3,
            bare * 1e3,
            fit / bare,
            fit * STEPS_PER_EPOCH as f64,
            predict
        );
    }
    Ok(())
}
