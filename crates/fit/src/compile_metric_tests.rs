//! Metric objects in `compile`: logged under their names, fresh for every run, saved and
//! rebuilt with their options.

use candle_core::{Device, Tensor};
use rkeras_layers::{Dense, Input};
use rkeras_model::Model;
use serde_json::json;

use crate::compile::{with_compiled, CompileState};
use crate::metrics::{FalseNegatives, FalsePositives, TrueNegatives, TruePositives, AUC};
use crate::optimizers::SGD;
use crate::{CompileOptions, FitOptions, Result, Training};

/// `sigmoid(x0 + x1)`: a Dense of one unit with a kernel of ones and no bias, so predictions
/// are known and rows with `x0 + x1 = 0` predict exactly 0.5 (the threshold).
fn model() -> Result<Model> {
    let input = Input::new(&[2]);
    let output = Dense::new(1)
        .activation("sigmoid")
        .kernel_initializer("ones")(input);
    Ok(Model::new(input, output)?)
}

fn tensor(rows: &[[f32; 2]]) -> Result<Tensor> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu)?)
}

fn labels(values: &[f32]) -> Result<Tensor> {
    Ok(Tensor::new(values, &Device::Cpu)?.reshape((values.len(), 1))?)
}

/// (tp, fp, tn, fn) at threshold 0.5, counted here from the model's predictions.
fn counted(model: &Model, x: &Tensor, y: &Tensor) -> Result<[f64; 4]> {
    let predictions = model.predict(x, None)?.flatten_all()?.to_vec1::<f32>()?;
    let targets = y.flatten_all()?.to_vec1::<f32>()?;
    let mut counts = [0.0; 4];
    for (p, t) in predictions.iter().zip(&targets) {
        let index = match (*t != 0.0, *p > 0.5) {
            (true, true) => 0,
            (false, true) => 1,
            (false, false) => 2,
            (true, false) => 3,
        };
        counts[index] += 1.0;
    }
    Ok(counts)
}

fn count_options() -> CompileOptions {
    CompileOptions::new()
        .metrics(&["accuracy"])
        .metric(TruePositives::new().with_name("tp"))
        .metric(FalsePositives::new().with_name("fp"))
        .metric(TrueNegatives::new())
        .metric(FalseNegatives::new().with_name("fn"))
}

#[test]
fn count_metrics_log_under_their_names_and_sum_over_the_epoch() -> Result<()> {
    let model = model()?;
    // Learning rate 0: the predictions during the epoch are those of `predict` afterwards.
    let sgd = SGD::new().learning_rate(0.0);
    model.compile_with(sgd, "binary_crossentropy", count_options())?;
    let x = tensor(&[
        [1., 0.],
        [-1., 0.],
        [2., 1.],
        [-2., -1.],
        [0.5, -1.],
        [0., 0.],
        [1., 1.],
        [-1., 0.5],
    ])?;
    let y = labels(&[1., 1., 0., 0., 1., 1., 1., 0.])?;
    let vx = tensor(&[[0.3, -0.3], [1., 2.], [-3., 1.], [0.2, 0.]])?;
    let vy = labels(&[1., 0., 0., 1.])?;
    // Batches of 3, 3 and 2: the counts are sums over batches, not means.
    let options = || {
        FitOptions::new()
            .epochs(1)
            .batch_size(3)
            .verbose(0)
            .validation_data(&vx, &vy)
    };
    let history = model.fit(&x, &y, options())?;
    let keys = ["tp", "fp", "true_negatives", "fn"];
    let train = counted(&model, &x, &y)?;
    let val = counted(&model, &vx, &vy)?;
    // By hand (sums 1, -1, 3, -3, -0.5, 0, 2, -0.5; 0 gives 0.5, not above the threshold):
    // positives predicted for rows 0, 2, 6 → tp 2 (0, 6), fp 1 (2), tn 2 (3, 7), fn 3 (1, 4, 5).
    assert_eq!(train, [2.0, 1.0, 2.0, 3.0]);
    // Validation: sums 0 (at the threshold), 3, -2, 0.2 → tp 1, fp 1, tn 1, fn 1.
    assert_eq!(val, [1.0, 1.0, 1.0, 1.0]);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(history.get(key), Some(&[train[i]][..]), "{key}");
        let val_key = format!("val_{key}");
        assert_eq!(history.get(&val_key), Some(&[val[i]][..]), "{val_key}");
    }
    assert!(history.get("accuracy").is_some());
    // Each run starts from reset copies: a second fit and an evaluate count the same again.
    let again = model.fit(&x, &y, options())?;
    assert_eq!(again.get("tp"), Some(&[train[0]][..]));
    let logs = model.evaluate(&vx, &vy, None)?;
    assert_eq!(logs.get("fn").copied(), Some(val[3]));
    Ok(())
}

#[test]
fn bad_metric_options_are_refused_by_compile() -> Result<()> {
    let model = model()?;
    for options in [
        CompileOptions::new().metric(TruePositives::new().thresholds(1.5)),
        CompileOptions::new().metric(FalseNegatives::new().thresholds(-0.5)),
        CompileOptions::new().metric(AUC::new().num_thresholds(1)),
    ] {
        let err = model
            .compile_with("sgd", "binary_crossentropy", options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be"), "{err}");
    }
    Ok(())
}

#[test]
fn metric_objects_are_saved_with_their_options_and_rebuilt_on_load() -> Result<()> {
    let model = model()?;
    let options = CompileOptions::new()
        .metric("accuracy")
        .metric(TruePositives::new().with_name("tp").thresholds(0.25))
        .metric(TruePositives::new())
        .metric(AUC::new().num_thresholds(50).with_name("roc"));
    model.compile_with("adam", "binary_crossentropy", options)?;
    let config = |model: &Model| {
        with_compiled(model, |state| match state {
            CompileState::Ready(compiled) => compiled.config()["metrics"].clone(),
            _ => panic!("the model is compiled"),
        })
    };
    let saved = config(&model);
    assert_eq!(
        saved,
        json!([
            "accuracy",
            {"class_name": "TruePositives", "config": {"name": "tp", "thresholds": 0.25}},
            {"class_name": "TruePositives",
             "config": {"name": "true_positives", "thresholds": 0.5}},
            {"class_name": "AUC",
             "config": {"name": "roc", "num_thresholds": 50, "from_logits": false}},
        ])
    );
    let path = std::env::temp_dir().join(format!(
        "rkeras-fit-metric-objects-{}.safetensors",
        std::process::id()
    ));
    model.save(&path)?;
    let loaded = crate::load_model(&path);
    std::fs::remove_file(&path).unwrap();
    let loaded = loaded?;
    assert_eq!(config(&loaded), saved);
    // The rebuilt threshold is used: sigmoid(0.3 - 1.15) ≈ 0.30 is above 0.25, not above 0.5.
    let logs = loaded.evaluate(tensor(&[[0.3, -1.15]])?, labels(&[1.])?, None)?;
    assert_eq!(logs.get("tp").copied(), Some(1.0));
    assert_eq!(logs.get("true_positives").copied(), Some(0.0));
    Ok(())
}
