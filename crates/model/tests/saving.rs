//! Saving and loading the tutorial's models: round trips bit for bit, sub-models by name,
//! Lambdas through the registry, weights alone, extras, and broken or hostile files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rkeras_layers::random::{normal, uniform};
use rkeras_layers::session::{clear_session, set_random_seed};
use rkeras_layers::{
    Conv2D, Dense, Flatten, Input, Lambda, MaxPooling2D, Regularizer, Reshape, SymbolicFn,
    SymbolicTensor, UpSampling2D,
};
use rkeras_model::saving::{
    load, load_weights, read, read_bytes, save, save_model, save_weights, LoadOptions, Registry,
    SaveError, SaveExtras, WeightMismatch,
};
use rkeras_model::Model;
use serde_json::{json, Value};

/// encoder(28x28x1 -> code), decoder(code -> 28x28x1) and the autoencoder around both.
fn autoencoder(
    encoder_units: &[(usize, &str)],
    decoder_units: &[(usize, &str)],
    sparse: bool,
) -> Model {
    let image = Input::new(&[28, 28, 1]);
    let mut x = Flatten::new()(image);
    for (i, &(units, activation)) in encoder_units.iter().enumerate() {
        let mut dense = Dense::new(units).activation(activation);
        if sparse && i + 1 == encoder_units.len() {
            dense = dense.activity_regularizer(Regularizer::l1_l2(1e-5, 0.0));
        }
        x = dense(x);
    }
    let encoder = Model::named("encoder", image, x).unwrap();
    let code = Input::new(&[encoder_units.last().unwrap().0]);
    let mut y = code;
    for &(units, activation) in decoder_units {
        y = Dense::new(units).activation(activation)(y);
    }
    let decoder = Model::named("decoder", code, Reshape::new(&[28, 28, 1])(y)).unwrap();
    Model::named("autoencoder", image, decoder(encoder(image))).unwrap()
}

fn dense_autoencoder() -> Model {
    autoencoder(&[(49, "relu")], &[(784, "sigmoid")], false)
}

