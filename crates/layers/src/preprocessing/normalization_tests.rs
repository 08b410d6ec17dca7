//! `Normalization`'s unit tests: `adapt` against statistics computed by hand, the weights
//! Keras 3 lists, its option checks and configs.

use super::*;
use crate::testing::{assert_close, flat};

fn tensor<const R: usize, const C: usize>(rows: [[f32; C]; R]) -> Tensor {
    Tensor::new(&rows, &Device::Cpu).unwrap()
}

fn layer_of(normalizer: &Normalization) -> Arc<dyn Layer> {
    normalizer.layer().unwrap()
}

fn stats(normalizer: &Normalization) -> (Vec<f32>, Vec<f32>) {
    let layer = layer_of(normalizer);
    let layer = layer.as_any().downcast_ref::<NormalizationLayer>().unwrap();
    (
        flat(&layer.mean().unwrap()),
        flat(&layer.variance().unwrap()),
    )
}

fn infer(normalizer: &Normalization, x: Tensor) -> Vec<f32> {
    let y = layer_of(normalizer)
        .call(&[x], &mut CallContext::new(false))
        .unwrap();
    flat(&y[0])
}

#[test]
fn adapt_takes_each_features_mean_and_population_variance() {
    let normalizer = Normalization::new();
    normalizer.adapt(&tensor([[1., 10.], [3., 30.]])).unwrap();
    // Mean [2, 20]; variance [((1 - 2)² + (3 - 2)²) / 2, ((10 - 20)² + (30 - 20)²) / 2].
    assert_eq!(stats(&normalizer), (vec![2., 20.], vec![1., 100.]));
    // [3, 0] -> [(3 - 2) / 1, (0 - 20) / 10].
    assert_eq!(infer(&normalizer, tensor([[3., 0.]])), [1., -2.]);
    // Adapting again replaces the statistics: [0, 0], [4, 8] -> mean [2, 4], variance [4, 16].
    normalizer.adapt(&tensor([[0., 0.], [4., 8.]])).unwrap();
    assert_eq!(stats(&normalizer), (vec![2., 4.], vec![4., 16.]));
    // Keras 3 leaves `count` at 0.
    let weights = layer_of(&normalizer).weights();
    assert_eq!(flat(&weights[2].var), [0.]);
}

#[test]
fn adapt_reduces_every_axis_but_the_kept_ones() {
    // Keras's docstring: axis=None on [1, 2, 3, 4, 5]: mean 3, variance (4 + 1 + 0 + 1 + 4) / 5
    // = 2; [1, 2, 3] -> [-2 / √2, -1 / √2, 0].
    let scalar = Normalization::new().axes(&[]);
    let data = Tensor::new(&[1f32, 2., 3., 4., 5.], &Device::Cpu).unwrap();
    scalar.adapt(&data).unwrap();
    assert_eq!(stats(&scalar), (vec![3.], vec![2.]));
    let x = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
    let want = [
        -std::f64::consts::SQRT_2,
        -std::f64::consts::FRAC_1_SQRT_2,
        0.,
    ];
    assert_close("axis=None", &infer(&scalar, x), &want, 1e-6);
    // Axis 1 of (2 samples, 2 steps, 2 features): per step, over samples and features.
    // Step 0 holds [0, 2, 4, 6]: mean 3, variance (9 + 1 + 1 + 9) / 4 = 5; step 1 holds
    // [1, 1, 1, 1]: mean 1, variance 0.
    let steps = Normalization::new().axis(1);
    let data = Tensor::new(
        &[[[0f32, 2.], [1., 1.]], [[4., 6.], [1., 1.]]],
        &Device::Cpu,
    )
    .unwrap();
    steps.adapt(&data).unwrap();
    assert_eq!(stats(&steps), (vec![3., 1.], vec![5., 0.]));
    // A variance of 0 divides by epsilon (1e-7), as Keras's `maximum(sqrt(var), epsilon)`:
    // step 1's [1, 1.5] -> [0, 0.5 / 1e-7].
    let x = Tensor::new(&[[[3f32, 3.], [1., 1.5]]], &Device::Cpu).unwrap();
    assert_close("zero variance", &infer(&steps, x), &[0., 0., 0., 5e6], 1e-6);
}

#[test]
fn the_weights_are_keras_3s_non_trainable_mean_variance_and_count() {
    let normalizer = Normalization::new().name("norm");
    let layer = layer_of(&normalizer);
    layer.build(&[SymbolicShape::batched(None, &[9])]).unwrap();
    let listed: Vec<(String, bool, Vec<usize>)> = layer
        .weights()
        .iter()
        .map(|w| (w.path.clone(), w.trainable, w.var.dims().to_vec()))
        .collect();
    let want = |path: &str, dims: &[usize]| (path.to_string(), false, dims.to_vec());
    assert_eq!(
        listed,
        [
            want("mean", &[9]),
            want("variance", &[9]),
            want("count", &[])
        ]
    );
    // Keras's summary for the "Basic regression" normalizer: 19 parameters, none trainable.
    assert_eq!(layer.weights().iter().map(Weight::count).sum::<usize>(), 19);
    // Before adapting: mean 0, variance 1, the identity (Keras 3 raises nothing either).
    let x = tensor([[1.5, -2., 0., 4., 5., 6., 7., 8., 9.]]);
    assert_eq!(infer(&normalizer, x.clone()), flat(&x));
    // Given statistics are no weights.
    let given = Normalization::new()
        .mean(0.0)
        .variance(1.0)
        .layer()
        .unwrap();
    given.build(&[SymbolicShape::batched(None, &[9])]).unwrap();
    assert!(given.weights().is_empty());
}

