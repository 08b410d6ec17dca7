//! The recurrent layers beyond the harness: larger forwards against the f64 reference (kernels
//! and candle ops), Keras's parameter counts and initial weights, configs, errors, and the
//! timing of a training step.

use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::gru::GRU;
use super::lstm::LSTM;
use super::options::{Cell, RecurrentConfig};
use super::reference::Reference;
use crate::builder::LayerBuilder;
use crate::record::{differentiate, record_call, WeightGrads};
use crate::testing::{flat, values};
use crate::{CallContext, Input, Layer, SymbolicShape};

/// The layer `builder` makes, built for `features` features, with its weights set to fixed
/// values (returned, flattened).
fn built<C: Cell>(
    builder: &LayerBuilder<RecurrentConfig<C>>,
    features: usize,
) -> (Arc<dyn Layer>, Vec<Vec<f32>>) {
    let layer = builder.layer().unwrap();
    layer
        .build(&[SymbolicShape::batched(None, &[7, features])])
        .unwrap();
    let weights = layer
        .weights()
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let v: Vec<f32> = values(w.count(), 20 + i).iter().map(|x| 0.4 * x).collect();
            w.var
                .set(&Tensor::from_slice(&v, w.var.dims(), &Device::Cpu).unwrap())
                .unwrap();
            v
        })
        .collect();
    (layer, weights)
}

/// The largest difference between `got` and `want` relative to `want`'s largest magnitude
/// (at least 1).
fn error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(g, w)| (*g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

/// Checks the kernels' and candle ops' forwards of `builder`'s layer against the reference,
/// for a batch of `batch` sequences of `steps` steps of `features` features.
fn check_forward<C: Cell>(
    builder: LayerBuilder<RecurrentConfig<C>>,
    (batch, steps, features): (usize, usize, usize),
) {
    let config = builder.config().clone();
    let (layer, weights) = built(&builder, features);
    let x = values(batch * steps * features, 9);
    let input = Tensor::from_slice(&x, (batch, steps, features), &Device::Cpu).unwrap();
    let want = Reference::new(&config, &weights).outputs(&x, batch, steps, &[]);
    let kernel = layer
        .call(std::slice::from_ref(&input), &mut CallContext::new(false))
        .unwrap();
    let composed = rkeras_ops::with_composed_ops(|| {
        layer.call(&[input], &mut CallContext::new(false)).unwrap()
    });
    for (path, outputs) in [("kernel", kernel), ("composed", composed)] {
        assert_eq!(outputs.len(), want.len(), "{path}: outputs");
        for (got, want) in outputs.iter().zip(&want) {
            let e = error(&flat(got), want);
            assert!(
                e < 1e-5,
                "{} {path}: error {e:e} ({config:?})",
                C::CLASS_NAME
            );
        }
    }
}

#[test]
fn kernels_and_candle_ops_match_the_reference() {
    // 5 sequences make one band; 20 make two where two threads run.
    for sizes in [(5, 7, 6), (20, 4, 3)] {
        check_forward(LSTM::new(8), sizes);
        check_forward(
            LSTM::new(8).return_sequences(true).go_backwards(true),
            sizes,
        );
        check_forward(LSTM::new(5).return_state(true).use_bias(false), sizes);
        check_forward(GRU::new(8), sizes);
        check_forward(GRU::new(8).return_sequences(true).return_state(true), sizes);
        check_forward(GRU::new(5).go_backwards(true).use_bias(false), sizes);
    }
}

#[test]
fn mnist_rows_as_sequences_have_keras_parameter_counts() {
    let count =
        |layer: Arc<dyn Layer>| -> usize { layer.weights().iter().map(|w| w.count()).sum() };
    let lstm = LSTM::new(128);
    let rows = Input::new(&[28, 28]);
    assert_eq!(lstm(rows).shape().unwrap().to_string(), "(None, 128)");
    // 4·128·(28 + 128 + 1).
    assert_eq!(count(lstm.layer().unwrap()), 80_384);
    let gru = GRU::new(128).return_sequences(true);
    assert_eq!(gru(rows).shape().unwrap().to_string(), "(None, 28, 128)");
    // 3·128·(28 + 128 + 2).
    assert_eq!(count(gru.layer().unwrap()), 60_672);
    let weights: Vec<(String, Vec<usize>)> = gru
        .layer()
        .unwrap()
        .weights()
        .iter()
        .map(|w| (w.path.clone(), w.var.dims().to_vec()))
        .collect();
    assert_eq!(
        weights,
        [
            ("kernel".to_string(), vec![28, 384]),
            ("recurrent_kernel".to_string(), vec![128, 384]),
            ("bias".to_string(), vec![2, 384]),
        ]
    );
}

#[test]
fn return_state_gives_the_output_then_the_states() {
    let x = Input::new(&[5, 2]);
    let [output, h, c] = LSTM::new(4).return_state(true)(x).unpack();
    for t in [output, h, c] {
        assert_eq!(t.shape().unwrap().to_string(), "(None, 4)");
    }
    let [sequence, state] = GRU::new(3).return_sequences(true).return_state(true)(x).unpack();
    assert_eq!(sequence.shape().unwrap().to_string(), "(None, 5, 3)");
    assert_eq!(state.shape().unwrap().to_string(), "(None, 3)");
    // A decoder started from an encoder's states.
    let decoded = LSTM::new(4)([x, h, c].into());
    assert_eq!(decoded.shape().unwrap().to_string(), "(None, 4)");
    // Variable-length sequences.
    let any_length = Input::from_shape(SymbolicShape(vec![None, None, Some(2)]), None);
    let seq = LSTM::new(3).return_sequences(true)(any_length);
    assert_eq!(seq.shape().unwrap().to_string(), "(None, None, 3)");
}

#[test]
fn initial_weights_follow_keras() {
    crate::session::set_random_seed(4);
    let layer = LSTM::new(6).layer().unwrap();
    layer
        .build(&[SymbolicShape::batched(None, &[3, 5])])
        .unwrap();
    let weights = layer.weights();
    // The recurrent kernel (6, 24) has orthonormal rows.
    let r = flat(weights[1].var.as_tensor());
    for i in 0..6 {
        for j in 0..6 {
            let dot: f64 = (0..24)
                .map(|k| r[i * 24 + k] as f64 * r[j * 24 + k] as f64)
                .sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-5, "R Rᵀ[{i}, {j}] = {dot}");
        }
    }
    // unit_forget_bias: zeros, then ones for the forget gate, then zeros.
    let bias = flat(weights[2].var.as_tensor());
    let mut want = vec![0.0; 24];
    want[6..12].fill(1.0);
    assert_eq!(bias, want);
    let plain = LSTM::new(6).unit_forget_bias(false).layer().unwrap();
    plain
        .build(&[SymbolicShape::batched(None, &[3, 5])])
        .unwrap();
    assert!(flat(plain.weights()[2].var.as_tensor())
        .iter()
        .all(|&b| b == 0.0));
}

