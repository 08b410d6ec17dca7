//! The harness every built-in layer passes (Keras's `run_layer_test`), for custom layers too.
//!
//! A [`LayerCase`] names a layer, the shapes it is called on and what Keras says of it (output
//! shape, weight counts, parameter count by Keras's formula), and optionally inputs with the
//! outputs computed independently in the test. [`run_case`] then checks:
//! - the built output shape, the weight counts and the parameter count;
//! - the config: it names the layer, and (with the layer's [`LayerClass`]) a layer made from it
//!   has the same config;
//! - the forward pass against the independent outputs;
//! - the backward pass of the training path (the layer's own, or candle's autograd over the
//!   call) against central finite differences, and against candle's autograd over the call,
//!   every training call drawing from one random stream (so a dropout draws one mask);
//! - the composed implementation other devices run (see [`rkeras_ops::with_composed_ops`])
//!   against the kernels, forward and backward.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};

use crate::record::{
    differentiate, differentiate_locally, record_call, record_for_autograd, WeightGrads,
};
use crate::registry::{builtin_classes, LayerClass};
use crate::session::with_stream;
use crate::symbolic::call_layer;
use crate::{CallContext, Input, Layer, Result};

/// One layer and what Keras says of it; see the module documentation.
pub struct LayerCase {
    layer: Arc<dyn Layer>,
    input_shapes: Vec<Vec<usize>>,
    output_shapes: Vec<String>,
    weights: (usize, usize),
    params: usize,
    weight_values: Option<Vec<Vec<f32>>>,
    forward: Option<(Vec<Tensor>, Vec<Vec<f64>>)>,
    integer_inputs: Option<usize>,
}

impl LayerCase {
    /// A case for `layer` (made, not yet built), called on inputs of `input_shapes` (batch
    /// excluded), with no weights and outputs of the inputs' shapes until said otherwise.
    pub fn new(layer: Arc<dyn Layer>, input_shapes: &[&[usize]]) -> Self {
        LayerCase {
            layer,
            input_shapes: input_shapes.iter().map(|s| s.to_vec()).collect(),
            output_shapes: Vec::new(),
            weights: (0, 0),
            params: 0,
            weight_values: None,
            forward: None,
            integer_inputs: None,
        }
    }

    /// The output shapes as `summary()` prints them: `"(None, 3)"`.
    pub fn output_shapes(mut self, shapes: &[&str]) -> Self {
        self.output_shapes = shapes.iter().map(|s| s.to_string()).collect();
        self
    }

    /// How many trainable and non-trainable weight tensors the built layer has, and its number
    /// of parameters (from Keras's formula, written out in the case).
    pub fn weights(mut self, trainable: usize, non_trainable: usize, params: usize) -> Self {
        self.weights = (trainable, non_trainable);
        self.params = params;
        self
    }

    /// Values the weights take once built (in the order of `weights()`, each flattened), so
    /// that [`LayerCase::forward`]'s outputs can be computed by hand.
    pub fn weight_values(mut self, values: Vec<Vec<f32>>) -> Self {
        self.weight_values = Some(values);
        self
    }

    /// Inputs (batch included) and the outputs an inference call must return, computed
    /// independently of the layer.
    pub fn forward(mut self, inputs: Vec<Tensor>, outputs: Vec<Vec<f64>>) -> Self {
        self.forward = Some((inputs, outputs));
        self
    }

    /// Inputs that are indices (an `Embedding`'s): the gradient checks feed integers in
    /// `0..max` (as f32), and check that no gradient reaches them instead of comparing one with
    /// finite differences, which would step from one index to the next.
    pub fn integer_inputs(mut self, max: usize) -> Self {
        self.integer_inputs = Some(max);
        self
    }
}

/// Runs every case of a built-in layer of class `class_name`; panics with what failed.
pub fn run_cases(class_name: &str, cases: Vec<LayerCase>) {
    assert!(!cases.is_empty(), "{class_name}: no harness case");
    let class = builtin_classes()
        .into_iter()
        .find(|c| c.class_name == class_name);
    for case in cases {
        assert_eq!(case.layer.class_name(), class_name, "case of another class");
        run_case(case, class);
    }
}

/// Runs one case; `class` (when the layer is registered) checks the config round trip.
pub fn run_case(case: LayerCase, class: Option<LayerClass>) {
    let layer = case.layer.clone();
    let name = layer.name().to_string();
    check_build(&case, &name);
    check_config(layer.as_ref(), class, &name);
    if let Some((inputs, expected)) = &case.forward {
        let outputs = layer
            .call(inputs, &mut CallContext::new(false))
            .unwrap_or_else(|e| panic!("{name}: forward: {e}"));
        assert_eq!(outputs.len(), expected.len(), "{name}: output count");
        for (output, expected) in outputs.iter().zip(expected) {
            assert_close(&format!("{name} forward"), &flat(output), expected, 1e-5);
        }
    }
    check_gradients(
        layer.as_ref(),
        &case.input_shapes,
        case.integer_inputs,
        &name,
    );
}

