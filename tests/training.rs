//! Training: compile / fit / evaluate / predict on small data, with Keras's semantics.

#[path = "../examples/shared/models.rs"]
mod models;

mod common;

use std::sync::{Arc, Mutex};

use common::weights_of;
use rkeras::fit::callbacks::{Logs, TrainingControl};
use rkeras::prelude::*;

/// Small synthetic "images": smooth blobs in [0, 1], shaped (n, 28, 28, 1).
fn blobs(n: usize) -> rkeras::Result<Tensor> {
    let mut data = Vec::with_capacity(n * 784);
    for i in 0..n {
        let (cy, cx) = (8.0 + (i % 5) as f32 * 3.0, 8.0 + (i % 7) as f32 * 2.0);
        for y in 0..28 {
            for x in 0..28 {
                let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2);
                data.push((-d2 / 20.0).exp());
            }
        }
    }
    Ok(Tensor::from_vec(data, (n, 28, 28, 1), &Device::Cpu)?)
}

fn quiet() -> FitOptions<'static> {
    FitOptions::new().verbose(0)
}

#[test]
fn a_tiny_autoencoder_learns() -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(1);
    let ae = models::create_dense_ae()?;
    let x = blobs(64)?;
    ae.autoencoder.compile("adam", "binary_crossentropy")?;
    let history = ae
        .autoencoder
        .fit(&x, &x, quiet().epochs(8).batch_size(16))?;
    let loss = history.loss();
    assert_eq!(loss.len(), 8);
    assert!(loss[7] < 0.8 * loss[0], "loss did not fall: {loss:?}");
    // Training the autoencoder trained the encoder it shares.
    let codes = ae.encoder.predict(&x, None)?;
    assert_eq!(codes.dims(), &[64, 49]);
    Ok(())
}

#[test]
fn seeded_runs_repeat_exactly() -> rkeras::Result<()> {
    let run = || -> rkeras::Result<(Vec<f64>, Vec<Vec<f32>>)> {
        rkeras::utils::set_random_seed(7);
        let ae = models::create_dense_ae()?;
        let (_, denoiser) = models::create_denoising_model(&ae.autoencoder)?;
        let x = blobs(32)?;
        denoiser.compile("adam", "binary_crossentropy")?;
        let history = denoiser.fit(&x, &x, quiet().epochs(2).validation_data(&x, &x))?;
        Ok((history.val_loss().to_vec(), weights_of(&ae.autoencoder)?))
    };
    assert_eq!(run()?, run()?);
    Ok(())
}

#[test]
fn seeded_conv_runs_repeat_exactly() -> rkeras::Result<()> {
    // The tutorial's conv autoencoder: its convolutions' backward passes split each part of
    // the batch into chunks of images that the pool's threads take in a different order on
    // every run.
    let run = || -> rkeras::Result<(Vec<f64>, Vec<Vec<f32>>)> {
        rkeras::utils::set_random_seed(3);
        let ae = models::create_deep_conv_ae()?;
        let x = blobs(64)?;
        ae.autoencoder.compile("adam", "binary_crossentropy")?;
        let history = ae
            .autoencoder
            .fit(&x, &x, quiet().epochs(2).batch_size(64))?;
        Ok((history.loss().to_vec(), weights_of(&ae.autoencoder)?))
    };
    assert_eq!(run()?, run()?);
    Ok(())
}

#[test]
fn fitting_the_denoiser_trains_the_autoencoder_inside_it() -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(2);
    let ae = models::create_dense_ae()?;
    let (noiser, denoiser) = models::create_denoising_model(&ae.autoencoder)?;
    let before = weights_of(&ae.decoder)?;
    let x = blobs(32)?;
    denoiser.compile("adam", "binary_crossentropy")?;
    let history = denoiser.fit(&x, &x, quiet().epochs(1))?;
    assert_eq!(
        history.params.steps, 2,
        "the input's fixed batch of 16 is the default"
    );
    assert_ne!(weights_of(&ae.decoder)?, before);
    // The noise is fresh on every call, and clipped to [0, 1].
    let a = noiser.predict(&x, None)?;
    let b = noiser.predict(&x, None)?;
    assert_ne!(
        a.flatten_all()?.to_vec1::<f32>()?,
        b.flatten_all()?.to_vec1::<f32>()?
    );
    assert!(a
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .all(|v| (0.0..=1.0).contains(v)));

    let err = denoiser
        .fit(&x, &x, quiet().batch_size(8))
        .unwrap_err()
        .to_string();
    assert!(err.contains("16") && err.contains("batch_size 8"), "{err}");
    Ok(())
}

