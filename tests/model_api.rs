//! Keras's everyday model helpers: `get_weights` / `set_weights`, calling a model on tensors,
//! `load_weights` matched by structure, `keras.utils.to_categorical`, and models built from
//! `model.input` and `layer.output`.

use std::collections::HashMap;
use std::path::PathBuf;

use rkeras::prelude::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rkeras-model-api-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The same architecture each call: 4 -> 3 -> 2, with fresh weights and new default names.
fn mlp(units: usize) -> rkeras::Result<Model> {
    let input = Input::new(&[4]);
    let hidden = Dense::new(units).activation("relu")(input);
    Ok(Model::new(input, Dense::new(2)(hidden))?)
}

fn samples() -> rkeras::Result<Tensor> {
    let values: Vec<f32> = (0..20).map(|i| (i as f32 * 0.37).sin()).collect();
    Ok(Tensor::from_vec(values, (5, 4), &Device::Cpu)?)
}

fn same(a: &Tensor, b: &Tensor) -> rkeras::Result<bool> {
    Ok(a.dims() == b.dims()
        && a.flatten_all()?.to_vec1::<f32>()? == b.flatten_all()?.to_vec1::<f32>()?)
}

#[test]
fn get_and_set_weights_on_layers_and_models_in_keras_order() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let a = mlp(3)?;
    let b = mlp(3)?;
    let weights = a.get_weights()?;
    let dims: Vec<&[usize]> = weights.iter().map(|w| w.dims()).collect();
    assert_eq!(dims, [&[4, 3][..], &[3], &[3, 2], &[2]]);
    b.set_weights(&weights)?;
    let x = samples()?;
    assert!(same(&a.call(&x)?, &b.call(&x)?)?);
    // One layer at a time, through the layer itself.
    let dense = b.get_layer("dense_3").expect("b's output layer");
    dense.set_weights(&[weights[2].zeros_like()?, weights[3].ones_like()?])?;
    assert_eq!(b.call(&x)?.to_vec2::<f32>()?, vec![vec![1.0, 1.0]; 5]);
    let err = dense.set_weights(&weights[..2]).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer 'dense_3': weight 'kernel' has shape (3, 2), but set_weights was given shape (4, 3)"
    );
    let err = b.set_weights(&weights[..3]).unwrap_err().to_string();
    assert!(
        err.contains("set_weights was given a list of 3 weight(s), but the layer has 4"),
        "{err}"
    );
    Ok(())
}

#[test]
fn calling_a_model_on_tensors_runs_inference() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let model = mlp(3)?;
    let x = samples()?;
    assert!(same(&model.call(&x)?, &model.predict(&x, None)?)?);
    // Any dtype goes in, as Keras converts inputs to the model's.
    assert!(same(
        &model.call(&x.to_dtype(DType::F64)?)?,
        &model.call(&x)?
    )?);
    let (left, right) = (Input::new(&[2]), Input::new(&[3]));
    let both = Model::new([left, right], [Dense::new(1)(left), Dense::new(2)(right)])?;
    let outputs = both.call_list(&[
        Tensor::ones((4, 2), DType::F32, &Device::Cpu)?,
        Tensor::ones((4, 3), DType::F32, &Device::Cpu)?,
    ])?;
    let dims: Vec<&[usize]> = outputs.iter().map(|t| t.dims()).collect();
    assert_eq!(dims, [&[4, 1][..], &[4, 2]]);
    let err = both.call(&x).unwrap_err().to_string();
    assert!(err.contains("takes 2 input(s)"), "{err}");
    Ok(())
}