fn check_build(case: &LayerCase, name: &str) {
    let inputs: Vec<_> = case.input_shapes.iter().map(|s| Input::new(s)).collect();
    let shapes: Vec<String> = call_layer(&case.layer, &inputs)
        .iter()
        .map(|t| {
            t.shape()
                .unwrap_or_else(|e| panic!("{name}: build: {e}"))
                .to_string()
        })
        .collect();
    assert_eq!(shapes, case.output_shapes, "{name}: output shapes");
    let weights = case.layer.weights();
    let trainable = weights.iter().filter(|w| w.trainable).count();
    assert_eq!(
        (trainable, weights.len() - trainable),
        case.weights,
        "{name}: trainable and non-trainable weights"
    );
    let params: usize = weights.iter().map(|w| w.count()).sum();
    assert_eq!(params, case.params, "{name}: parameter count");
    if let Some(values) = &case.weight_values {
        assert_eq!(values.len(), weights.len(), "{name}: weight values");
        for (weight, values) in weights.iter().zip(values) {
            let t = Tensor::from_slice(values, weight.var.dims(), &Device::Cpu).expect("weight");
            weight.var.set(&t).expect("set weight");
        }
    }
}

fn check_config(layer: &dyn Layer, class: Option<LayerClass>, name: &str) {
    let config = layer.config();
    assert_eq!(config["name"], name, "{name}: config names the layer");
    if let Some(class) = class {
        let remade = (class.from_config)(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(remade.class_name(), layer.class_name(), "{name}: class");
        assert_eq!(remade.config(), config, "{name}: config round trip");
    }
}

/// A batch of 2 inputs of `shapes` (integers below `integer_inputs` when given), and the
/// gradients of `sum(outputs · r) + added losses` (with fixed `r`) three ways: the training path,
/// candle's autograd over the call, and the training path on the composed implementation; all
/// against finite differences (zero for integer inputs).
fn check_gradients(
    layer: &dyn Layer,
    shapes: &[Vec<usize>],
    integer_inputs: Option<usize>,
    name: &str,
) {
    let inputs: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, dims)| {
            let mut shape = vec![2];
            shape.extend_from_slice(dims);
            let count = shape.iter().product();
            let values = match integer_inputs {
                Some(max) => (0..count)
                    .map(|at| ((at * 7 + i * 3) % max.max(1)) as f32)
                    .collect(),
                None => values(count, i + 1),
            };
            Tensor::from_vec(values, shape, &Device::Cpu).expect("input")
        })
        .collect();
    let outputs = with_stream(STREAM, || layer.call(&inputs, &mut CallContext::new(true)))
        .unwrap_or_else(|e| panic!("{name}: call: {e}"));
    let weights: Vec<Var> = layer.weights().into_iter().map(|w| w.var).collect();
    let r: Vec<Tensor> = outputs
        .iter()
        .enumerate()
        .map(|(i, y)| {
            Tensor::from_vec(values(y.elem_count(), 10 + i), y.dims(), &Device::Cpu).expect("r")
        })
        .collect();
    let training = gradients(layer, &inputs, &weights, &r, Path::Training)
        .unwrap_or_else(|e| panic!("{name}: training path: {e}"));
    let autograd = gradients(layer, &inputs, &weights, &r, Path::Autograd)
        .unwrap_or_else(|e| panic!("{name}: autograd over the call: {e}"));
    let composed = rkeras_ops::with_composed_ops(|| {
        let outputs = with_stream(STREAM, || layer.call(&inputs, &mut CallContext::new(true)))?;
        let grads = gradients(layer, &inputs, &weights, &r, Path::Training)?;
        Ok::<_, crate::Error>((outputs, grads))
    })
    .unwrap_or_else(|e| panic!("{name}: composed implementation: {e}"));
    for (kernel, composed) in outputs.iter().zip(&composed.0) {
        let want: Vec<f64> = flat(kernel).iter().map(|&v| v as f64).collect();
        assert_close(
            &format!("{name} composed forward"),
            &flat(composed),
            &want,
            1e-5,
        );
    }
    for (i, ((train, auto), comp)) in training.iter().zip(&autograd).zip(&composed.1).enumerate() {
        let what = if i < inputs.len() {
            format!("{name} d/dinput{i}")
        } else {
            format!("{name} d/dweight{}", i - inputs.len())
        };
        let want: Vec<f64> = train.iter().map(|&v| v as f64).collect();
        assert_close(
            &format!("{what} (autograd over the call)"),
            auto,
            &want,
            1e-4,
        );
        assert_close(&format!("{what} (composed)"), comp, &want, 1e-4);
    }
    let mut leaves: Vec<Var> = inputs
        .iter()
        .map(|x| Var::from_tensor(x).expect("var"))
        .collect();
    leaves.extend(weights);
    for (i, (var, analytic)) in leaves.iter().zip(&training).enumerate() {
        if i < inputs.len() && integer_inputs.is_some() {
            assert!(
                analytic.iter().all(|&g| g == 0.0),
                "{name}: a gradient reaches the integer input{i}"
            );
            continue;
        }
        let objective = |var_values: &[f32]| -> f64 {
            let t = Tensor::from_slice(var_values, var.dims(), &Device::Cpu).expect("t");
            var.set(&t).expect("set");
            let x: Vec<Tensor> = leaves[..inputs.len()]
                .iter()
                .map(|v| v.as_tensor().detach())
                .collect();
            let mut ctx = CallContext::new(true);
            let y = with_stream(STREAM, || layer.call(&x, &mut ctx)).expect("call");
            scalar_objective(&y, &r, ctx.losses()).expect("objective")
        };
        let original = flat(var.as_tensor());
        let center = objective(&original);
        let step = (original.len() / 7).max(1);
        let eps = 1e-3f32;
        let mut checked = 0;
        for at in (0..original.len()).step_by(step) {
            let mut shifted = original.clone();
            shifted[at] = original[at] + eps;
            let up = objective(&shifted);
            shifted[at] = original[at] - eps;
            let down = objective(&shifted);
            let (right, left) = ((up - center) / eps as f64, (center - down) / eps as f64);
            let tolerance = |a: f64, b: f64| 2e-2 * a.abs().max(b.abs()).max(1.0);
            if (right - left).abs() > tolerance(right, left) {
                // A kink (ReLU's, a max) within the step: no derivative to compare with.
                continue;
            }
            let numeric = (right + left) / 2.0;
            let analytic = analytic[at] as f64;
            assert!(
                (analytic - numeric).abs() <= tolerance(analytic, numeric),
                "{name} d/d{}{}[{at}]: training path {analytic} vs finite difference {numeric}",
                if i < inputs.len() { "input" } else { "weight" },
                if i < inputs.len() {
                    i
                } else {
                    i - inputs.len()
                },
            );
            checked += 1;
        }
        assert!(checked > 0, "{name}: every checked element sits on a kink");
        objective(&original);
    }
}

