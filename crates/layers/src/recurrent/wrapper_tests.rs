//! The wrappers beyond the harness: Keras's nested configs and names, loading a config Keras
//! writes, the weights round trip through a config, errors, and a shared wrapped layer.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde_json::json;

use super::bidirectional::Bidirectional;
use super::gru::GRU;
use super::lstm::LSTM;
use super::simple_rnn::SimpleRNN;
use super::time_distributed::{TimeDistributed, TimeDistributedLayer};
use crate::core::dense::Dense;
use crate::registry::builtin_classes;
use crate::testing::{flat, values};
use crate::{CallContext, Input, Layer, LayerWeights, SymbolicShape};

/// The layer a loader makes from `layer`'s config, its weights copied: outputs must agree.
fn reloaded(layer: &Arc<dyn Layer>) -> Arc<dyn Layer> {
    let class = builtin_classes()
        .into_iter()
        .find(|c| c.class_name == layer.class_name())
        .expect("registered");
    (class.from_config)(&layer.config()).expect("loads")
}

/// Builds `layer` for `shape`, sets its weights to fixed values, and checks that a layer made
/// from its config with its weights gives the same outputs on `x`.
fn check_round_trip(layer: &Arc<dyn Layer>, shape: &[usize], x: &Tensor) {
    layer.build(&[SymbolicShape::batched(None, shape)]).unwrap();
    let weights: Vec<Tensor> = layer
        .get_weights()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, w)| Tensor::from_vec(values(w.elem_count(), i + 3), w.dims(), &Device::Cpu))
        .collect::<candle_core::Result<_>>()
        .unwrap();
    layer.set_weights(&weights).unwrap();
    let copy = reloaded(layer);
    copy.build(&[SymbolicShape::batched(None, shape)]).unwrap();
    copy.set_weights(&layer.get_weights().unwrap()).unwrap();
    assert_eq!(copy.config(), layer.config());
    let call = |l: &Arc<dyn Layer>| {
        l.call(std::slice::from_ref(x), &mut CallContext::new(false))
            .unwrap()
    };
    for (a, b) in call(layer).iter().zip(&call(&copy)) {
        assert_eq!(flat(a), flat(b));
    }
}

#[test]
fn bidirectional_saves_both_layers_as_keras_nests_them() {
    let layer = Bidirectional::new(LSTM::new(2).name("enc"))
        .name("bi")
        .layer()
        .unwrap();
    layer
        .build(&[SymbolicShape::batched(None, &[5, 3])])
        .unwrap();
    let config = layer.config();
    assert_eq!(config["merge_mode"], "concat");
    for (key, name, backwards) in [
        ("layer", "forward_enc", false),
        ("backward_layer", "backward_enc", true),
    ] {
        assert_eq!(config[key]["module"], "keras.layers");
        assert_eq!(config[key]["class_name"], "LSTM");
        assert_eq!(config[key]["config"]["name"], name);
        assert_eq!(config[key]["config"]["go_backwards"], backwards);
    }
    let paths: Vec<String> = layer.weights().into_iter().map(|w| w.path).collect();
    assert_eq!(
        paths,
        [
            "forward_enc/kernel",
            "forward_enc/recurrent_kernel",
            "forward_enc/bias",
            "backward_enc/kernel",
            "backward_enc/recurrent_kernel",
            "backward_enc/bias"
        ]
    );
    let x = Tensor::from_vec(values(2 * 5 * 3, 1), (2, 5, 3), &Device::Cpu).unwrap();
    check_round_trip(&layer, &[5, 3], &x);
}

