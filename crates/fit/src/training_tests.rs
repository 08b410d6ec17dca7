//! What `fit` and the other runs refuse or convert before they start, and runs that overlap.

use std::sync::mpsc;

use candle_core::{DType, Device, Tensor};
use rkeras_layers::{Dense, Input};
use rkeras_model::Model;

use crate::callbacks::{Callback, TrainingControl};
use crate::{FitOptions, Result, Training};

fn model() -> Model {
    let input = Input::new(&[3]);
    let model = Model::new(input, Dense::new(2).activation("sigmoid")(input)).unwrap();
    model.compile("sgd", "mse").unwrap();
    model
}

fn data(rows: usize) -> (Tensor, Tensor) {
    let x = Tensor::arange(0f32, (rows * 3) as f32, &Device::Cpu)
        .and_then(|t| t.affine(0.01, 0.0))
        .and_then(|t| t.reshape((rows, 3)))
        .unwrap();
    (
        x,
        Tensor::ones((rows, 2), DType::F32, &Device::Cpu).unwrap(),
    )
}

fn quiet() -> FitOptions<'static> {
    FitOptions::new().epochs(1).batch_size(4).verbose(0)
}

#[test]
fn zero_steps_per_epoch_is_refused() {
    let (x, y) = data(8);
    let err = model().fit(&x, &y, quiet().steps_per_epoch(0)).unwrap_err();
    assert!(err.to_string().contains("steps_per_epoch"), "{err}");
}

#[test]
fn validation_data_of_the_wrong_shape_or_size_is_refused_before_any_step() {
    let model = model();
    let (x, y) = data(8);
    let (vx, vy) = data(5);
    let wide = Tensor::zeros((5, 4), DType::F32, &Device::Cpu).unwrap();
    let short = vy.narrow(0, 0, 4).unwrap();
    let cases = [
        (&wide, &vy, "samples shaped (None, 3)"),
        (&vx, &short, "the same number of samples"),
    ];
    for (vx, vy, expected) in cases {
        let options = quiet().epochs(3).validation_data(vx, vy);
        let err = model.fit(&x, &y, options).unwrap_err().to_string();
        assert!(
            err.contains("validation_data") && err.contains(expected),
            "{err}"
        );
    }
    let targets = Tensor::zeros((5, 3), DType::F32, &Device::Cpu).unwrap();
    let err = model
        .fit(&x, &y, quiet().validation_data(&vx, &targets))
        .unwrap_err();
    assert!(err.to_string().contains("targets shaped like y"), "{err}");
    assert_eq!(
        model.optimizer_iterations(),
        0,
        "a step ran before the check"
    );
}

#[test]
fn integer_and_f64_inputs_are_converted_to_float32_as_keras_does() -> Result<()> {
    let model = model();
    let (x, y) = data(8);
    let reference = model.predict(&x, None)?;
    for dtype in [DType::F64, DType::U8, DType::I64, DType::U32] {
        let xd = (&x * 100.0)?.round()?.to_dtype(dtype)?;
        let expected = model.predict(&(&x * 100.0)?.round()?, None)?;
        let got = model.predict(&xd, None)?;
        assert_eq!(got.dtype(), DType::F32);
        let diff = (got - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0, "{dtype:?}");
        model.evaluate(&xd, &y, None)?;
        model.fit(&xd, &y.to_dtype(dtype)?, quiet())?;
    }
    assert_ne!(
        model.predict(&x, None)?.to_vec2::<f32>()?,
        reference.to_vec2::<f32>()?
    );
    Ok(())
}

/// A callback that, when training begins, says so and waits for the word to go on.
struct Pause {
    started: mpsc::Sender<()>,
    resume: mpsc::Receiver<()>,
}

impl Callback for Pause {
    fn on_train_begin(&mut self, _ctl: &mut dyn TrainingControl) -> Result<()> {
        self.started.send(()).unwrap();
        self.resume.recv().unwrap();
        Ok(())
    }
}

#[test]
fn a_save_or_another_fit_during_a_fit_is_refused_saying_so() {
    let model = model();
    let (x, y) = data(8);
    let (started, on_started) = mpsc::channel();
    let (go_on, resume) = mpsc::channel();
    let path = std::env::temp_dir().join(format!("rkeras-busy-{}.safetensors", std::process::id()));
    std::thread::scope(|scope| {
        let training = scope.spawn(|| {
            let options = quiet().callback(Pause { started, resume });
            model.fit(&x, &y, options).map(|_| ())
        });
        on_started.recv().unwrap();
        for err in [
            model.save(&path).unwrap_err(),
            model.save_weights(&path).unwrap_err(),
            model.fit(&x, &y, quiet()).unwrap_err(),
            model.evaluate(&x, &y, None).unwrap_err(),
            model.compile("adam", "mse").unwrap_err(),
        ] {
            let message = err.to_string();
            assert!(
                message.contains("while a fit of it is in progress"),
                "{message}"
            );
        }
        assert!(model.is_compiled());
        go_on.send(()).unwrap();
        training.join().unwrap().unwrap();
    });
    assert!(!path.exists());
    model.save(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(model.optimizer_iterations(), 2);
}

#[test]
fn new_losses_optimizers_and_metrics_compile_by_keras_name_and_train() -> Result<()> {
    // Two sigmoid units against targets of ones: every loss falls on the first steps.
    let (x, y) = data(8);
    for (optimizer, loss) in [
        ("adamax", "squared_hinge"),
        ("nadam", "binary_focal_crossentropy"),
        ("adadelta", "log_cosh"),
        ("nadam", "CosineSimilarity"),
    ] {
        let input = Input::new(&[3]);
        let model = Model::new(input, Dense::new(2).activation("sigmoid")(input))?;
        let metrics = [
            "auc",
            "Precision",
            "recall",
            "mape",
            "bce",
            "root_mean_squared_error",
        ];
        model.compile_with_metrics(optimizer, loss, &metrics)?;
        let history = model.fit(&x, &y, quiet().epochs(2))?;
        assert!(history.loss()[1] < history.loss()[0], "{optimizer} {loss}");
        for name in metrics {
            assert_eq!(history.get(name).map(<[f64]>::len), Some(2), "{name}");
        }
        // Every target is a positive: any positive prediction is right, precision 0 or 1.
        let precision = history.get("Precision").map(|p| p[0]);
        assert!(
            precision == Some(1.0) || precision == Some(0.0),
            "{precision:?}"
        );
    }
    Ok(())
}
