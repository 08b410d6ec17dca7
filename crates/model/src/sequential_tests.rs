use candle_core::{Device, Tensor};
use rkeras_layers::{Dense, Flatten, Input, Lambda, LayerWeights};

use super::*;

fn names(layers: &[Arc<dyn Layer>]) -> Vec<String> {
    layers
        .iter()
        .map(|l| format!("{} ({})", l.name(), l.class_name()))
        .collect()
}

fn tiny(units: usize) -> Sequential {
    Sequential::new([Input::new(&[3]).into(), Dense::new(units).into()]).unwrap()
}

#[test]
fn stacks_its_items_under_keras_default_names() {
    let model = Sequential::new([
        Input::new(&[2, 2]).into(),
        Flatten::new().into(),
        Dense::new(3).into(),
    ])
    .unwrap();
    let second = tiny(1);
    assert_eq!(
        (model.name(), second.name()),
        ("sequential", "sequential_1")
    );
    assert_eq!(model.class_name(), "Sequential");
    // As Keras's `Sequential.layers`, the input layer is left out.
    assert_eq!(
        names(&model.layers()),
        ["flatten (Flatten)", "dense (Dense)"]
    );
    assert_eq!(model.output_shapes()[0].to_string(), "(None, 3)");
    assert!(model.is_sequential_like());
    let named = Sequential::named("stack", [Input::new(&[1]).into()]).unwrap();
    assert_eq!(named.name(), "stack");
    assert!(named.layers().is_empty());
}

#[test]
fn add_rebuilds_keeping_weights_flag_and_compile_state() {
    let mut model = tiny(2);
    let kernel = model.weights()[0].var.clone();
    *model.extension() = Some(Box::new(7u8));
    model.set_trainable(false);
    model.add(Dense::new(1).name("top")).unwrap();
    assert_eq!(model.count_params(), 8 + 3);
    assert_eq!(
        model.weights()[0].var.as_tensor().id(),
        kernel.as_tensor().id()
    );
    assert!(!model.trainable());
    let carried = model
        .extension()
        .take()
        .and_then(|b| b.downcast::<u8>().ok());
    assert_eq!(carried.as_deref(), Some(&7));
    let top = model.pop().unwrap();
    assert_eq!(top.name(), "top");
    assert_eq!(model.count_params(), 8);
    model.pop().unwrap();
    let err = model.pop().err().unwrap().to_string();
    assert!(err.contains("no layer to pop"), "{err}");
    // With only its input left, the model passes its input through.
    let x = Tensor::new(&[[1f32, 2.0, 3.0]], &Device::Cpu).unwrap();
    assert_eq!(
        model.call(&x).unwrap().to_vec2::<f32>().unwrap(),
        [[1.0, 2.0, 3.0]]
    );
}