#[test]
fn configs_round_trip_and_read_keras_extra_keys() {
    let lstm = LSTM::new(3)
        .return_sequences(true)
        .go_backwards(true)
        .name("seq");
    let config = lstm.layer().unwrap().config();
    assert_eq!(config["units"], 3);
    assert_eq!(config["recurrent_initializer"]["class_name"], "Orthogonal");
    assert_eq!(config["unit_forget_bias"], true);
    assert_eq!(config["return_sequences"], true);
    let mut keras = config.clone();
    // Keys Keras writes that the layer does without.
    keras["zero_output_for_mask"] = false.into();
    keras["seed"] = serde_json::Value::Null;
    keras["unroll"] = true.into();
    let class = crate::registry::builtin_classes()
        .into_iter()
        .find(|c| c.class_name == "LSTM")
        .unwrap();
    let remade = (class.from_config)(&keras).unwrap();
    assert_eq!(remade.name(), "seq");
    assert_eq!(remade.config()["go_backwards"], true);
    let gru = GRU::new(2).layer().unwrap().config();
    assert_eq!(gru["reset_after"], true);
}

#[test]
fn unsupported_options_and_bad_inputs_are_errors_naming_the_layer() {
    let message =
        |builder: Result<Arc<dyn Layer>, crate::Error>| builder.err().unwrap().to_string();
    let err = message(LSTM::new(3).dropout(0.2).name("drop").layer());
    assert!(err.contains("'drop'") && err.contains("dropout"), "{err}");
    let err = message(GRU::new(3).recurrent_dropout(0.2).layer());
    assert!(err.contains("recurrent_dropout"), "{err}");
    let err = message(GRU::new(3).reset_after(false).layer());
    assert!(err.contains("reset_after"), "{err}");
    let err = message(LSTM::new(0).layer());
    assert!(err.contains("units"), "{err}");
    let mut stateful = LSTM::new(3).config().clone();
    stateful.stateful = true;
    assert!(message(crate::LayerConfig::builder(stateful).layer()).contains("stateful"));
    let flat_input = LSTM::new(3).name("flat")(Input::new(&[4]));
    let err = flat_input.shape().unwrap_err().to_string();
    assert!(err.contains("'flat'") && err.contains("timesteps"), "{err}");
    let x = Input::new(&[5, 2]);
    let two_inputs = LSTM::new(3)([x, x].into()).shape().unwrap_err().to_string();
    assert!(two_inputs.contains("state_h, state_c"), "{two_inputs}");
    let (layer, _) = built(&GRU::new(3), 4);
    let wrong = Tensor::zeros((2, 7, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(layer.call(&[wrong], &mut CallContext::new(false)).is_err());
    let empty = Tensor::zeros((2, 0, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(layer.call(&[empty], &mut CallContext::new(false)).is_err());
}

/// The median of `runs` timings of `f`, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// One training step of `layer` (forward recorded, backward from `grad`), as `fit` runs it.
fn training_step(layer: &dyn Layer, x: &Tensor, grad: &Tensor) {
    let vars: Vec<_> = layer.weights().into_iter().map(|w| w.var).collect();
    let mut ctx = CallContext::recording();
    let record = record_call(layer, std::slice::from_ref(x), &mut ctx).unwrap();
    let mut grads = WeightGrads::new(&vars);
    differentiate(
        layer,
        record,
        std::slice::from_ref(grad),
        &[false],
        &mut grads,
    )
    .unwrap();
    assert!(vars.iter().all(|v| grads.get(v).is_some()));
}

/// Run with `cargo test -p rkeras-layers --release -- --ignored --nocapture recurrent_timing`.
#[test]
#[ignore]
fn recurrent_timing() {
    let (batch, steps, features, units) = (128, 28, 28, 128);
    let x = Tensor::from_vec(
        values(batch * steps * features, 3),
        (batch, steps, features),
        &Device::Cpu,
    )
    .unwrap()
    .affine(0.5, 0.5)
    .unwrap();
    let grad = Tensor::from_vec(values(batch * units, 4), (batch, units), &Device::Cpu).unwrap();
    let report = |name: &str, layer: &dyn Layer, reference: Vec<Vec<f64>>| {
        let forward = || {
            layer
                .call(std::slice::from_ref(&x), &mut CallContext::new(false))
                .unwrap()
        };
        let e = error(&flat(&forward()[0]), &reference[0]);
        let kernel_step = median_ms(7, || training_step(layer, &x, &grad));
        let kernel_forward = median_ms(7, || drop(forward()));
        let composed_step =
            rkeras_ops::with_composed_ops(|| median_ms(3, || training_step(layer, &x, &grad)));
        let composed_forward = rkeras_ops::with_composed_ops(|| median_ms(3, || drop(forward())));
        println!(
            "{name} on ({batch}, {steps}, {features}), {} threads: training step {kernel_step:.1} ms \
             with the kernels, {composed_step:.1} ms composed; inference {kernel_forward:.1} ms vs \
             {composed_forward:.1} ms; forward vs f64 reference: largest error {e:.1e} (relative \
             to the largest output)",
            rkeras_ops::worker_threads()
        );
    };
    let lstm = LSTM::new(units);
    let (layer, weights) = built(&lstm, features);
    let xs = flat(&x);
    let reference = Reference::new(lstm.config(), &weights).outputs(&xs, batch, steps, &[]);
    report("LSTM(128)", layer.as_ref(), reference);
    let gru = GRU::new(units);
    let (layer, weights) = built(&gru, features);
    let reference = Reference::new(gru.config(), &weights).outputs(&xs, batch, steps, &[]);
    report("GRU(128)", layer.as_ref(), reference);
}