#[test]
fn adapt_is_refused_where_keras_refuses_it() {
    let err = |result: Result<()>| result.unwrap_err().to_string();
    let given = Normalization::new().mean(1.0).variance(1.0).name("given");
    let message = err(given.adapt(&tensor([[1.]])));
    assert!(
        message.contains("'given'") && message.contains("adapt"),
        "{message}"
    );
    let built = Normalization::new().name("n3");
    built.adapt(&tensor([[1., 2., 3.]])).unwrap();
    let message = err(built.adapt(&tensor([[1., 2.]])));
    assert!(
        message.contains("'n3'") && message.contains("(None, 3)"),
        "{message}"
    );
    let empty = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(err(Normalization::new().adapt(&empty)).contains("at least one sample"));
    // A feature axis must not be the batch: Keras's scalar-per-sample trap.
    let batch = Normalization::new().name("nb");
    let message = err(batch.adapt(&Tensor::new(&[1f32, 2.], &Device::Cpu).unwrap()));
    assert!(
        message.contains("'nb'") && message.contains("batch"),
        "{message}"
    );
    // Calls of another shape, after adapting.
    let wrong = built
        .layer()
        .unwrap()
        .call(&[tensor([[1., 2.]])], &mut CallContext::new(false));
    assert!(wrong.unwrap_err().to_string().contains("(None, 3)"));
}

#[test]
fn bad_options_are_errors_naming_the_layer() {
    let err = |n: Normalization| n.name("bad").layer().err().unwrap().to_string();
    let checks = [
        (err(Normalization::new().mean(1.0)), "both"),
        (
            err(Normalization::new().mean([1.0, 2.0]).variance(1.0)),
            "same shape",
        ),
        (
            err(Normalization::new()
                .mean(vec![vec![1.0]])
                .variance(vec![vec![1.0]])),
            "rank",
        ),
        (
            err(Normalization::new()
                .axes(&[1, 2])
                .mean(vec![vec![1.0], vec![]])
                .variance(vec![vec![1.0], vec![]])),
            "rectangular",
        ),
        (
            err(Normalization::new().mean(0.0).variance(-1.0)),
            "at least 0",
        ),
        (
            err(Normalization::new().mean(f64::NAN).variance(1.0)),
            "finite",
        ),
    ];
    for (message, want) in checks {
        assert!(
            message.contains("'bad'") && message.contains(want),
            "{message}"
        );
    }
    let build = |n: Normalization, dims: &[usize]| {
        let layer = n.name("b").layer().unwrap();
        let message = layer
            .build(&[SymbolicShape::batched(None, dims)])
            .unwrap_err()
            .to_string();
        assert!(message.contains("'b'"), "{message}");
        message
    };
    let mean = Normalization::new().mean([1.0, 2.0]).variance([1.0, 1.0]);
    assert!(build(mean, &[3]).contains("broadcast"));
    assert!(build(Normalization::new().axes(&[1, -1]), &[3]).contains("twice"));
    assert!(build(Normalization::new().axis(2), &[3]).contains("out of range"));
    assert!(build(Normalization::new(), &[0]).contains("size 0"));
}

#[test]
fn configs_are_keras_3s() {
    let config = Normalization::new().name("n").layer().unwrap().config();
    let want = serde_json::json!({
        "name": "n", "trainable": true, "axis": [-1], "mean": null, "variance": null,
        "invert": false,
    });
    assert_eq!(config, want);
    // Keras's own config (its tuple saved as a list, keys rkeras ignores) and the other
    // spellings of `axis` Keras's constructor takes.
    let keras: NormalizationConfig = serde_json::from_value(serde_json::json!({
        "name": "normalization", "trainable": true, "dtype": "float32", "axis": [-1],
        "invert": false, "mean": null, "variance": null,
    }))
    .unwrap();
    assert_eq!(keras, NormalizationConfig::default());
    let axis = |value: serde_json::Value| {
        serde_json::from_value::<NormalizationConfig>(serde_json::json!({ "axis": value }))
            .unwrap()
            .axis
    };
    assert_eq!(axis(serde_json::json!(null)), Vec::<i64>::new());
    assert_eq!(axis(serde_json::json!(2)), [2]);
    assert_eq!(axis(serde_json::json!([1, 2])), [1, 2]);
    let given = Normalization::new()
        .mean(vec![vec![1.0, 2.0]])
        .variance(vec![vec![3.0, 4.0]])
        .axes(&[1, 2])
        .invert(true)
        .layer()
        .unwrap()
        .config();
    assert_eq!(given["mean"], serde_json::json!([[1.0, 2.0]]));
    assert_eq!(given["variance"], serde_json::json!([[3.0, 4.0]]));
    assert_eq!(given["invert"], true);
}

#[test]
fn integer_inputs_become_floats() {
    let normalizer = Normalization::new().mean(100.0).variance(2500.0);
    let bytes = Tensor::new(&[[0u8, 150, 255]], &Device::Cpu).unwrap();
    let layer = layer_of(&normalizer);
    layer.build(&[SymbolicShape::batched(None, &[3])]).unwrap();
    let y = layer.call(&[bytes], &mut CallContext::new(false)).unwrap();
    assert_eq!(y[0].dtype(), DType::F32);
    assert_eq!(flat(&y[0]), [-2., 1., 3.1]);
}
