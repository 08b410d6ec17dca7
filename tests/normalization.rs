//! TensorFlow's "Basic regression" pattern: a `Normalization` adapted on the training
//! features, first in a `Sequential` regression model; its statistics carried into the model,
//! left alone by training, and kept by saving.

use rkeras::layers::preprocessing::normalization::NormalizationLayer;
use rkeras::layers::Weight;
use rkeras::prelude::*;

/// 64 rows of 3 features on very different scales, and a target linear in them.
fn tabular() -> rkeras::Result<(Tensor, Tensor, Vec<[f64; 3]>)> {
    let rows: Vec<[f64; 3]> = (0..64)
        .map(|i| {
            let i = i as f64;
            [
                1000.0 + 37.0 * (i * 7.0 % 13.0),
                0.01 * (i % 5.0),
                -3.0 + (i * 3.0 % 11.0),
            ]
        })
        .collect();
    let features: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let target: Vec<f32> = rows
        .iter()
        .map(|r| (0.01 * r[0] + 100.0 * r[1] - r[2]) as f32)
        .collect();
    Ok((
        Tensor::from_vec(features, (64, 3), &Device::Cpu)?,
        Tensor::from_vec(target, (64, 1), &Device::Cpu)?,
        rows,
    ))
}

/// The mean and population variance of each column, computed here independently.
fn column_statistics(rows: &[[f64; 3]]) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..3)
        .map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n)
        .collect();
    let variance = (0..3)
        .map(|c| rows.iter().map(|r| (r[c] - mean[c]).powi(2)).sum::<f64>() / n)
        .collect();
    (mean, variance)
}

fn statistics_of(model: &Model) -> (Vec<f32>, Vec<f32>) {
    let layer = model.get_layer("normalizer").expect("normalizer");
    let layer = layer
        .as_any()
        .downcast_ref::<NormalizationLayer>()
        .expect("a Normalization layer");
    let values = |t: Tensor| t.to_vec1::<f32>().expect("values");
    (
        values(layer.mean().expect("mean")),
        values(layer.variance().expect("variance")),
    )
}

fn regression(first: Normalization) -> rkeras::Result<Sequential> {
    Ok(Sequential::new([
        Input::new(&[3]).into(),
        first.into(),
        Dense::new(8).activation("relu").into(),
        Dense::new(1).into(),
    ])?)
}

fn close(got: &[f32], want: &[f64], tolerance: f64) -> bool {
    got.iter()
        .zip(want)
        .all(|(&g, w)| (g as f64 - w).abs() <= tolerance * w.abs().max(1.0))
}

#[test]
fn an_adapted_normalizer_trains_saves_and_loads_with_its_statistics() -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(5);
    let (x, y, rows) = tabular()?;
    let (mean, variance) = column_statistics(&rows);

    // normalizer = layers.Normalization(axis=-1); normalizer.adapt(train_features)
    let normalizer = Normalization::new().name("normalizer");
    normalizer.adapt(&x)?;
    let model = regression(normalizer)?;
    let (adapted_mean, adapted_variance) = statistics_of(&model);
    assert!(
        close(&adapted_mean, &mean, 1e-6),
        "{adapted_mean:?} vs {mean:?}"
    );
    assert!(
        close(&adapted_variance, &variance, 1e-6),
        "{adapted_variance:?}"
    );
    // Keras's count: 3 + 3 + 1 non-trainable parameters, then 3·8 + 8 and 8 + 1.
    assert_eq!(model.count_params(), 7 + 32 + 9);
    assert!(model
        .summary_string()?
        .contains("Non-trainable params: 7 (28.00 B)"));

    model.compile("adam", "mean_absolute_error")?;
    let history = model.fit(
        &x,
        &y,
        FitOptions::new().epochs(4).batch_size(16).verbose(0),
    )?;
    let loss = history.loss();
    assert!(
        loss.iter().all(|l| l.is_finite()) && loss[3] < loss[0],
        "{loss:?}"
    );
    // Training leaves the statistics as adapt set them.
    assert_eq!(
        statistics_of(&model),
        (adapted_mean.clone(), adapted_variance.clone())
    );

    // The same model with the statistics given instead predicts the same.
    let as_f64 = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let given = regression(
        Normalization::new()
            .mean(as_f64(&adapted_mean))
            .variance(as_f64(&adapted_variance)),
    )?;
    let trainable =
        |m: &Model| -> Vec<Weight> { m.weights().into_iter().filter(|w| w.trainable).collect() };
    for (from, to) in trainable(&model).iter().zip(trainable(&given)) {
        to.var.set(from.var.as_tensor())?;
    }
    let predicted = model.predict(&x, None)?.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(
        given.predict(&x, None)?.flatten_all()?.to_vec1::<f32>()?,
        predicted
    );

    // Saved and loaded, the statistics come back and so do the predictions.
    let dir = std::env::temp_dir().join(format!("rkeras-normalization-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("regression.safetensors");
    model.save(&path)?;
    let loaded = rkeras::load_model(&path)?;
    assert_eq!(statistics_of(&loaded), (adapted_mean, adapted_variance));
    assert_eq!(
        loaded.predict(&x, None)?.flatten_all()?.to_vec1::<f32>()?,
        predicted
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[test]
fn a_normalizer_in_a_model_adapts_through_get_layer() -> rkeras::Result<()> {
    let (x, _, rows) = tabular()?;
    let (mean, _) = column_statistics(&rows);
    let model = regression(Normalization::new().name("normalizer"))?;
    // Not adapted yet: Keras 3's initial mean 0 and variance 1.
    assert_eq!(statistics_of(&model), (vec![0.0; 3], vec![1.0; 3]));
    let layer = model.get_layer("normalizer").expect("normalizer");
    let normalizer = layer
        .as_any()
        .downcast_ref::<NormalizationLayer>()
        .expect("a Normalization layer");
    normalizer.adapt(&x)?;
    assert!(close(&statistics_of(&model).0, &mean, 1e-6));
    Ok(())
}
