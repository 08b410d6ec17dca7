//! `Sequential` as Keras's `keras.Sequential`: built from a list or with `add`, usable wherever
//! a model is (compile / fit / predict, summary, nesting, saving), and loaded back as one.

use std::path::PathBuf;

use rkeras::prelude::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rkeras-sequential-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Keras's MNIST convnet, written as `keras.Sequential([...])`.
fn convnet() -> rkeras::Result<Sequential> {
    Ok(Sequential::new([
        Input::new(&[28, 28, 1]).into(),
        Conv2D::new(32, (3, 3)).activation("relu").into(),
        MaxPooling2D::new((2, 2)).into(),
        Flatten::new().into(),
        Dense::new(10).activation("softmax").into(),
    ])?)
}

/// The lines of a table row as the 3-column summary at 76 columns writes it.
fn row(layer: &str, shape: &str, params: &str) -> String {
    format!("│ {layer:<31} │ {shape:<22} │ {params:>13} │")
}

/// Checks the Sequential summary's structure against the text format of Keras's summaries in
/// `tests/golden/` (same header, widths and totals lines); a summary produced by Keras 3 for
/// this model should replace the row checks once one is in `tests/golden/`.
#[test]
fn the_summary_has_keras_sequential_layout_without_an_input_row() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let model = convnet()?;
    let text = model.summary_string()?;
    let lines: Vec<&str> = text.lines().collect();
    let golden: Vec<&str> = include_str!("golden/dense_encoder.txt").lines().collect();
    assert_eq!(lines[0], "Model: \"sequential\"");
    // The 3-column header of every sequential-like summary, no `Connected to`.
    assert_eq!(lines[1..4], golden[1..4], "{text}");
    assert!(!text.contains("InputLayer") && !text.contains("Connected to"));
    let separator = golden[5];
    let expected_rows = [
        row("conv2d (Conv2D)", "(None, 26, 26, 32)", "320"),
        separator.to_string(),
        row("max_pooling2d (MaxPooling2D)", "(None, 13, 13, 32)", "0"),
        separator.to_string(),
        row("flatten (Flatten)", "(None, 5408)", "0"),
        separator.to_string(),
        row("dense (Dense)", "(None, 10)", "54,090"),
    ];
    assert_eq!(lines[4..11], expected_rows, "{text}");
    assert_eq!(lines[11], golden[9], "the bottom border");
    assert_eq!(
        lines[12..],
        [
            " Total params: 54,410 (212.54 KB)",
            " Trainable params: 54,410 (212.54 KB)",
            " Non-trainable params: 0 (0.00 B)",
        ]
    );
    Ok(())
}

#[test]
fn add_builds_the_model_as_it_grows_and_names_follow_keras() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let mut model = Sequential::named("stack", [Input::new(&[784]).into()])?;
    model.add(Dense::new(32).activation("relu"))?;
    model.add(Dense::new(10))?;
    assert_eq!(model.count_params(), 784 * 32 + 32 + 330);
    assert_eq!(model.output_shapes()[0].to_string(), "(None, 10)");
    let names: Vec<String> = model
        .layers()
        .iter()
        .map(|l| l.name().to_string())
        .collect();
    assert_eq!(names, ["dense", "dense_1"]);
    assert_eq!(convnet()?.name(), "sequential");
    assert_eq!(convnet()?.name(), "sequential_1");
    Ok(())
}

#[test]
fn a_sequential_compiles_fits_and_predicts_like_any_model() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    rkeras::utils::set_random_seed(1);
    let model = Sequential::new([
        Input::new(&[2]).into(),
        Dense::new(8).activation("relu").into(),
        Dense::new(2).activation("softmax").into(),
    ])?;
    // Two classes: whether x0 > x1.
    let points: Vec<f32> = (0..64).map(|i| ((i * 37 % 17) as f32) / 17.0).collect();
    let x = Tensor::from_vec(points.clone(), (32, 2), &Device::Cpu)?;
    let labels: Vec<u8> = points.chunks(2).map(|p| u8::from(p[0] > p[1])).collect();
    let y = rkeras::utils::to_categorical(&Tensor::new(labels.as_slice(), &Device::Cpu)?, 2)?;
    model.compile_with_metrics(
        Adam::new().learning_rate(0.05),
        "categorical_crossentropy",
        &["accuracy"],
    )?;
    let history = model.fit(
        &x,
        &y,
        FitOptions::new().epochs(20).batch_size(8).verbose(0),
    )?;
    let losses = &history.history["loss"];
    assert!(losses[losses.len() - 1] < losses[0], "{losses:?}");
    let predicted = model.predict(&x, None)?;
    assert_eq!(predicted.dims(), [32, 2]);
    // Calling the model on the tensor (Keras's `model(x)`) gives the same.
    let called = model.call(&x)?;
    let gap = (predicted - called)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(gap < 1e-6, "{gap}");
    Ok(())
}

#[test]
fn a_sequential_nests_in_a_functional_model_and_saves_as_one() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let dir = temp_dir("nested");
    let body = Sequential::new([Input::new(&[4]).into(), Dense::new(3).into()])?;
    let input = Input::new(&[4]);
    let outer = Model::named("outer", input, Dense::new(1)(body(input)))?;
    let text = outer.summary_string()?;
    assert!(text.contains("│ sequential (Sequential)"), "{text}");
    assert!(text.contains("│ input_layer_1 (InputLayer)"), "{text}");
    let path = dir.join("outer.safetensors");
    outer.save(&path)?;
    let loaded = rkeras::fit::load_model(&path)?;
    let nested = loaded.get_model("sequential").expect("the nested model");
    assert_eq!(nested.class_name(), "Sequential");
    assert_eq!(loaded.summary_string()?, text);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn a_saved_sequential_loads_back_as_a_sequential() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let dir = temp_dir("roundtrip");
    let model = convnet()?;
    model.compile("adam", "categorical_crossentropy")?;
    let path = dir.join("convnet.safetensors");
    model.save(&path)?;
    let loaded = rkeras::fit::load_model(&path)?;
    assert_eq!(loaded.class_name(), "Sequential");
    assert!(loaded.is_compiled());
    assert_eq!(loaded.summary_string()?, model.summary_string()?);
    let x = Tensor::ones((2, 28, 28, 1), DType::F32, &Device::Cpu)?;
    assert_eq!(
        loaded.call(&x)?.to_vec2::<f32>()?,
        model.call(&x)?.to_vec2::<f32>()?
    );
    // Back as a Sequential, it grows again, compiled still.
    let mut grown = Sequential::try_from(loaded)?;
    grown.add(Dense::new(1).name("extra"))?;
    assert_eq!(grown.output_shapes()[0].to_string(), "(None, 1)");
    assert!(grown.is_compiled());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