fn images(seed: u64, batch: usize) -> Tensor {
    set_random_seed(seed);
    uniform(&[batch, 28, 28, 1], 0.0, 1.0, &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

fn assert_same_predictions(a: &Model, b: &Model, x: &Tensor) {
    let (ya, yb) = (
        a.forward(std::slice::from_ref(x)).unwrap(),
        b.forward(std::slice::from_ref(x)).unwrap(),
    );
    assert_eq!(ya.len(), yb.len());
    for (ya, yb) in ya.iter().zip(&yb) {
        assert_eq!(ya.dims(), yb.dims());
        assert_eq!(bits(ya), bits(yb), "predictions differ");
    }
}

fn saved(model: &Model, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    save(model, &path).unwrap();
    path
}

fn round_trip(model: &Model) -> Model {
    let dir = tempfile::tempdir().unwrap();
    load(saved(model, dir.path(), "m.safetensors")).unwrap()
}

#[test]
fn the_dense_autoencoder_round_trips_with_its_sub_models() {
    let model = dense_autoencoder();
    model.get_model("decoder").unwrap().set_trainable(false);
    let loaded = round_trip(&model);
    assert_eq!(loaded.name(), "autoencoder");
    assert_eq!(loaded.count_params(), 77_665);
    // The frozen decoder stays frozen: only the encoder's 38,465 values train.
    let trainable: usize = loaded.trainable_weights().iter().map(|w| w.count()).sum();
    assert_eq!(trainable, 38_465);
    let x = images(1, 3);
    assert_same_predictions(&model, &loaded, &x);

    let encoder = loaded.get_model("encoder").unwrap();
    assert_same_predictions(&model.get_model("encoder").unwrap(), &encoder, &x);
    let code = encoder.forward(std::slice::from_ref(&x)).unwrap().remove(0);
    let decoder = loaded.get_model("decoder").unwrap();
    assert_same_predictions(&model.get_model("decoder").unwrap(), &decoder, &code);

    // The sub-model shares its weights with the loaded autoencoder.
    let kernel = &encoder.weights()[0];
    let outer = loaded
        .weights()
        .into_iter()
        .find(|w| w.path == format!("encoder/{}", kernel.path))
        .unwrap();
    kernel.var.set(&kernel.var.zeros_like().unwrap()).unwrap();
    assert!(bits(outer.var.as_tensor()).iter().all(|&b| b == 0));
}

#[test]
fn the_deep_and_sparse_autoencoders_round_trip() {
    let deep = autoencoder(
        &[(147, "relu"), (98, "relu"), (49, "linear")],
        &[(98, "relu"), (147, "relu"), (784, "sigmoid")],
        false,
    );
    assert_eq!(deep.count_params(), 270_235);
    let loaded = round_trip(&deep);
    assert_eq!(loaded.count_params(), 270_235);
    assert_same_predictions(&deep, &loaded, &images(2, 2));

    let sparse = autoencoder(
        &[(48, "relu"), (32, "relu"), (16, "linear")],
        &[(32, "relu"), (48, "relu"), (784, "sigmoid")],
        true,
    );
    let loaded = round_trip(&sparse);
    assert_eq!(loaded.count_params(), 80_320);
    let x = images(3, 2);
    assert_same_predictions(&sparse, &loaded, &x);
    // The activity regularizer came back: a training call adds the same penalty.
    let penalty = |m: &Model| {
        let mut ctx = rkeras_layers::CallContext::new(true);
        m.forward_t(std::slice::from_ref(&x), &mut ctx).unwrap();
        let losses: Vec<u32> = ctx.losses().iter().flat_map(bits).collect();
        assert_eq!(losses.len(), 1);
        losses
    };
    assert_eq!(penalty(&sparse), penalty(&loaded));
}

fn add_noise(x: &Tensor) -> rkeras_layers::Result<Tensor> {
    let noise = normal(x.dims(), 0.5, 0.5, x.device())?;
    Ok((x + noise)?.clamp(0f32, 1f32)?)
}

fn denoiser() -> Model {
    let autoencoder = dense_autoencoder();
    let input = Input::batch_shape(&[16, 28, 28, 1]);
    let noised = Lambda::new(add_noise).function_name("add_noise")(input);
    let noiser = Model::named("noiser", input, noised).unwrap();
    Model::named("denoiser", input, autoencoder(noiser(input))).unwrap()
}

#[test]
fn the_denoiser_loads_with_its_registered_lambda() {
    let model = denoiser();
    let dir = tempfile::tempdir().unwrap();
    let path = saved(&model, dir.path(), "denoiser.safetensors");

    let err = load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&path.display().to_string()), "{err}");
    assert!(err.contains("register_lambda(\"add_noise\""), "{err}");

    let mut registry = Registry::default();
    registry.register_lambda("add_noise", add_noise, None);
    let loaded = read(&path, &registry).unwrap().model;
    let x = images(4, 16);
    let predict = |m: &Model| {
        set_random_seed(99);
        m.forward(std::slice::from_ref(&x)).unwrap().remove(0)
    };
    assert_eq!(bits(&predict(&model)), bits(&predict(&loaded)));
    // The deterministic part on its own, reached by name through two levels.
    let inner = loaded.get_model("autoencoder").unwrap();
    assert!(inner.get_model("encoder").is_some());
    assert_same_predictions(&model.get_model("autoencoder").unwrap(), &inner, &x);
}

#[test]
fn a_lambda_registered_with_another_output_shape_is_refused() {
    let input = Input::new(&[4]);
    let y = Lambda::new(|x| Ok(x.clone()))
        .function_name("same")
        .output_shape(&[4])(input);
    let model = Model::named("m", input, y).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = saved(&model, dir.path(), "m.safetensors");
    let mut registry = Registry::default();
    registry.register_lambda("same", |x| Ok(x.clone()), Some(&[5]));
    let err = read(&path, &registry).unwrap_err().to_string();
    assert!(err.contains("[4]") && err.contains("[5]"), "{err}");
}

