//! `PReLU`: the parametric ReLU, `x` where `x > 0`, else `alpha · x` with a learned `alpha` per
//! element of a sample, shared along `shared_axes` (`keras/src/layers/activations/prelu.py`).
//! The work is `rkeras_ops::prelu`'s: a sample is a row, `alpha` broadcast over it one slope per
//! column.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::claim_weight;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::session::default_device;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// `PReLU`'s options, with Keras's defaults (Keras's `alpha_constraint` is not supported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PReLUConfig {
    /// How `alpha` starts (default zeros: a plain ReLU).
    pub alpha_initializer: Initializer,
    /// A penalty on `alpha`.
    pub alpha_regularizer: Option<Regularizer>,
    /// The axes (1 for the first after the batch) along which one slope is shared (default
    /// none: one slope per element of a sample).
    pub shared_axes: Option<Vec<usize>>,
}

/// The parametric ReLU: `PReLU::new().shared_axes(&[1, 2])(feature_maps)`.
pub type PReLU = LayerBuilder<PReLUConfig>;

impl PReLU {
    /// A parametric ReLU with Keras's defaults.
    pub fn new() -> Self {
        LayerBuilder::from_config(PReLUConfig {
            alpha_initializer: Initializer::Zeros,
            alpha_regularizer: None,
            shared_axes: None,
        })
    }

    /// How `alpha` starts.
    pub fn alpha_initializer(self, init: impl Into<crate::InitializerArg>) -> Self {
        self.with_initializer(init, |c, init| c.alpha_initializer = init)
    }

    /// A penalty on `alpha`.
    pub fn alpha_regularizer(self, r: Regularizer) -> Self {
        self.with(|c| c.alpha_regularizer = Some(r))
    }

    /// The axes (1 for the first after the batch) along which one slope is shared.
    pub fn shared_axes(self, axes: &[usize]) -> Self {
        let axes = axes.to_vec();
        self.with(|c| c.shared_axes = Some(axes))
    }
}

impl Default for PReLU {
    fn default() -> Self {
        PReLU::new()
    }
}

impl LayerConfig for PReLUConfig {
    const CLASS_NAME: &'static str = "PReLU";
    const NAME_PREFIX: &'static str = "p_re_lu";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if self.shared_axes.iter().flatten().any(|&axis| axis == 0) {
            return Err(Error::config(
                name,
                "shared_axes count from 1 (the axis after the batch)",
            ));
        }
        Ok(Arc::new(PReLULayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            alpha: OnceLock::new(),
        }))
    }
}

/// The layer a [`PReLU`] builder makes.
pub struct PReLULayer {
    base: LayerBase,
    config: PReLUConfig,
    alpha: OnceLock<Var>,
}

impl PReLULayer {
    fn is_shared(&self, axis: usize) -> bool {
        self.config.shared_axes.iter().flatten().any(|&a| a == axis)
    }

    fn alpha(&self) -> Result<&Var> {
        self.alpha.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }

    /// `x` as a matrix (samples, values of a sample), with `alpha` broadcast over a sample's
    /// shape as one slope per column; an error unless `x` fits the built `alpha`.
    fn as_rows(&self, x: &Tensor, alpha: &Tensor) -> Result<(Tensor, Tensor)> {
        let sample = x.dims().get(1..).unwrap_or(&[]);
        let fits = sample.len() == alpha.rank()
            && sample
                .iter()
                .zip(alpha.dims())
                .enumerate()
                .all(|(i, (&d, &a))| d == a || self.is_shared(i + 1));
        if !fits {
            return Err(Error::shape(
                self.name(),
                format!("(batch, ...) fitting alpha of shape {:?}", alpha.dims()),
                format!("{:?}", x.dims()),
            ));
        }
        let columns = sample.iter().product::<usize>();
        let rows = x.dims()[0];
        let alpha = alpha.broadcast_as(sample)?.contiguous()?.reshape(columns)?;
        Ok((x.reshape((rows, columns))?, alpha))
    }
}

impl Layer for PReLULayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        PReLUConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let rank = shape.rank();
        if let Some(&axis) = self
            .config
            .shared_axes
            .iter()
            .flatten()
            .find(|&&a| a >= rank)
        {
            return Err(Error::shape(
                self.name(),
                format!("an input with an axis {axis} to share"),
                shape,
            ));
        }
        // Keras's `param_shape`: a sample's shape, 1 along the shared axes.
        let param_shape: Option<Vec<usize>> = shape.dims()[1.min(rank)..]
            .iter()
            .enumerate()
            .map(|(i, &d)| if self.is_shared(i + 1) { Some(1) } else { d })
            .collect();
        let Some(param_shape) = param_shape.filter(|_| rank >= 2) else {
            return Err(Error::shape(
                self.name(),
                "(None, ...) with every unshared dimension known",
                shape,
            ));
        };
        if let Some(alpha) = self.alpha.get() {
            if alpha.dims() != param_shape {
                return Err(Error::shape(
                    self.name(),
                    format!("an input fitting alpha of shape {:?}", alpha.dims()),
                    shape,
                ));
            }
        } else {
            claim_weight(self.name(), &param_shape)?;
            let init = self
                .config
                .alpha_initializer
                .initialize(&param_shape, &default_device())?;
            // Another thread may have built it meanwhile; its weight wins, of the same shape.
            let _ = self.alpha.set(Var::from_tensor(&init)?);
        }
        Ok(vec![shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let (rows, alpha) = self.as_rows(x, &ctx.weight(self.alpha()?))?;
        Ok(vec![rkeras_ops::prelu(&rows, &alpha)?.reshape(x.shape())?])
    }

    fn weights(&self) -> Vec<Weight> {
        self.alpha
            .get()
            .map(|alpha| vec![self.base.weight("alpha", alpha)])
            .unwrap_or_default()
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        match (&self.config.alpha_regularizer, self.alpha.get()) {
            (Some(r), Some(alpha)) => Ok(vec![r.penalty(alpha.as_tensor())?]),
            _ => Ok(Vec::new()),
        }
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
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
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        let alpha = self.alpha()?;
        let want_x = needs_input_grad.first().copied().unwrap_or(false);
        let want_alpha = weight_grads.wants(alpha);
        if !(want_x || want_alpha) {
            return Ok(vec![None]);
        }
        let (rows, alpha_columns) = self.as_rows(x, &alpha.as_tensor().detach())?;
        let (grad_x, grad_alpha) = rkeras_ops::prelu_backward(
            &rows,
            &alpha_columns,
            &dy.reshape(rows.shape())?,
            want_x,
            want_alpha,
        )?;
        if let Some(grad) = grad_alpha {
            // Back from one slope per value of a sample to alpha's shape: sums along the
            // shared axes.
            let mut grad = grad.reshape(&x.dims()[1..])?;
            for (i, &a) in alpha.dims().iter().enumerate() {
                if a == 1 && grad.dims()[i] != 1 {
                    grad = grad.sum_keepdim(i)?;
                }
            }
            weight_grads.add(alpha, grad)?;
        }
        Ok(vec![grad_x.map(|g| g.reshape(x.shape())).transpose()?])
    }
}

