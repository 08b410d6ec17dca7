//! Models with several inputs and outputs: lists of arrays into fit, evaluate and predict, a
//! loss per output with weights, metrics per output, named as Keras names them.

use rkeras::prelude::*;

/// Two inputs (8 and 4 features) merged by concatenating their Dense codes, two outputs: a
/// sigmoid `flag` and a linear `value`.
fn two_by_two() -> rkeras::Result<Model> {
    let (a, b) = (Input::new(&[8]), Input::new(&[4]));
    let h = Dense::new(6).activation("relu")(a);
    let g = Dense::new(6).activation("relu")(b);
    let flag = Dense::new(1).activation("sigmoid").name("flag")(h);
    let value = Dense::new(2).name("value")(g);
    Ok(Model::new([a, b], [flag, value])?)
}

fn data(rows: usize) -> rkeras::Result<(Tensor, Tensor, Tensor, Tensor)> {
    let cpu = Device::Cpu;
    let a = Tensor::arange(0f32, (rows * 8) as f32, &cpu)?
        .affine(0.013, -0.5)?
        .sin()?
        .reshape((rows, 8))?;
    let b = Tensor::arange(0f32, (rows * 4) as f32, &cpu)?
        .affine(0.029, 0.3)?
        .cos()?
        .reshape((rows, 4))?;
    let flag = a.sum_keepdim(1)?.gt(0.0)?.to_dtype(DType::F32)?;
    let value = b.narrow(1, 0, 2)?.affine(2.0, 1.0)?;
    Ok((a, b, flag, value))
}

#[test]
fn two_inputs_two_outputs_train_with_a_loss_and_metrics_each() -> rkeras::Result<()> {
    rkeras::utils::set_random_seed(3);
    let model = two_by_two()?;
    assert_eq!(model.output_names(), ["flag", "value"]);
    model.compile_with(
        "adam",
        ["binary_crossentropy", "mse"],
        CompileOptions::new()
            .output_metrics(&[&["accuracy"], &["mae"]])
            .loss_weights(&[1.0, 0.5]),
    )?;
    let (a, b, flag, value) = data(64)?;
    let history = model.fit(
        [&a, &b],
        [&flag, &value],
        FitOptions::new()
            .epochs(20)
            .batch_size(16)
            .validation_data([&a, &b], [&flag, &value])
            .verbose(0),
    )?;
    let keys: Vec<&String> = history.history.keys().collect();
    for key in [
        "loss",
        "flag_loss",
        "value_loss",
        "flag_accuracy",
        "value_mae",
        "val_loss",
        "val_flag_loss",
        "val_value_loss",
        "val_flag_accuracy",
        "val_value_mae",
    ] {
        assert!(history.history.contains_key(key), "{key} not in {keys:?}");
    }
    let losses = &history.history["loss"];
    assert!(losses[19] < 0.7 * losses[0], "{losses:?}");
    // The total is the weighted sum of the outputs' (unweighted) losses.
    let logs = model.evaluate([&a, &b], [&flag, &value], None)?;
    let weighted = logs["flag_loss"] + 0.5 * logs["value_loss"];
    assert!((logs["loss"] - weighted).abs() < 1e-5, "{logs:?}");
    // Each output predicted, in order; a single-output predict refuses.
    let predictions = model.predict_many([&a, &b], None)?;
    assert_eq!(predictions[0].dims(), &[64, 1]);
    assert_eq!(predictions[1].dims(), &[64, 2]);
    assert!(model.predict([&a, &b], None).is_err());
    Ok(())
}

#[test]
fn mismatched_lists_are_errors_naming_the_model_and_the_counts() -> rkeras::Result<()> {
    let model = two_by_two()?;
    let err = model.compile("adam", ["mse"]).unwrap_err().to_string();
    assert!(
        err.contains("2 output(s) (flag, value)") && err.contains("1 losses"),
        "{err}"
    );
    let err = model
        .compile_with("adam", "mse", CompileOptions::new().loss_weights(&[1.0]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("loss weights"), "{err}");
    model.compile(
        "adam",
        Losses::by_name([("value", "mse"), ("flag", "binary_crossentropy")])?,
    )?;
    let (a, b, flag, value) = data(8)?;
    let err = model
        .fit([&a, &b], &flag, FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 output(s), but 1 target"), "{err}");
    let err = model
        .fit(&a, [&flag, &value], FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("takes 2 input array(s), got 1"), "{err}");
    let err = model
        .compile(
            "adam",
            Losses::by_name([("value", "mse"), ("flags", "mse")])?,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("no loss for output 'flag'"), "{err}");
    Ok(())
}

#[test]
fn a_compiled_two_output_model_saves_and_loads_its_losses_metrics_and_weights() -> rkeras::Result<()>
{
    let model = two_by_two()?;
    model.compile_with(
        "adam",
        ["binary_crossentropy", "mse"],
        CompileOptions::new()
            .output_metrics(&[&["accuracy"], &["mae"]])
            .loss_weights(&[2.0, 0.5]),
    )?;
    let (a, b, flag, value) = data(16)?;
    model.fit([&a, &b], [&flag, &value], FitOptions::new().verbose(0))?;
    let dir = std::env::temp_dir().join(format!("rkeras-multi-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("two.safetensors");
    model.save(&path)?;
    let loaded = rkeras::fit::load_model(&path)?;
    let before = model.evaluate([&a, &b], [&flag, &value], None)?;
    let after = loaded.evaluate([&a, &b], [&flag, &value], None)?;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (key, value) in &before {
        assert!(
            (value - after[key]).abs() < 1e-6,
            "{key}: {value} vs {}",
            after[key]
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
