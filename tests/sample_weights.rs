//! Keras's `sample_weight` and `class_weight`: each sample's loss and gradient weighted, the
//! batch's loss divided by its sample count (`"sum_over_batch_size"`), the weights carried
//! through shuffling, the threads a batch is split over and `validation_split`.

mod common;

use common::weights_of;
use rkeras::prelude::*;

fn quiet() -> FitOptions<'static> {
    FitOptions::new().verbose(0)
}

/// `rows` samples of 3 features, deterministic.
fn features(rows: usize) -> rkeras::Result<Tensor> {
    Ok(Tensor::arange(0f32, (rows * 3) as f32, &Device::Cpu)?
        .affine(0.37, -1.0)?
        .sin()?
        .reshape((rows, 3))?)
}

fn vector(values: &[f32]) -> rkeras::Result<Tensor> {
    Ok(Tensor::new(values, &Device::Cpu)?)
}

/// A model `3 -> units` with `activation`, its weights drawn from `seed`, compiled with SGD.
fn model(seed: u64, units: usize, activation: &str, loss: &str) -> rkeras::Result<Model> {
    rkeras::utils::set_random_seed(seed);
    let input = Input::new(&[3]);
    let output = Dense::new(units).activation(activation)(input);
    let model = Model::new(input, output)?;
    model.compile(SGD::new().learning_rate(0.5), loss)?;
    Ok(model)
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], tolerance: f32) {
    for (a, b) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((a - b).abs() <= tolerance, "{a:?} vs {b:?}");
    }
}

#[test]
fn class_weight_trains_as_the_matching_sample_weight() -> rkeras::Result<()> {
    // A sigmoid unit with binary cross-entropy: the fused logits head.
    let x = features(8)?;
    let y = Tensor::new(
        &[[0f32], [1.], [1.], [0.], [1.], [0.], [0.], [1.]],
        &Device::Cpu,
    )?;
    let by_class = model(5, 1, "sigmoid", "binary_crossentropy")?;
    let options = quiet().epochs(3).batch_size(3);
    by_class.fit(&x, &y, options.class_weight([(0, 1.0), (1, 3.0)]))?;
    let by_sample = model(5, 1, "sigmoid", "binary_crossentropy")?;
    let w = vector(&[1., 3., 3., 1., 3., 1., 1., 3.])?;
    by_sample.fit(&x, &y, quiet().epochs(3).batch_size(3).sample_weight(&w))?;
    let unweighted = model(5, 1, "sigmoid", "binary_crossentropy")?;
    unweighted.fit(&x, &y, quiet().epochs(3).batch_size(3))?;
    assert_eq!(weights_of(&by_class)?, weights_of(&by_sample)?);
    assert_ne!(weights_of(&by_class)?, weights_of(&unweighted)?);
    Ok(())
}

#[test]
fn a_zero_weight_removes_a_sample_and_the_mean_divides_by_the_sample_count() -> rkeras::Result<()> {
    // Fitting [a, b] with weights [1, 0] in batches of 2 steps on (1·l_a + 0·l_b) / 2 = 0.5·l_a:
    // fitting [a] alone with weight 0.5 in batches of 1 takes the same steps. (Dividing by the
    // weights' sum instead would step on l_a.)
    let x = features(8)?;
    let y = features(8)?.narrow(1, 0, 2)?.affine(2.0, 0.5)?;
    let pairs = model(7, 2, "linear", "mse")?;
    let w = vector(&[1., 0., 1., 0., 1., 0., 1., 0.])?;
    pairs.fit(
        &x,
        &y,
        quiet()
            .epochs(2)
            .batch_size(2)
            .shuffle(false)
            .sample_weight(&w),
    )?;
    let kept = Tensor::new(&[0u32, 2, 4, 6], &Device::Cpu)?;
    let (xa, ya) = (x.index_select(&kept, 0)?, y.index_select(&kept, 0)?);
    let alone = model(7, 2, "linear", "mse")?;
    let half = vector(&[0.5; 4])?;
    alone.fit(
        &xa,
        &ya,
        quiet()
            .epochs(2)
            .batch_size(1)
            .shuffle(false)
            .sample_weight(&half),
    )?;
    assert_close(&weights_of(&pairs)?, &weights_of(&alone)?, 1e-6);
    // Weights [2, 0]: (2·l_a + 0·l_b) / 2 = l_a, the unweighted steps on [a] alone.
    let doubled = model(7, 2, "linear", "mse")?;
    let w = w.affine(2.0, 0.0)?;
    let options = quiet().epochs(2).batch_size(2).shuffle(false);
    doubled.fit(&x, &y, options.sample_weight(&w))?;
    let plain = model(7, 2, "linear", "mse")?;
    plain.fit(&xa, &ya, quiet().epochs(2).batch_size(1).shuffle(false))?;
    assert_close(&weights_of(&doubled)?, &weights_of(&plain)?, 1e-6);
    Ok(())
}