#[test]
fn extras_come_back_as_saved() {
    let model = dense_autoencoder();
    let moments = Tensor::new(&[[1.5f32, -2.0], [0.0, 3.25]], &Device::Cpu).unwrap();
    let step = Tensor::new(&[7i64], &Device::Cpu).unwrap();
    let extras = SaveExtras {
        compile_config: Some(json!({"optimizer": "adam", "loss": "binary_crossentropy"})),
        extra_tensors: vec![("step".into(), step), ("adam/m".into(), moments)],
        extra_metadata: BTreeMap::from([("epoch".to_string(), "12".to_string())]),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    save_model(&model, &path, &extras).unwrap();
    let loaded = read(&path, &Registry::default()).unwrap();
    assert_eq!(loaded.compile_config, extras.compile_config);
    assert_eq!(loaded.extra_metadata, extras.extra_metadata);
    let names: Vec<&str> = loaded
        .extra_tensors
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["adam/m", "step"]);
    let m = &loaded.extra_tensors[0].1;
    assert_eq!(m.to_vec2::<f32>().unwrap(), [[1.5, -2.0], [0.0, 3.25]]);
    assert_eq!(loaded.extra_tensors[1].1.to_vec1::<i64>().unwrap(), [7]);
    // Weights-only loading ignores the optimizer state. Default layer names count up within
    // a session, so the same code names the fresh model's layers alike only after a reset.
    clear_session();
    let fresh = dense_autoencoder();
    assert_eq!(
        load_weights(&fresh, &path, LoadOptions::default()).unwrap(),
        []
    );
    assert_same_predictions(&model, &fresh, &images(5, 1));
}

#[test]
fn weights_load_into_a_model_built_in_code() {
    let model = dense_autoencoder();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    save_weights(&model, &path).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("weights only"), "{err}");

    clear_session();
    let fresh = dense_autoencoder();
    let x = images(6, 2);
    assert_ne!(
        bits(&model.forward(std::slice::from_ref(&x)).unwrap()[0]),
        bits(&fresh.forward(std::slice::from_ref(&x)).unwrap()[0])
    );
    assert_eq!(
        load_weights(&fresh, &path, LoadOptions::default()).unwrap(),
        []
    );
    assert_same_predictions(&model, &fresh, &x);
}

#[test]
fn mismatched_weights_are_listed_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let image = Input::new(&[4]);
    let hidden = Dense::new(3).name("hidden")(image);
    let saved_model = Model::named("a", image, Dense::new(2).name("out")(hidden)).unwrap();
    let path = dir.path().join("a.safetensors");
    save_weights(&saved_model, &path).unwrap();

    let image = Input::new(&[4]);
    let hidden = Dense::new(3).name("hidden")(image);
    let other = Model::named("b", image, Dense::new(5).name("wider")(hidden)).unwrap();
    let before: Vec<Vec<u32>> = other
        .weights()
        .iter()
        .map(|w| bits(w.var.as_tensor()))
        .collect();
    let err = load_weights(&other, &path, LoadOptions::default()).unwrap_err();
    let message = err.to_string();
    for expected in [
        "missing weight 'wider/kernel' (the model expects F32[3, 5])",
        "unexpected tensor 'out/bias' (F32[2])",
    ] {
        assert!(message.contains(expected), "{message}");
    }
    let after: Vec<Vec<u32>> = other
        .weights()
        .iter()
        .map(|w| bits(w.var.as_tensor()))
        .collect();
    assert_eq!(before, after, "a failed load changed weights");

    let skipped = load_weights(
        &other,
        &path,
        LoadOptions {
            skip_mismatch: true,
        },
    )
    .unwrap();
    let names: Vec<&str> = skipped.iter().map(WeightMismatch::name).collect();
    assert_eq!(
        names,
        ["out/bias", "out/kernel", "wider/bias", "wider/kernel"]
    );
    assert_eq!(
        bits(other.weights()[0].var.as_tensor()),
        bits(saved_model.weights()[0].var.as_tensor())
    );
}