#[test]
fn frozen_layers_do_not_change() -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(3);
    let ae = models::create_dense_ae()?;
    ae.encoder.set_trainable(false);
    let (encoder_before, decoder_before) = (weights_of(&ae.encoder)?, weights_of(&ae.decoder)?);
    let x = blobs(32)?;
    ae.autoencoder.compile("adam", "binary_crossentropy")?;
    ae.autoencoder.fit(&x, &x, quiet().epochs(2))?;
    assert_eq!(weights_of(&ae.encoder)?, encoder_before);
    assert_ne!(weights_of(&ae.decoder)?, decoder_before);
    Ok(())
}

#[test]
fn fit_errors_are_errors_not_panics() -> rkeras::Result<()> {
    let ae = models::create_dense_ae()?;
    let x = blobs(8)?;
    let err = ae.autoencoder.fit(&x, &x, quiet()).unwrap_err().to_string();
    assert!(
        err.contains("autoencoder") && err.contains("compile"),
        "{err}"
    );
    ae.autoencoder.compile("adam", "binary_crossentropy")?;
    let err = ae
        .autoencoder
        .fit(&x, &x.narrow(0, 0, 7)?, quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("same") && err.contains("[7, 28, 28, 1]"),
        "{err}"
    );
    assert!(ae
        .autoencoder
        .compile("adamm", "binary_crossentropy")
        .is_err());
    assert!(ae
        .autoencoder
        .compile("adam", "binary_crossentropyy")
        .is_err());
    // epochs = 0 trains nothing.
    let before = weights_of(&ae.autoencoder)?;
    let history = ae.autoencoder.fit(&x, &x, quiet().epochs(0))?;
    assert!(history.loss().is_empty());
    assert_eq!(weights_of(&ae.autoencoder)?, before);
    Ok(())
}

/// A model `y = w * x` over one feature whose Lambda records every batch it sees.
fn recording_model(seen: Arc<Mutex<Vec<Vec<f32>>>>) -> rkeras::Result<Model> {
    let input = Input::new(&[1]);
    let recorded = Lambda::new(move |x: &Tensor| {
        seen.lock()
            .expect("lock")
            .push(x.flatten_all()?.to_vec1::<f32>()?);
        Ok(x.clone())
    })(input);
    let output = Dense::new(1)
        .use_bias(false)
        .kernel_initializer(Initializer::Constant { value: 0.5 })(recorded);
    Ok(Model::new(input, output)?)
}

#[test]
fn validation_split_takes_the_end_before_shuffling_and_shuffle_visits_each_row_once(
) -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let model = recording_model(seen.clone())?;
    model.compile(SGD::new().learning_rate(0.0), "mse")?;
    let x = Tensor::arange(0f32, 10.0, &Device::Cpu)?.reshape((10, 1))?;
    let history = model.fit(
        &x,
        &x,
        quiet().epochs(1).batch_size(3).validation_split(0.2),
    )?;
    let batches = seen.lock().expect("lock").clone();
    // Training: rows 0..8 in 3 batches (3, 3, 2), shuffled; validation: rows 8, 9 in order.
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 2, 2]
    );
    let mut train: Vec<f32> = batches[..3].concat();
    assert_ne!(
        train,
        (0..8).map(|v| v as f32).collect::<Vec<_>>(),
        "shuffled"
    );
    train.sort_by(f32::total_cmp);
    assert_eq!(train, (0..8).map(|v| v as f32).collect::<Vec<_>>());
    assert_eq!(batches[3], vec![8.0, 9.0]);
    // y = 0.5 x against y = x: mse = mean((0.5 x)^2) = (16 + 20.25) / 2 / ... for x = 8, 9.
    let expected = ((8.0f64 * 0.5).powi(2) + (9.0f64 * 0.5).powi(2)) / 2.0;
    assert!(
        (history.val_loss()[0] - expected).abs() < 1e-4,
        "{:?}",
        history.val_loss()
    );
    Ok(())
}