#[test]
fn bidirectional_loads_the_config_keras_writes() {
    let gru = GRU::new(4).name("gru").layer().unwrap().config();
    let config = json!({
        "name": "bidirectional", "trainable": true, "dtype": "float32", "merge_mode": "sum",
        "layer": {"module": "keras.layers", "class_name": "GRU", "config": gru,
                  "registered_name": null, "build_config": {"input_shape": [null, 5, 3]}},
    });
    let class = builtin_classes()
        .into_iter()
        .find(|c| c.class_name == "Bidirectional")
        .unwrap();
    let layer = (class.from_config)(&config).unwrap();
    let shapes = layer
        .build(&[SymbolicShape::batched(None, &[5, 3])])
        .unwrap();
    assert_eq!(shapes[0].to_string(), "(None, 4)");
    let saved = layer.config();
    assert_eq!(saved["layer"]["config"]["name"], "forward_gru");
    assert_eq!(saved["backward_layer"]["config"]["name"], "backward_gru");
    assert_eq!(saved["merge_mode"], "sum");
    let none = json!({"name": "b", "merge_mode": null, "layer": config["layer"].clone()});
    let layer = (class.from_config)(&none).unwrap();
    assert_eq!(
        layer
            .build(&[SymbolicShape::batched(None, &[5, 3])])
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn bidirectional_refuses_what_keras_refuses() {
    let error = |builder: Bidirectional| builder.layer().err().expect("an error").to_string();
    let message = error(Bidirectional::new(LSTM::new(2).go_backwards(true)));
    assert!(message.contains("go_backwards"), "{message}");
    let message = error(Bidirectional::new(Dense::new(2)));
    assert!(message.contains("recurrent"), "{message}");
    let message = error(Bidirectional::new(LSTM::new(2)).merge_mode("max"));
    assert!(message.contains("merge_mode"), "{message}");
    let message = error(Bidirectional::new(LSTM::new(0)));
    assert!(message.contains("units"), "{message}");
    let message =
        error(Bidirectional::new(GRU::new(2)).backward_layer(GRU::new(2).return_sequences(true)));
    assert!(message.contains("go_backwards"), "{message}");
    let message = error(
        Bidirectional::new(GRU::new(2))
            .backward_layer(GRU::new(2).go_backwards(true).return_sequences(true)),
    );
    assert!(message.contains("return_sequences"), "{message}");
    let layer = Bidirectional::new(SimpleRNN::new(2)).layer().unwrap();
    let states = SymbolicShape::batched(None, &[2]);
    let sequences = SymbolicShape::batched(None, &[4, 3]);
    assert!(layer.build(&[sequences.clone(), states]).is_err());
    assert!(layer.build(&[SymbolicShape::batched(None, &[3])]).is_err());
}

#[test]
fn a_given_backward_layer_is_used_as_it_is() {
    let backward = SimpleRNN::new(3)
        .activation("relu")
        .go_backwards(true)
        .name("back");
    let layer = Bidirectional::new(SimpleRNN::new(3))
        .backward_layer(backward)
        .merge_mode("mul")
        .layer()
        .unwrap();
    layer
        .build(&[SymbolicShape::batched(None, &[4, 2])])
        .unwrap();
    let config = layer.config();
    assert_eq!(config["backward_layer"]["config"]["name"], "back");
    assert_eq!(config["backward_layer"]["config"]["activation"], "relu");
    let x = Tensor::from_vec(values(2 * 4 * 2, 2), (2, 4, 2), &Device::Cpu).unwrap();
    check_round_trip(&layer, &[4, 2], &x);
}

#[test]
fn time_distributed_wraps_the_layer_itself_and_passes_its_flag_down() {
    let dense = Dense::new(3).name("per_step");
    let wrapper = TimeDistributed::new(&dense);
    let y = wrapper(Input::new(&[4, 2]));
    assert_eq!(y.shape().unwrap().to_string(), "(None, 4, 3)");
    let layer = wrapper.layer().unwrap();
    let inner = layer
        .as_any()
        .downcast_ref::<TimeDistributedLayer>()
        .unwrap()
        .layer()
        .clone();
    assert!(Arc::ptr_eq(&inner, &dense.layer().unwrap()));
    assert_eq!(
        layer.config()["layer"]["config"]["name"],
        "per_step",
        "Keras keeps the wrapped layer's name"
    );
    layer.set_trainable(false);
    assert!(!inner.trainable());
    assert!(layer.weights().iter().all(|w| !w.trainable));
    assert_eq!(layer.weights()[0].path, "per_step/kernel");
    layer.set_trainable(true);
    let x = Tensor::from_vec(values(2 * 4 * 2, 1), (2, 4, 2), &Device::Cpu).unwrap();
    check_round_trip(&layer, &[4, 2], &x);
}

#[test]
fn time_distributed_needs_a_time_axis() {
    let layer = TimeDistributed::new(Dense::new(2)).layer().unwrap();
    let message = layer
        .build(&[SymbolicShape::batched(None, &[3])])
        .unwrap_err()
        .to_string();
    assert!(message.contains("timesteps"), "{message}");
    let x = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let layer = TimeDistributed::new(Dense::new(2)).layer().unwrap();
    layer
        .build(&[SymbolicShape::batched(None, &[5, 3])])
        .unwrap();
    assert!(layer.call(&[x], &mut CallContext::new(false)).is_err());
}