#[test]
fn weights_written_by_python_load_with_their_values() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_dense.safetensors");
    let input = Input::new(&[3]);
    let model = Model::named("py", input, Dense::new(2).name("dense")(input)).unwrap();
    assert_eq!(
        load_weights(&model, &fixture, LoadOptions::default()).unwrap(),
        []
    );
    let weights = model.weights();
    assert_eq!(
        weights[0].var.as_tensor().to_vec2::<f32>().unwrap(),
        [[-1.0, -0.5], [0.0, 0.5], [1.0, 1.5]]
    );
    assert_eq!(
        weights[1].var.as_tensor().to_vec1::<f32>().unwrap(),
        [0.25, -0.75]
    );
    // x · kernel + bias for x = (1, 2, 3): (-1 + 0 + 3 + 0.25, -0.5 + 1 + 4.5 - 0.75).
    let x = Tensor::new(&[[1f32, 2.0, 3.0]], &Device::Cpu).unwrap();
    let y = model.forward(&[x]).unwrap().remove(0);
    assert_eq!(y.to_vec2::<f32>().unwrap(), [[2.25, 4.25]]);
}

#[test]
fn a_failed_save_leaves_the_previous_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let model = dense_autoencoder();
    let path = saved(&model, dir.path(), "m.safetensors");
    let before = std::fs::read(&path).unwrap();
    let input = Input::new(&[2]);
    let unnamed = Model::named("u", input, Lambda::new(|x| Ok(x.clone()))(input)).unwrap();
    let err = save(&unnamed, &path).unwrap_err();
    assert!(matches!(err, SaveError::Unsavable { .. }), "{err}");
    let clash = SaveExtras {
        extra_tensors: vec![("s".into(), Tensor::new(&[1f32], &Device::Cpu).unwrap()); 2],
        ..SaveExtras::default()
    };
    assert!(save_model(&model, &path, &clash).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "a temporary file was left behind");
}

fn small_model() -> Model {
    let input = Input::named("in", &[3]);
    let hidden = Dense::new(2).activation("relu").name("hidden")(input);
    Model::named("small", input, Dense::new(1).name("out")(hidden)).unwrap()
}

fn small_model_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::read(saved(&small_model(), dir.path(), "s.safetensors")).unwrap()
}

fn load_bytes(bytes: &[u8]) -> Result<Model, SaveError> {
    read_bytes(
        bytes,
        Path::new("hostile.safetensors"),
        &Registry::default(),
    )
    .map(|l| l.model)
}

#[test]
fn every_truncation_and_header_flip_is_an_error() {
    let bytes = small_model_bytes();
    assert!(load_bytes(&bytes).is_ok());
    for len in 0..bytes.len() {
        let err = load_bytes(&bytes[..len]).unwrap_err();
        assert!(
            err.to_string().starts_with("hostile.safetensors: "),
            "{err}"
        );
    }
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for i in 0..header_end {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x80;
        assert!(
            load_bytes(&flipped).is_err(),
            "flipping byte {i} went unnoticed"
        );
        // Any single-bit flip must come back as a result, never a panic.
        for bit in 0..7 {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1 << bit;
            let _ = load_bytes(&flipped);
        }
    }
}

/// The small model's file with its architecture JSON and tensors changed by `edit`.
fn rewritten(edit: impl FnOnce(&mut Value, &mut HashMap<String, Tensor>)) -> Vec<u8> {
    let bytes = small_model_bytes();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    let mut architecture: Value = serde_json::from_str(&metadata["model"]).unwrap();
    edit(&mut architecture, &mut tensors);
    metadata.insert("model".into(), architecture.to_string());
    safetensors::serialize(tensors.iter(), Some(metadata)).unwrap()
}

fn load_error(bytes: &[u8]) -> String {
    load_bytes(bytes).unwrap_err().to_string()
}

