//! One harness run over every layer, as Keras's `run_layer_test`: the built output shape
//! matches what a call returns, the parameter count, the config names the layer, and the
//! gradients of the inputs and the weights (through candle autograd and the kernels' own
//! backward passes) agree with central finite differences of the layer's forward pass.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};

use crate::symbolic::call_layer;
use crate::{
    ActivationLayer, CallContext, Conv2D, Dense, Flatten, Input, Layer, MaxPooling2D, Reshape,
    SymbolicShape, UpSampling2D,
};

/// Deterministic, well-spread values in [-1, 1], away from 0 (relu's kink) and from ties.
fn values(count: usize, salt: usize) -> Vec<f32> {
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

/// `sum(layer(x) * r)`, the scalar the gradients are taken of.
fn objective(layer: &dyn Layer, x: &Tensor, r: &Tensor) -> Tensor {
    let y = layer
        .call(std::slice::from_ref(x), &mut CallContext::new(true))
        .expect("call");
    (&y[0] * r).expect("mul").sum_all().expect("sum")
}

fn scalar(t: &Tensor) -> f64 {
    t.to_scalar::<f32>().expect("scalar") as f64
}

fn assert_close(what: &str, analytic: f64, numeric: f64) {
    let tolerance = 2e-2 * analytic.abs().max(numeric.abs()).max(1.0);
    assert!(
        (analytic - numeric).abs() <= tolerance,
        "{what}: autograd {analytic} vs finite difference {numeric}"
    );
}

/// Checks `layer` (already built by a symbolic call on `(None, dims...)`) on a batch of 2.
///
/// The weights come from a fixed seed, so that no relu pre-activation sits within the finite
/// difference's step of its kink.
fn run_layer_test(layer: &Arc<dyn Layer>, dims: &[usize], expected_shape: &str, params: usize) {
    let name = layer.name().to_string();
    let out = call_layer(layer, &[Input::new(dims)])[0]
        .shape()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.to_string(), expected_shape, "{name}: output shape");
    let count: usize = layer.weights().iter().map(|w| w.count()).sum();
    assert_eq!(count, params, "{name}: parameter count");
    assert_eq!(layer.config()["name"], name.as_str(), "{name}: config");

    let mut shape = vec![2];
    shape.extend_from_slice(dims);
    let numel: usize = shape.iter().product();
    let x = Var::from_vec(values(numel, 1), shape.as_slice(), &Device::Cpu).expect("x");
    let y = layer
        .call(&[x.as_tensor().clone()], &mut CallContext::new(false))
        .expect("call")
        .remove(0);
    let batched = SymbolicShape(out.dims().to_vec()).with_batch(Some(2));
    assert!(
        batched.accepts(y.dims()),
        "{name}: built {out} but called {:?}",
        y.dims()
    );
    let r = Tensor::from_vec(values(y.elem_count(), 2), y.dims(), &Device::Cpu).expect("r");

    let loss = objective(layer.as_ref(), x.as_tensor(), &r);
    let grads = loss.backward().expect("backward");
    let mut checked: Vec<(String, Var)> = vec![("input".into(), x.clone())];
    checked.extend(layer.weights().into_iter().map(|w| (w.path, w.var)));
    let eps = 1e-3f32;
    for (what, var) in checked {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient for {what}"))
            .flatten_all()
            .and_then(|g| g.to_vec1::<f32>())
            .expect("grad");
        let original = var
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("v");
        let step = (original.len() / 7).max(1);
        for i in (0..original.len()).step_by(step) {
            let mut shifted = original.clone();
            let mut at = |delta: f32| {
                shifted[i] = original[i] + delta;
                let t = Tensor::from_vec(shifted.clone(), var.dims(), &Device::Cpu).expect("t");
                var.set(&t).expect("set");
                scalar(&objective(layer.as_ref(), x.as_tensor(), &r))
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            let t = Tensor::from_vec(original.clone(), var.dims(), &Device::Cpu).expect("t");
            var.set(&t).expect("restore");
            assert_close(&format!("{name} d/d{what}[{i}]"), grad[i] as f64, numeric);
        }
    }
}

#[test]
fn dense_layers() {
    crate::session::set_random_seed(17);
    let dense = Dense::new(3).activation("relu");
    let _ = dense(Input::new(&[4]));
    run_layer_test(&dense.layer().expect("dense"), &[4], "(None, 3)", 15);
    let dense = Dense::new(2).activation("sigmoid");
    let _ = dense(Input::new(&[3, 5]));
    run_layer_test(&dense.layer().expect("dense"), &[3, 5], "(None, 3, 2)", 12);
}

#[test]
fn conv2d_layers() {
    crate::session::set_random_seed(17);
    let cases: Vec<(Conv2D, &str, usize)> = vec![
        (
            Conv2D::new(3, (2, 2)).activation("relu").padding("same"),
            "(None, 5, 6, 3)",
            39,
        ),
        (
            Conv2D::new(2, (3, 3)).strides(2).padding("valid"),
            "(None, 2, 2, 2)",
            56,
        ),
        (
            Conv2D::new(1, (3, 3)).activation("sigmoid").padding("same"),
            "(None, 5, 6, 1)",
            28,
        ),
        (
            Conv2D::new(2, (2, 2)).dilation_rate(2).padding("same"),
            "(None, 5, 6, 2)",
            26,
        ),
    ];
    for (conv, shape, params) in cases {
        let _ = conv(Input::new(&[5, 6, 3]));
        run_layer_test(&conv.layer().expect("conv"), &[5, 6, 3], shape, params);
    }
}

#[test]
fn pooling_and_upsampling_layers() {
    crate::session::set_random_seed(17);
    let pool = MaxPooling2D::new((2, 2)).padding("same");
    let _ = pool(Input::new(&[5, 5, 2]));
    run_layer_test(
        &pool.layer().expect("pool"),
        &[5, 5, 2],
        "(None, 3, 3, 2)",
        0,
    );
    let pool = MaxPooling2D::new((3, 3)).strides((2, 1));
    let _ = pool(Input::new(&[5, 4, 1]));
    run_layer_test(
        &pool.layer().expect("pool"),
        &[5, 4, 1],
        "(None, 2, 2, 1)",
        0,
    );
    let up = UpSampling2D::new((2, 3));
    let _ = up(Input::new(&[2, 3, 2]));
    run_layer_test(&up.layer().expect("up"), &[2, 3, 2], "(None, 4, 9, 2)", 0);
}

#[test]
fn reshaping_and_activation_layers() {
    crate::session::set_random_seed(17);
    let flatten = Flatten::new();
    let _ = flatten(Input::new(&[2, 3, 2]));
    run_layer_test(
        &flatten.layer().expect("flatten"),
        &[2, 3, 2],
        "(None, 12)",
        0,
    );
    let reshape = Reshape::new(&[3, -1]);
    let _ = reshape(Input::new(&[2, 3, 2]));
    run_layer_test(
        &reshape.layer().expect("reshape"),
        &[2, 3, 2],
        "(None, 3, 4)",
        0,
    );
    for name in [
        "tanh", "softmax", "elu", "gelu", "softplus", "silu", "sigmoid",
    ] {
        let activation = ActivationLayer::new(name);
        let _ = activation(Input::new(&[5]));
        run_layer_test(
            &activation.layer().expect("activation"),
            &[5],
            "(None, 5)",
            0,
        );
    }
}

#[test]
fn building_on_the_wrong_shape_after_first_use_is_an_error() {
    let dense = Dense::new(2).name("picky");
    let _ = dense(Input::new(&[4]));
    let err = dense(Input::new(&[5]))
        .shape()
        .expect_err("wrong input size");
    assert!(
        err.to_string().contains("picky") && err.to_string().contains("(None, 5)"),
        "{err}"
    );
    let zero = Tensor::zeros((1, 5), DType::F32, &Device::Cpu).expect("zeros");
    let layer = dense.layer().expect("layer");
    assert!(layer.call(&[zero], &mut CallContext::new(false)).is_err());
}