/// The harness cases: no shared axes, shared spatial axes, an initializer and a regularizer,
/// and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |prelu: PReLU| prelu.layer().expect("prelu");
    let slopes = Initializer::RandomUniform {
        minval: 0.1,
        maxval: 0.5,
        seed: Some(3),
    };
    // x = [[-2, 3], [4, -1]] with alpha [0.5, 0.25]: [[-1, 3], [4, -0.25]].
    let x = Tensor::new(&[[-2f32, 3.0], [4.0, -1.0]], &candle_core::Device::Cpu).expect("x");
    vec![
        // One slope per element: 3 · 4 parameters.
        LayerCase::new(layer(PReLU::new().alpha_initializer(slopes)), &[&[3, 4]])
            .output_shapes(&["(None, 3, 4)"])
            .weights(1, 0, 3 * 4),
        // One slope per channel of (4, 5, 3) feature maps: 1 · 1 · 3 parameters.
        LayerCase::new(
            layer(
                PReLU::new()
                    .shared_axes(&[1, 2])
                    .alpha_initializer(slopes)
                    .alpha_regularizer(Regularizer::l2(0.1)),
            ),
            &[&[4, 5, 3]],
        )
        .output_shapes(&["(None, 4, 5, 3)"])
        .weights(1, 0, 3),
        // Keras's default: alpha zeros, a plain ReLU to start with.
        LayerCase::new(layer(PReLU::new()), &[&[2]])
            .output_shapes(&["(None, 2)"])
            .weights(1, 0, 2)
            .forward(vec![x.clone()], vec![vec![0.0, 3.0, 4.0, 0.0]]),
        LayerCase::new(layer(PReLU::new()), &[&[2]])
            .output_shapes(&["(None, 2)"])
            .weights(1, 0, 2)
            .weight_values(vec![vec![0.5, 0.25]])
            .forward(vec![x], vec![vec![-1.0, 3.0, 4.0, -0.25]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_axes_must_exist_and_unshared_dimensions_be_known() {
        let message = |prelu: PReLU, shape: &[Option<usize>]| {
            let layer = prelu.name("p").layer()?;
            layer.build(&[SymbolicShape(shape.to_vec())]).map(|_| ())
        };
        let err = message(PReLU::new().shared_axes(&[3]), &[None, Some(2), Some(2)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("'p'") && err.contains("axis 3"), "{err}");
        let err = message(PReLU::new(), &[None, None, Some(2)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("known"), "{err}");
        // A shared axis may be unknown, and vary from call to call.
        message(PReLU::new().shared_axes(&[1]), &[None, None, Some(2)]).expect("builds");
        let err = message(PReLU::new().shared_axes(&[0]), &[None, Some(2)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("count from 1"), "{err}");
    }

    #[test]
    fn a_shared_axis_takes_any_length_and_gets_the_summed_gradient() -> Result<()> {
        let layer = PReLU::new()
            .shared_axes(&[1])
            .alpha_initializer(Initializer::Constant { value: 0.5 })
            .layer()?;
        layer.build(&[SymbolicShape(vec![None, None, Some(2)])])?;
        for length in [1, 3] {
            let x = Tensor::full(-1f32, (2, length, 2), &Device::Cpu)?;
            let mut ctx = CallContext::recording();
            let record =
                crate::record::record_call(layer.as_ref(), std::slice::from_ref(&x), &mut ctx)?;
            assert_eq!(
                crate::testing::flat(&record.outputs[0]),
                vec![-0.5; 4 * length]
            );
            let alpha = layer.weights()[0].var.clone();
            let mut grads = WeightGrads::new(std::slice::from_ref(&alpha));
            let dy = x.ones_like()?;
            let grad_x = layer.backward(record, &[dy], &[true], &mut grads)?;
            assert_eq!(
                crate::testing::flat(grad_x[0].as_ref().expect("dx")),
                vec![0.5; 4 * length]
            );
            // d/dalpha = sum of min(x, 0) over the batch and the shared axis: -2 · length each.
            let grad_alpha = crate::testing::flat(grads.get(&alpha).expect("dalpha"));
            assert_eq!(grad_alpha, vec![-2.0 * length as f32; 2]);
        }
        Ok(())
    }
}
