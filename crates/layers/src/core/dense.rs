//! `Dense`: `activation(x · kernel + bias)` over the last axis (`keras/src/layers/core/dense.py`).

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};
use rkeras_ops::FusedActivation;
use serde::{Deserialize, Serialize};

use crate::activations::ActivationFn;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::kernel_bias::{
    activity_penalty, kernel_layer_logits_twin, kernel_layer_methods, kernel_layer_options,
    with_activity_penalty_gradient, KernelBias,
};
use crate::layer::single_input;
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Dense`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseConfig {
    /// Output size.
    pub units: usize,
    /// Applied after the affine map (default linear).
    pub activation: ActivationFn,
    /// Whether there is a bias (default true).
    pub use_bias: bool,
    /// Kernel initializer (default glorot_uniform).
    pub kernel_initializer: Initializer,
    /// Bias initializer (default zeros).
    pub bias_initializer: Initializer,
    /// Penalty on the kernel.
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the bias.
    pub bias_regularizer: Option<Regularizer>,
    /// Penalty on the output, divided by the batch size (Keras 3.14+).
    pub activity_regularizer: Option<Regularizer>,
}

impl DenseConfig {
    /// Keras's defaults for `units` outputs.
    pub fn new(units: usize) -> Self {
        DenseConfig {
            units,
            activation: ActivationFn::Linear,
            use_bias: true,
            kernel_initializer: Initializer::glorot_uniform(),
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        }
    }
}

/// A fully connected layer, callable on symbolic tensors:
/// `Dense::new(49).activation("relu")(x)`.
pub type Dense = LayerBuilder<DenseConfig>;

impl Dense {
    /// A dense layer with `units` outputs and Keras's defaults.
    pub fn new(units: usize) -> Self {
        LayerBuilder::from_config(DenseConfig::new(units))
    }

    kernel_layer_options!();
}

impl LayerConfig for DenseConfig {
    const CLASS_NAME: &'static str = "Dense";
    const NAME_PREFIX: &'static str = "dense";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(DenseLayer::new(name, trainable, self.clone())?))
    }
}

#[derive(Clone)]
struct DenseWeights {
    input_dim: usize,
    params: KernelBias,
}

/// The layer a [`Dense`] builder makes.
pub struct DenseLayer {
    base: LayerBase,
    config: DenseConfig,
    weights: OnceLock<DenseWeights>,
}

impl DenseLayer {
    kernel_layer_logits_twin!(DenseLayer, DenseConfig);

    /// A dense layer from its options (weights are made on first build).
    pub fn new(name: String, trainable: bool, config: DenseConfig) -> Result<Self> {
        if config.units == 0 {
            return Err(Error::config(name, "units must be positive"));
        }
        Ok(DenseLayer {
            base: LayerBase::new(name, trainable),
            config,
            weights: OnceLock::new(),
        })
    }

    /// The options.
    pub fn dense_config(&self) -> &DenseConfig {
        &self.config
    }

    /// The output for input `x`, keeping the pre-activation for the backward pass when the
    /// call is recorded and the activation's derivative needs it.
    fn forward(&self, x: &Tensor, ctx: &mut CallContext) -> Result<Tensor> {
        let w = self.built()?;
        let dims = x.dims();
        if dims.len() < 2 || dims[dims.len() - 1] != w.input_dim {
            return Err(Error::shape(
                self.name(),
                format!("(batch, ..., {})", w.input_dim),
                format!("{dims:?}"),
            ));
        }
        let rows = x.elem_count() / w.input_dim;
        let flat = if dims.len() == 2 {
            x.clone()
        } else {
            x.reshape((rows, w.input_dim))?
        };
        let z = product(&flat, false, &ctx.weight(&w.params.kernel), false)?;
        let bias = w.params.bias.as_ref().map(|b| ctx.weight(b));
        let activation = self.config.activation;
        let y = match activation.fused() {
            // Bias and activation in one pass each way.
            Some(fused) if z.dtype() == DType::F32 => {
                rkeras_ops::bias_activation(&z, bias.as_ref(), fused)?
            }
            _ => {
                let z = match &bias {
                    Some(bias) if z.dtype() == DType::F32 => {
                        rkeras_ops::bias_activation(&z, Some(bias), FusedActivation::Linear)?
                    }
                    Some(bias) => z.broadcast_add(bias)?,
                    None => z,
                };
                let y = activation.apply(&z)?;
                if activation.needs_input() {
                    ctx.save(z);
                }
                y
            }
        };
        if dims.len() == 2 {
            return Ok(y);
        }
        let mut out_dims = dims.to_vec();
        out_dims[dims.len() - 1] = self.config.units;
        Ok(y.reshape(out_dims)?)
    }

    fn built(&self) -> Result<&DenseWeights> {
        self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }

    fn make_weights(&self, input_dim: usize) -> Result<DenseWeights> {
        let c = &self.config;
        let bias = c.use_bias.then_some(&c.bias_initializer);
        Ok(DenseWeights {
            input_dim,
            params: KernelBias::new(
                self.name(),
                &[input_dim, c.units],
                &c.kernel_initializer,
                bias,
            )?,
        })
    }
}

/// `a · b` (each read transposed when asked): rkeras-ops' product where no operand tracks a
/// gradient and both are f32 on the CPU (the layer-level backward pass, inference), candle's
/// differentiable matmul otherwise.
fn product(a: &Tensor, transpose_a: bool, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
    let plain = rkeras_ops::kernels_on(a.device())
        && a.dtype() == DType::F32
        && b.dtype() == DType::F32
        && !a.track_op()
        && !b.track_op();
    if plain {
        return Ok(rkeras_ops::matmul_2d(a, transpose_a, b, transpose_b)?);
    }
    let a = if transpose_a { a.t()? } else { a.clone() };
    let b = if transpose_b { b.t()? } else { b.clone() };
    Ok(a.matmul(&b)?)
}

impl Layer for DenseLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        DenseConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let expected_dim = self.weights.get().map(|w| w.input_dim);
        let input_dim = match (shape.rank(), shape.last()) {
            (rank, Some(dim)) if rank >= 2 && expected_dim.is_none_or(|e| e == dim) => dim,
            _ => {
                let expected = match expected_dim {
                    Some(dim) => format!("(None, ..., {dim})"),
                    None => "(None, ..., d) with a known last dimension d".to_string(),
                };
                return Err(Error::shape(self.name(), expected, shape));
            }
        };
        if self.weights.get().is_none() {
            let weights = self.make_weights(input_dim)?;
            // Another thread may have built it meanwhile; its weights win, and fit the same shape.
            let _ = self.weights.set(weights);
        }
        let mut out = shape.clone();
        if let Some(last) = out.0.last_mut() {
            *last = Some(self.config.units);
        }
        Ok(vec![out])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let y = self.forward(single_input(self.name(), inputs)?, ctx)?;
        if let Some(penalty) = activity_penalty(self.config.activity_regularizer.as_ref(), &y)? {
            ctx.add_loss(penalty);
        }
        Ok(vec![y])
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y, dy) = record.single(self.name(), grad_outputs)?;
        let w = self.built()?;
        let (kernel, bias) = (&w.params.kernel, w.params.bias.as_ref());
        let want_x = needs_input_grad.first().copied().unwrap_or(false);
        let want_kernel = weight_grads.wants(kernel);
        let want_bias = bias.is_some_and(|b| weight_grads.wants(b));
        if !(want_x || want_kernel || want_bias) {
            return Ok(vec![None]);
        }
        let units = self.config.units;
        let rows = y.elem_count() / units;
        let flat_y = y.reshape((rows, units))?;
        // The activity penalty's gradient joins the output's: taken over the output's own shape
        // (its batch is the first dimension), then flattened like it.
        let dy = with_activity_penalty_gradient(self.config.activity_regularizer.as_ref(), y, dy)?
            .reshape((rows, units))?;
        let activation = self.config.activation;
        let (dz, grad_bias) = match activation.fused() {
            Some(fused) => rkeras_ops::bias_activation_backward(fused, &flat_y, &dy, want_bias)?,
            None => {
                let z = record.saved_if::<Tensor>();
                let dz = activation.gradient(z, &flat_y, &dy)?;
                let grad_bias = want_bias
                    .then(|| rkeras_ops::bias_gradient(&dz))
                    .transpose()?;
                (dz, grad_bias)
            }
        };
        if want_kernel {
            let flat_x = x.reshape((rows, w.input_dim))?;
            weight_grads.add(kernel, product(&flat_x, true, &dz, false)?)?;
        }
        if let (Some(bias), Some(grad)) = (bias, grad_bias) {
            weight_grads.add(bias, grad)?;
        }
        // The first layer's input is data: its gradient is never computed.
        let grad_x = if want_x {
            Some(product(&dz, false, &kernel.as_tensor().detach(), true)?.reshape(x.dims())?)
        } else {
            None
        };
        Ok(vec![grad_x])
    }

    kernel_layer_methods!();
}

/// The harness cases: every activation, rank 3, no bias, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    crate::session::set_random_seed(17);
    let layer = |dense: Dense| dense.layer().expect("dense");
    let mut cases: Vec<LayerCase> = ActivationFn::ALL
        .iter()
        .map(|(_, name)| {
            LayerCase::new(layer(Dense::new(3).activation(*name)), &[&[4]])
                .output_shapes(&["(None, 3)"])
                .weights(2, 0, 4 * 3 + 3)
        })
        .collect();
    cases.push(
        LayerCase::new(layer(Dense::new(2).activation("tanh")), &[&[3, 5]])
            .output_shapes(&["(None, 3, 2)"])
            .weights(2, 0, 5 * 2 + 2),
    );
    // x: 2 samples of 3 features, kernel 3 -> 2, bias [0.5, -1], relu:
    // z = [0.5·0.2 - 1·0.1 + 2·(-0.5) + 0.5, 0.5·(-0.4) - 1·0.3 + 2·0.6 - 1] = [-0.5, -0.3],
    //     [-1·0.2 + 0 + 3·(-0.5) + 0.5, -1·(-0.4) + 0 + 3·0.6 - 1] = [-1.2, 1.2].
    let x = Tensor::new(
        &[[0.5f32, -1.0, 2.0], [-1.0, 0.0, 3.0]],
        &candle_core::Device::Cpu,
    );
    cases.push(
        LayerCase::new(layer(Dense::new(2).activation("relu")), &[&[3]])
            .output_shapes(&["(None, 2)"])
            .weights(2, 0, 8)
            .weight_values(vec![vec![0.2, -0.4, 0.1, 0.3, -0.5, 0.6], vec![0.5, -1.0]])
            .forward(vec![x.expect("x")], vec![vec![0.0, 0.0, 0.0, 1.2]]),
    );
    cases.push(
        LayerCase::new(layer(Dense::new(2).use_bias(false)), &[&[4]])
            .output_shapes(&["(None, 2)"])
            .weights(1, 0, 8),
    );
    cases.push(
        LayerCase::new(
            layer(
                Dense::new(3)
                    .activation("sigmoid")
                    .activity_regularizer(Regularizer::l1(0.1)),
            ),
            &[&[4]],
        )
        .output_shapes(&["(None, 3)"])
        .weights(2, 0, 15),
    );
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A built `Dense` from `input_dim` to `units` with the given weights.
    fn dense(
        activation: ActivationFn,
        kernel: &[f32],
        bias: Option<&[f32]>,
        input_dim: usize,
    ) -> DenseLayer {
        let units = kernel.len() / input_dim;
        let config = DenseConfig {
            activation,
            use_bias: bias.is_some(),
            ..DenseConfig::new(units)
        };
        let layer = DenseLayer::new("dense_test".into(), true, config).unwrap();
        layer
            .build(&[SymbolicShape::batched(None, &[input_dim])])
            .unwrap();
        let weights = layer.weights();
        let kernel_tensor = Tensor::from_slice(kernel, (input_dim, units), &Device::Cpu).unwrap();
        weights[0].var.set(&kernel_tensor).unwrap();
        if let Some(bias) = bias {
            weights[1]
                .var
                .set(&Tensor::new(bias, &Device::Cpu).unwrap())
                .unwrap();
        }
        layer
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn assert_close(what: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{what}: {got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn sizes_beyond_any_memory_are_errors_naming_the_layer_before_allocating() {
        let huge = Dense::new(1 << 40).name("huge");
        let err = huge(crate::Input::new(&[784]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(err.contains("'huge'") && err.contains("more than"), "{err}");
        let wide = Dense::new(3).name("wide");
        let err = wide(crate::Input::new(&[1 << 62]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(err.contains("values per sample"), "{err}");
    }

    #[test]
    fn call_and_gradients_match_naive_loops_for_fused_and_generic_activations() -> Result<()> {
        // x: 2 samples of 2 rows of 3 features (rank 3), kernel 3 -> 2, bias [0.5, -1].
        let xs = [
            0.5f32, -1.0, 2.0, 0.0, 1.0, -0.5, 1.5, 0.25, -2.0, -1.0, 0.0, 3.0,
        ];
        let kernel = [0.2f32, -0.4, 0.1, 0.3, -0.5, 0.6];
        let bias = [0.5f32, -1.0];
        let upstream: Vec<f32> = (0..8).map(|i| 0.25 * i as f32 - 1.0).collect();
        fn sigmoid(z: f64) -> (f64, f64) {
            let s = 1.0 / (1.0 + (-z).exp());
            (s, s * (1.0 - s))
        }
        fn elu(z: f64) -> (f64, f64) {
            if z > 0.0 {
                (z, 1.0)
            } else {
                (z.exp() - 1.0, z.exp())
            }
        }
        // Each activation with its value and derivative at the pre-activation.
        type ValueAndSlope = fn(f64) -> (f64, f64);
        let cases: [(ActivationFn, ValueAndSlope); 4] = [
            (ActivationFn::Linear, |z| (z, 1.0)),
            (ActivationFn::Relu, |z| {
                (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 })
            }),
            (ActivationFn::Sigmoid, sigmoid),
            (ActivationFn::Elu, elu),
        ];
        for (activation, reference) in cases {
            for with_bias in [true, false] {
                let layer = dense(activation, &kernel, with_bias.then_some(&bias[..]), 3);
                let x = Tensor::from_slice(&xs, (2, 2, 3), &Device::Cpu)?;
                let y = layer.call(&[x], &mut CallContext::new(true))?.remove(0);
                assert_eq!(y.dims(), &[2, 2, 2]);
                let up = Tensor::from_slice(&upstream, (2, 2, 2), &Device::Cpu)?;
                let grads = (&y * &up)?.sum_all()?.backward()?;
                let (mut want_y, mut want_kernel, mut want_bias) =
                    (vec![], vec![0.0; 6], vec![0.0; 2]);
                for row in 0..4 {
                    for unit in 0..2 {
                        let mut z = if with_bias { bias[unit] as f64 } else { 0.0 };
                        for k in 0..3 {
                            z += xs[row * 3 + k] as f64 * kernel[k * 2 + unit] as f64;
                        }
                        let (value, slope) = reference(z);
                        want_y.push(value);
                        let g = upstream[row * 2 + unit] as f64 * slope;
                        want_bias[unit] += g;
                        for k in 0..3 {
                            want_kernel[k * 2 + unit] += xs[row * 3 + k] as f64 * g;
                        }
                    }
                }
                let what = format!("{activation} bias {with_bias}");
                assert_close(&what, &flat(&y), &want_y);
                let weights = layer.weights();
                let kernel_grad = grads
                    .get(weights[0].var.as_tensor())
                    .expect("kernel gradient");
                assert_close(&what, &flat(kernel_grad), &want_kernel);
                if with_bias {
                    let bias_grad = grads
                        .get(weights[1].var.as_tensor())
                        .expect("bias gradient");
                    assert_close(&what, &flat(bias_grad), &want_bias);
                }
            }
        }
        Ok(())
    }
}