/// The random stream every training call of the harness draws from, so that a random layer
/// (dropout, noise) draws the same numbers in each of them.
const STREAM: u64 = 0x5EED;

/// Which way [`gradients`] differentiates.
#[derive(Clone, Copy)]
enum Path {
    /// As training does: the layer's own backward where it has one.
    Training,
    /// candle's autograd over the call, whatever the layer has.
    Autograd,
}

/// The gradients of the inputs then of `weights` (flattened; zeros where none flows).
fn gradients(
    layer: &dyn Layer,
    inputs: &[Tensor],
    weights: &[Var],
    r: &[Tensor],
    path: Path,
) -> Result<Vec<Vec<f32>>> {
    let mut ctx = CallContext::recording();
    let mut grads = WeightGrads::new(weights);
    let needs = vec![true; inputs.len()];
    let input_grads = match path {
        Path::Training => {
            let record = with_stream(STREAM, || record_call(layer, inputs, &mut ctx))?;
            differentiate(layer, record, r, &needs, &mut grads)?
        }
        Path::Autograd => {
            let record = with_stream(STREAM, || record_for_autograd(layer, inputs, &mut ctx))?;
            differentiate_locally(layer, record, r, &needs, &mut grads)?
        }
    };
    let mut all = Vec::new();
    for (x, grad) in inputs.iter().zip(input_grads) {
        all.push(match grad {
            Some(grad) => flat(&grad),
            None => vec![0.0; x.elem_count()],
        });
    }
    for var in weights {
        all.push(match grads.get(var) {
            Some(grad) => flat(grad),
            None => vec![0.0; var.elem_count()],
        });
    }
    Ok(all)
}

/// `sum(outputs · r)` plus the added losses.
fn scalar_objective(outputs: &[Tensor], r: &[Tensor], losses: &[Tensor]) -> Result<f64> {
    let mut total = 0.0;
    for (y, r) in outputs.iter().zip(r) {
        total += (y * r)?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
    }
    for loss in losses {
        total += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    }
    Ok(total)
}

/// Deterministic, well-spread values in [-1, 1], away from 0 (ReLU's kink) and from ties.
pub fn values(count: usize, salt: usize) -> Vec<f32> {
    (0..count)
        .map(|i| {
            let v = ((i * 7919 + salt * 104_729) % 1000) as f32 / 1000.0;
            let v = 2.0 * v - 1.0;
            if v.abs() < 0.05 {
                v + 0.1
            } else {
                v
            }
        })
        .collect()
}

/// A tensor's values, flattened.
pub fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1())
        .expect("values")
}

/// Panics unless `got` and `want` agree to `tolerance` relative to the largest magnitude of
/// `want` (at least 1).
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tolerance: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= tolerance * scale,
            "{what}[{i}]: {g} vs {w}"
        );
    }
}