#[test]
fn load_weights_matches_by_structure_not_by_name() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let dir = temp_dir("structure");
    let saved = mlp(3)?;
    let path = dir.join("mlp.weights.safetensors");
    saved.save_weights(&path)?;
    // A second model built alike: its layers are dense_2 and dense_3.
    let twin = mlp(3)?;
    assert_eq!(
        twin.get_layer("dense_2").map(|l| l.class_name()),
        Some("Dense")
    );
    twin.load_weights(&path)?;
    let x = samples()?;
    assert!(same(&twin.call(&x)?, &saved.call(&x)?)?);
    // A full save loads the same way.
    let full = dir.join("mlp.safetensors");
    saved.save(&full)?;
    let sequential = Sequential::new([
        Input::new(&[4]).into(),
        Dense::new(3).activation("relu").into(),
        Dense::new(2).into(),
    ])?;
    sequential.load_weights(&full)?;
    assert!(same(&sequential.call(&x)?, &saved.call(&x)?)?);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn a_different_structure_is_an_error_naming_the_weights_and_shapes() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let dir = temp_dir("mismatch");
    let path = dir.join("mlp.weights.safetensors");
    mlp(3)?.save_weights(&path)?;
    let wider = mlp(5)?;
    let before = wider.get_weights()?;
    let err = wider.load_weights(&path).unwrap_err().to_string();
    for expected in [
        "weight 'dense_2/kernel (at layers/dense/vars/0)': the model expects F32[4, 5], the file \
         holds F32[4, 3]",
        "weight 'dense_3/kernel (at layers/dense_1/vars/0)': the model expects F32[5, 2], the \
         file holds F32[3, 2]",
    ] {
        assert!(err.contains(expected), "{err}");
    }
    // Nothing was loaded.
    for (now, then) in wider.get_weights()?.iter().zip(&before) {
        assert!(same(now, then)?);
    }
    let input = Input::new(&[4]);
    let shallow = Model::new(input, Dense::new(3).activation("relu")(input))?;
    let err = shallow.load_weights(&path).unwrap_err().to_string();
    assert!(
        err.contains("unexpected tensor 'dense_1/kernel (at layers/dense_1/vars/0)'"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn a_file_without_structure_loads_by_name() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let dir = temp_dir("by-name");
    let model = mlp(3)?;
    let tensors: HashMap<String, Tensor> = model
        .weights()
        .into_iter()
        .map(|w| Ok((w.path, w.var.as_tensor().ones_like()?)))
        .collect::<rkeras::Result<_>>()?;
    let path = dir.join("foreign.safetensors");
    rkeras::candle::safetensors::save(&tensors, &path)?;
    model.load_weights(&path)?;
    assert!(model.get_weights()?.iter().all(|w| w
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .all(|&v| v == 1.0)));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn to_categorical_is_keras_utils_to_categorical() -> rkeras::Result<()> {
    let labels = Tensor::new(&[[3u8], [0], [1]], &Device::Cpu)?;
    let one_hot = rkeras::utils::to_categorical(&labels, None)?;
    assert_eq!(
        one_hot.to_vec2::<f32>()?,
        [
            [0.0, 0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0]
        ]
    );
    assert_eq!(rkeras::utils::to_categorical(&labels, 10)?.dims(), [3, 10]);
    Ok(())
}

#[test]
fn a_feature_extractor_from_a_layer_output_shares_the_trained_weights() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let model = mlp(3)?;
    assert_eq!(model.input(), model.inputs()[0]);
    let hidden = model.get_layer("dense").expect("the hidden layer");
    let features = Model::new(model.input(), hidden.output())?;
    assert_eq!(features.output_shapes()[0].to_string(), "(None, 3)");
    // By hand: relu(x · kernel + bias) with the model's own weights.
    let weights = model.get_weights()?;
    let x = samples()?;
    let expected = x.matmul(&weights[0])?.broadcast_add(&weights[1])?.relu()?;
    assert!(same(&features.call(&x)?, &expected)?);
    // The weights are shared: training the model changes what the extractor computes.
    model.compile("sgd", "mse")?;
    model.fit(&x, &x.narrow(1, 0, 2)?, FitOptions::new().verbose(0))?;
    assert!(!same(&features.call(&x)?, &expected)?);
    Ok(())
}

#[test]
fn layers_of_loaded_and_sequential_models_have_outputs() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let path = temp_dir("layer-output").join("mlp.safetensors");
    let saved = mlp(3)?;
    saved.save(&path)?;
    rkeras::utils::clear_session();
    let loaded = rkeras::load_model(&path)?;
    let hidden = loaded.get_layer("dense").expect("the hidden layer");
    let features = Model::new(loaded.inputs(), hidden.output())?;
    let x = samples()?;
    let weights = saved.get_weights()?;
    let expected = x.matmul(&weights[0])?.broadcast_add(&weights[1])?.relu()?;
    assert!(same(&features.call(&x)?, &expected)?);

    let sequential = Sequential::new([
        Input::new(&[4]).into(),
        Dense::new(5).activation("relu").into(),
        Dense::new(2).into(),
    ])?;
    let first = &sequential.layers()[0];
    let truncated = Model::new(sequential.input(), first.output())?;
    assert_eq!(truncated.output_shapes()[0].to_string(), "(None, 5)");
    let weights = first.get_weights()?;
    let expected = x.matmul(&weights[0])?.broadcast_add(&weights[1])?.relu()?;
    assert!(same(&truncated.call(&x)?, &expected)?);
    Ok(())
}