#[test]
fn zero_weights_hold_in_a_batch_split_over_threads() -> rkeras::Result<()> {
    // A softmax with sparse cross-entropy (the fused head), 64 rows: the step runs in parts on
    // several threads. The last 32 rows, weighted 0, have other labels; the first 32 weigh 2,
    // so the batch's loss is the unweighted loss of the first 32 alone.
    let x = features(64)?;
    let labels: Vec<f32> = (0..64).map(|i| ((i * 7) % 3) as f32).collect();
    let y = Tensor::from_vec(labels, 64, &Device::Cpu)?;
    let weights: Vec<f32> = (0..64).map(|i| if i < 32 { 2.0 } else { 0.0 }).collect();
    let w = Tensor::from_vec(weights, 64, &Device::Cpu)?;
    let loss = "sparse_categorical_crossentropy";
    let whole = model(9, 3, "softmax", loss)?;
    let options = quiet().epochs(3).batch_size(64).shuffle(false);
    whole.fit(&x, &y, options.sample_weight(&w))?;
    let first = model(9, 3, "softmax", loss)?;
    let options = quiet().epochs(3).batch_size(32).shuffle(false);
    first.fit(&x.narrow(0, 0, 32)?, &y.narrow(0, 0, 32)?, options)?;
    assert_close(&weights_of(&whole)?, &weights_of(&first)?, 1e-5);
    Ok(())
}

#[test]
fn weights_travel_with_their_samples_when_shuffled() -> rkeras::Result<()> {
    // Every other target is 1000 with weight 0: a weight that left its sample would put an
    // error of about 10⁶ into the loss.
    let x = features(16)?;
    let y: Vec<f32> = (0..16)
        .map(|i| if i % 2 == 0 { 0.5 } else { 1000.0 })
        .collect();
    let y = Tensor::from_vec(y, (16, 1), &Device::Cpu)?;
    let w: Vec<f32> = (0..16)
        .map(|i| if i % 2 == 0 { 1.0 } else { 0.0 })
        .collect();
    let w = Tensor::from_vec(w, 16, &Device::Cpu)?;
    let m = model(11, 1, "linear", "mse")?;
    let history = m.fit(&x, &y, quiet().epochs(4).batch_size(4).sample_weight(&w))?;
    assert!(
        history.loss().iter().all(|&l| l < 10.0),
        "{:?}",
        history.loss()
    );
    Ok(())
}

#[test]
fn validation_split_keeps_the_last_weights_for_val_loss() -> rkeras::Result<()> {
    let x = features(10)?;
    let y = features(10)?.narrow(1, 0, 1)?.affine(-1.0, 0.2)?;
    let w = vector(&[1., 1., 1., 1., 1., 1., 1., 1., 0., 3.])?;
    let m = model(13, 1, "linear", "mse")?;
    m.compile(SGD::new().learning_rate(0.0), "mse")?;
    let history = m.fit(&x, &y, quiet().validation_split(0.2).sample_weight(&w))?;
    let (vx, vy, vw) = (x.narrow(0, 8, 2)?, y.narrow(0, 8, 2)?, w.narrow(0, 8, 2)?);
    let expected = m.evaluate_with(&vx, &vy, EvaluateOptions::new().sample_weight(&vw))?["loss"];
    let val_loss = history.history["val_loss"][0];
    assert!(
        (val_loss - expected).abs() < 1e-6,
        "{val_loss} vs {expected}"
    );
    let unweighted = m.evaluate(&vx, &vy, None)?["loss"];
    assert!(
        (val_loss - unweighted).abs() > 1e-3,
        "the weights were dropped"
    );
    // Keras's validation_data=(x_val, y_val, val_sample_weights).
    let options = quiet()
        .validation_data(&vx, &vy)
        .validation_sample_weight(&vw);
    let history = m.fit(&x, &y, options)?;
    let val_loss = history.history["val_loss"][0];
    assert!(
        (val_loss - expected).abs() < 1e-6,
        "{val_loss} vs {expected}"
    );
    Ok(())
}