#[test]
fn hostile_architectures_are_errors_naming_the_problem() {
    let unknown = rewritten(|a, _| a["layers"][1]["class_name"] = "Evil".into());
    let err = load_error(&unknown);
    assert!(
        err.contains("class 'Evil'") && err.contains("register_layer"),
        "{err}"
    );

    let cycle = rewritten(|a, _| a["nodes"][0]["inbound"] = json!([["out", 0, 0]]));
    assert!(
        load_error(&cycle).contains("dangling or cyclic"),
        "{}",
        load_error(&cycle)
    );

    let dangling = rewritten(|a, _| a["nodes"][1]["inbound"] = json!([["ghost", 0, 0]]));
    assert!(load_error(&dangling).contains("ghost[0][0]"));

    let huge_units = rewritten(|a, _| a["layers"][1]["config"]["units"] = json!(1u64 << 31));
    let err = load_error(&huge_units);
    assert!(
        err.contains("'hidden'") && err.contains("holds more than"),
        "{err}"
    );
    // Within the bound on any weight, but more than the file's tensor data holds.
    let large_units = rewritten(|a, _| a["layers"][1]["config"]["units"] = json!(1u64 << 20));
    let err = load_error(&large_units);
    assert!(
        err.contains("'hidden'") && err.contains("weight values left"),
        "{err}"
    );

    let huge_input = rewritten(|a, _| {
        a["layers"][0]["config"]["batch_shape"] = json!([null, usize::MAX, usize::MAX])
    });
    assert!(load_error(&huge_input).contains("values per sample"));

    let self_nested = rewritten(|a, _| {
        let copy = a.clone();
        a["layers"][1] =
            json!({"id": 9, "name": "small", "class_name": "Functional", "model": copy});
    });
    assert!(load_bytes(&self_nested).is_err());

    let wrong_dtype = rewritten(|_, t| {
        let w = t["hidden/kernel"].to_dtype(DType::F64).unwrap();
        t.insert("hidden/kernel".into(), w);
    });
    let err = load_error(&wrong_dtype);
    assert!(
        err.contains("'hidden/kernel': the model expects F32[3, 2], the file holds F64[3, 2]"),
        "{err}"
    );

    let wrong_shape = rewritten(|_, t| {
        t.insert(
            "out/bias".into(),
            Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        );
    });
    assert!(load_error(&wrong_shape).contains("F32[1], the file holds F32[3]"));
}

#[test]
fn a_header_claiming_a_huge_size_is_refused_before_allocating() {
    let mut bytes = small_model_bytes();
    bytes[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert!(load_error(&bytes).contains("the header claims"));
}

/// `layers` applied in turn to `x`.
fn chain(x: SymbolicTensor, layers: &[&SymbolicFn]) -> SymbolicTensor {
    layers.iter().fold(x, |x, layer| layer(x))
}

#[test]
fn the_convolutional_autoencoder_round_trips() {
    let image = Input::new(&[28, 28, 1]);
    let code = chain(
        image,
        &[
            &*Conv2D::new(128, (7, 7)).activation("relu").padding("same"),
            &*MaxPooling2D::new((2, 2)).padding("same"),
            &*Conv2D::new(32, (2, 2)).activation("relu").padding("same"),
            &*MaxPooling2D::new((2, 2)).padding("same"),
            &*Conv2D::new(1, (7, 7)).activation("relu").padding("same"),
        ],
    );
    let encoder = Model::named("encoder", image, code).unwrap();
    let code_input = Input::new(&[7, 7, 1]);
    let decoded = chain(
        code_input,
        &[
            &*Conv2D::new(32, (7, 7)).activation("relu").padding("same"),
            &*UpSampling2D::new((2, 2)),
            &*Conv2D::new(128, (2, 2)).activation("relu").padding("same"),
            &*UpSampling2D::new((2, 2)),
            &*Conv2D::new(1, (7, 7)).activation("sigmoid").padding("same"),
        ],
    );
    let decoder = Model::named("decoder", code_input, decoded).unwrap();
    let model = Model::named("autoencoder", image, decoder(encoder(image))).unwrap();
    assert_eq!(model.count_params(), 48_770);
    let loaded = round_trip(&model);
    assert_same_predictions(&model, &loaded, &images(7, 2));
    assert!(loaded.get_model("decoder").is_some());
}