#[test]
fn the_loss_adds_activity_penalties_divided_by_the_batch_size() -> rkeras::Result<()> {
    let input = Input::new(&[2]);
    let dense = Dense::new(2)
        .use_bias(false)
        .activity_regularizer(Regularizer::l1(0.5));
    let model = Model::new(input, dense(input))?;
    let layer = dense.layer()?;
    layer.weights()[0]
        .var
        .set(&Tensor::new(&[[1f32, 0.0], [0.0, -2.0]], &Device::Cpu)?)?;
    model.compile("adam", "mse")?;
    let x = Tensor::new(&[[1f32, 1.0], [2.0, -1.0]], &Device::Cpu)?;
    let y = Tensor::zeros((2, 2), DType::F32, &Device::Cpu)?;
    // Outputs [[1, -2], [2, 2]]: mse = (1 + 4 + 4 + 4) / 4 = 3.25;
    // penalty = 0.5 * (1 + 2 + 2 + 2) / batch 2 = 1.75.
    let logs = model.evaluate(&x, &y, None)?;
    assert!((logs["loss"] - 5.0).abs() < 1e-5, "{logs:?}");
    Ok(())
}

/// Records the weights at the end of each epoch.
struct WeightRecorder(Arc<Mutex<Vec<Vec<Tensor>>>>);

impl Callback for WeightRecorder {
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut Logs,
        ctl: &mut dyn TrainingControl,
    ) -> rkeras::fit::Result<()> {
        self.0.lock().expect("lock").push(ctl.get_weights()?);
        Ok(())
    }
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(5);
    let ae = models::create_dense_ae()?;
    let x = blobs(32)?;
    ae.autoencoder.compile("adam", "binary_crossentropy")?;
    let recorded = Arc::new(Mutex::new(Vec::new()));
    // No epoch improves on the first by 10: training stops after epoch 2 (patience 1) and
    // the weights of epoch 1 come back.
    let history = ae.autoencoder.fit(
        &x,
        &x,
        quiet()
            .epochs(10)
            .callback(WeightRecorder(recorded.clone()))
            .callback(
                EarlyStopping::new()
                    .monitor("loss")
                    .min_delta(10.0)
                    .patience(1)
                    .restore_best_weights(true),
            ),
    )?;
    assert_eq!(history.loss().len(), 2);
    let first_epoch: Vec<Vec<f32>> = recorded.lock().expect("lock")[0]
        .iter()
        .map(|t| t.flatten_all().and_then(|t| t.to_vec1::<f32>()))
        .collect::<Result<_, _>>()?;
    assert_eq!(weights_of(&ae.autoencoder)?, first_epoch);
    Ok(())
}

#[test]
fn predict_and_evaluate_batch_without_compile_for_predict() -> rkeras::Result<()> {
    let ae = models::create_dense_ae()?;
    let x = blobs(70)?;
    let whole = ae.autoencoder.forward(std::slice::from_ref(&x))?.remove(0);
    let batched = ae.autoencoder.predict(&x, Some(32))?;
    let diff = (whole - &batched)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff < 1e-6);
    assert!(
        ae.autoencoder.evaluate(&x, &x, None).is_err(),
        "evaluate needs compile"
    );
    ae.autoencoder
        .compile_with_metrics("adam", "binary_crossentropy", &["mae"])?;
    let logs = ae.autoencoder.evaluate(&x, &x, Some(32))?;
    let mae = (batched - &x)?.abs()?.mean_all()?.to_scalar::<f32>()? as f64;
    assert!((logs["mae"] - mae).abs() < 1e-5, "{logs:?} vs {mae}");
    Ok(())
}

#[test]
fn history_serialises_to_json() -> rkeras::Result<()> {
    let ae = models::create_dense_ae()?;
    let x = blobs(16)?;
    ae.autoencoder.compile("adam", "binary_crossentropy")?;
    let history = ae
        .autoencoder
        .fit(&x, &x, quiet().epochs(2).validation_data(&x, &x))?;
    let json: serde_json::Value = serde_json::from_str(&history.to_json()?).expect("valid JSON");
    assert_eq!(json["history"]["loss"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        json["history"]["val_loss"].as_array().map(Vec::len),
        Some(2)
    );
    Ok(())
}