#[test]
fn evaluate_weights_the_loss_as_keras_and_not_the_metrics() -> rkeras::Result<()> {
    let x = features(5)?;
    let y = Tensor::new(&[[1f32], [0.], [1.], [1.], [0.]], &Device::Cpu)?;
    let w = [2f32, 0.5, 0., 1., 1.];
    let m = model(17, 1, "sigmoid", "binary_crossentropy")?;
    m.compile_with_metrics(SGD::new(), "binary_crossentropy", &["mae"])?;
    let p: Vec<f32> = m.predict(&x, None)?.flatten_all()?.to_vec1()?;
    let t: Vec<f32> = y.flatten_all()?.to_vec1()?;
    // Keras: sum(w_i · bce_i) / 5.
    let expected: f64 = (0..5)
        .map(|i| {
            let (p, t) = (p[i] as f64, t[i] as f64);
            w[i] as f64 * -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / 5.0;
    let w = vector(&w)?;
    let logs = m.evaluate_with(
        &x,
        &y,
        EvaluateOptions::new().batch_size(2).sample_weight(&w),
    )?;
    assert!(
        (logs["loss"] - expected).abs() < 1e-5,
        "{} vs {expected}",
        logs["loss"]
    );
    let plain = m.evaluate(&x, &y, None)?;
    assert_eq!(
        logs["mae"], plain["mae"],
        "metrics= are not weighted in Keras 3"
    );
    let one_batch = m.test_on_batch_with(&x, &y, &w)?;
    assert!((one_batch["loss"] - expected).abs() < 1e-5);
    Ok(())
}

#[test]
fn train_on_batch_takes_class_weight_as_sample_weight() -> rkeras::Result<()> {
    let x = features(6)?;
    let y = Tensor::new(&[2u32, 0, 1, 1, 2, 0], &Device::Cpu)?;
    let loss = "sparse_categorical_crossentropy";
    let by_class = model(19, 3, "softmax", loss)?;
    let classes = BatchOptions::new().class_weight([(2, 4.0), (0, 0.25)]);
    by_class.train_on_batch_with(&x, &y, classes)?;
    let by_sample = model(19, 3, "softmax", loss)?;
    let w = vector(&[4., 0.25, 1., 1., 4., 0.25])?;
    by_sample.train_on_batch_with(&x, &y, BatchOptions::new().sample_weight(&w))?;
    assert_eq!(weights_of(&by_class)?, weights_of(&by_sample)?);
    Ok(())
}

#[test]
fn bad_weights_are_errors_before_the_first_step() -> rkeras::Result<()> {
    let x = features(4)?;
    let y = Tensor::new(&[[1f32], [0.], [1.], [1.]], &Device::Cpu)?;
    let m = model(23, 1, "sigmoid", "binary_crossentropy")?;
    let before = weights_of(&m)?;
    let fails = |options: FitOptions<'static>, words: &[&str]| {
        let message = m.fit(&x, &y, options).err().map(|e| e.to_string());
        let message = message.unwrap_or_default();
        assert!(words.iter().all(|w| message.contains(w)), "{message}");
    };
    fails(
        quiet().sample_weight(&vector(&[1., 2.])?),
        &["sample_weight", "4"],
    );
    let both = quiet()
        .sample_weight(&vector(&[1.; 4])?)
        .class_weight([(0, 2.0)]);
    fails(both, &["class_weight", "sample_weight"]);
    fails(
        quiet().class_weight([(3, 2.0)]),
        &["class_weight", "class 3"],
    );
    let lone = quiet().validation_sample_weight(&vector(&[1.; 4])?);
    fails(lone, &["validation_sample_weight", "validation_data"]);
    assert_eq!(m.optimizer_iterations(), 0);
    assert_eq!(weights_of(&m)?, before);
    // class_weight on a model with two outputs.
    let input = Input::new(&[3]);
    let a = Dense::new(1).activation("sigmoid")(input);
    let b = Dense::new(1).activation("sigmoid")(input);
    let two = Model::new(input, [a, b])?;
    two.compile("sgd", "binary_crossentropy")?;
    let message = two
        .fit(&x, [&y, &y], quiet().class_weight([(1, 2.0)]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("single output"), "{message}");
    let short = vector(&[1.; 3])?;
    assert!(m
        .evaluate_with(&x, &y, EvaluateOptions::new().sample_weight(&short))
        .is_err());
    assert!(m.test_on_batch_with(&x, &y, &short).is_err());
    Ok(())
}