#[test]
fn a_failed_add_leaves_the_model_as_it_was() {
    let mut model = tiny(2);
    let before = model.nodes().len();
    let err = model.add(Input::new(&[2])).unwrap_err().to_string();
    assert!(
        err.contains("already been configured to use input shape (None, 3)"),
        "{err}"
    );
    let err = model
        .add(Dense::new(1).name("dense"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'dense' is already the name of a layer"),
        "{err}"
    );
    // A layer already built for another input size.
    let built = Dense::new(1).name("built");
    built(Input::new(&[5]));
    let err = model.add(&built).unwrap_err().to_string();
    assert!(err.contains("layer 'built'"), "{err}");
    let err = model.add(Dense::new(1).activation("nope")).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    assert_eq!(model.nodes().len(), before);
    // The same layer twice is allowed (it shares its weights), as in Keras.
    let square = Dense::new(2).name("square");
    model.add(&square).unwrap();
    model.add(&square).unwrap();
    assert_eq!(model.nodes().len(), before + 2);
    assert!(model.is_sequential_like());
}

#[test]
fn needs_an_input_or_a_model_first() {
    let err = Sequential::new([Dense::new(2).into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs its input shape first"), "{err}");
    let err = Sequential::new([]).unwrap_err().to_string();
    assert!(err.contains("needs its input shape first"), "{err}");
    let input = Input::new(&[3]);
    let hidden = Dense::new(2)(input);
    let err = Sequential::new([hidden.into()]).unwrap_err().to_string();
    assert!(err.contains("not the output of a layer call"), "{err}");
    let (a, b) = (Input::new(&[1]), Input::new(&[1]));
    let two = Model::new([a, b], Dense::new(1)(a)).unwrap();
    let err = Sequential::new([two.into()]).unwrap_err().to_string();
    assert!(err.contains("takes 2 inputs"), "{err}");
}

#[test]
fn a_model_first_gives_its_input_and_nests_as_one_layer() {
    let inner = tiny(4);
    let outer = Sequential::new([(&inner).into(), Dense::new(1).into()]).unwrap();
    assert_eq!(outer.input_shapes()[0].to_string(), "(None, 3)");
    assert_eq!(
        names(&outer.layers()),
        ["sequential (Sequential)", "dense_1 (Dense)"]
    );
    assert_eq!(outer.count_params(), 16 + 5);
    // A Sequential nests in a functional model by call syntax, sharing its weights.
    let input = Input::new(&[3]);
    let functional = Model::new(input, inner(input)).unwrap();
    let x = Tensor::new(&[[1f32, -1.0, 0.5]], &Device::Cpu).unwrap();
    assert_eq!(
        functional.call(&x).unwrap().to_vec2::<f32>().unwrap(),
        inner.call(&x).unwrap().to_vec2::<f32>().unwrap()
    );
    let nested = functional.get_model("sequential").unwrap();
    assert!(nested.is_sequential());
    assert!(Sequential::try_from(nested).is_ok());
    let err = Sequential::try_from(functional).unwrap_err().to_string();
    assert!(err.contains("is a Functional, not a Sequential"), "{err}");
}

#[test]
fn a_layer_with_several_outputs_cannot_be_stacked() {
    let input = Input::new(&[2]);
    let split = Lambda::new(|x: &Tensor| Ok(x.clone()))(input);
    let two = Model::named("two", input, [split, split]).unwrap();
    let mut model = Sequential::new([Input::new(&[2]).into()]).unwrap();
    let err = model.add(&two).unwrap_err().to_string();
    assert!(err.contains("returns 2 tensors"), "{err}");
}

#[test]
fn weights_come_and_go_in_keras_order() {
    let model = Sequential::new([
        Input::new(&[2]).into(),
        Dense::new(2).into(),
        Dense::new(1).into(),
    ])
    .unwrap();
    let weights = model.get_weights().unwrap();
    let dims: Vec<&[usize]> = weights.iter().map(|w| w.dims()).collect();
    assert_eq!(dims, [&[2, 2][..], &[2], &[2, 1], &[1]]);
    let ones: Vec<Tensor> = weights.iter().map(|w| w.ones_like().unwrap()).collect();
    model.set_weights(&ones).unwrap();
    let x = Tensor::new(&[[1f32, 2.0]], &Device::Cpu).unwrap();
    // Each hidden unit: 1 + 2 + 1 = 4; the output: 4 + 4 + 1 = 9.
    assert_eq!(model.call(&x).unwrap().to_vec2::<f32>().unwrap(), [[9.0]]);
    let mut wrong = ones.clone();
    wrong[2] = Tensor::ones((1, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = model.set_weights(&wrong).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer 'sequential': weight 'dense_1/kernel' has shape (2, 1), but set_weights was \
         given shape (1, 2)"
    );
    assert_eq!(model.as_layer().get_weights().unwrap().len(), 4);
}

#[test]
fn a_loaded_graph_must_be_a_stack() {
    let input = Input::new(&[2]);
    let a = Dense::new(2)(input);
    let b = Dense::new(2)(input);
    let graph = Graph::trace(&[input], &[b]).unwrap();
    assert!(sequential_from_graph("ok".into(), graph).is_ok());
    let branching = Graph::trace(&[input], &[a, b]).unwrap();
    let err = sequential_from_graph("fork".into(), branching)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'fork' is a Sequential but not a stack"),
        "{err}"
    );
}
