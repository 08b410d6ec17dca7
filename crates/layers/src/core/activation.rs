//! `Activation`: applies an activation function as a layer of its own
//! (`keras/src/layers/activations/activation.py`).

use std::sync::Arc;

use candle_core::{Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::activations::{Activation, ActivationArg};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input, CallRecord, WeightGrads};
use crate::layer_base_methods;
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// Whether `activation`'s derivative is a function of its output alone (so its backward needs
/// only the output, not the pre-activation).
pub(crate) fn derivative_from_output(activation: Activation) -> bool {
    matches!(
        activation,
        Activation::Linear
            | Activation::Relu
            | Activation::Sigmoid
            | Activation::Tanh
            | Activation::Softmax
    )
}

/// The gradient of the pre-activation `z` given `y = activation(z)` and `y`'s gradient `dy`.
/// `z` is read only when the derivative is not a function of `y`
/// ([`derivative_from_output`]); it must then be present. Computed on detached tensors, outside
/// any candle graph of the caller.
pub(crate) fn activation_gradient(
    activation: Activation,
    z: Option<&Tensor>,
    y: &Tensor,
    dy: &Tensor,
) -> Result<Tensor> {
    Ok(match activation {
        Activation::Linear => dy.clone(),
        Activation::Relu => (dy * y.gt(0.0)?.to_dtype(dy.dtype())?)?,
        // y' = y (1 - y).
        Activation::Sigmoid => (dy * (y * (y.affine(-1.0, 1.0))?)?)?,
        // y' = 1 - y^2.
        Activation::Tanh => (dy * y.sqr()?.affine(-1.0, 1.0)?)?,
        // dz = y (dy - sum(dy y)) over the last axis.
        Activation::Softmax => {
            let dot = (dy * y)?.sum_keepdim(D::Minus1)?;
            (y * dy.broadcast_sub(&dot)?)?
        }
        Activation::Elu | Activation::Gelu | Activation::Softplus | Activation::Silu => {
            let z = z.ok_or_else(|| {
                crate::Error::config(
                    activation.to_string(),
                    "its backward needs the pre-activation, which was not recorded",
                )
            })?;
            // A one-op graph of our own: the derivative candle's autograd would use.
            let z = Var::from_tensor(&z.detach())?;
            let grads = (activation.apply(z.as_tensor())? * dy.detach())?
                .sum_all()?
                .backward()?;
            match grads.get(z.as_tensor()) {
                Some(dz) => dz.clone(),
                None => z.as_tensor().zeros_like()?,
            }
        }
    })
}

/// `ActivationLayer`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationConfig {
    /// The function applied.
    pub activation: Activation,
}

/// An activation as a layer: `ActivationLayer::new("relu")(x)` (Keras's `layers.Activation`).
pub type ActivationLayer = LayerBuilder<ActivationConfig>;

impl ActivationLayer {
    /// A layer applying `activation`, by value or Keras name.
    pub fn new(activation: impl Into<ActivationArg>) -> Self {
        let arg = activation.into();
        LayerBuilder::from_config(ActivationConfig {
            activation: Activation::Linear,
        })
        .with_checked(|c| {
            c.activation = arg.0?;
            Ok(())
        })
    }
}

impl LayerConfig for ActivationConfig {
    const NAME_PREFIX: &'static str = "activation";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(Activate {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer an [`ActivationLayer`] builder makes.
pub struct Activate {
    base: LayerBase,
    config: ActivationConfig,
}

impl Layer for Activate {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        "Activation"
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        Ok(vec![single_input(self.name(), inputs)?.clone()])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        Ok(vec![self.config.activation.apply(x)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    fn has_backward(&self) -> bool {
        true
    }

    fn is_per_sample(&self) -> bool {
        true
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (z, y, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let dz = activation_gradient(self.config.activation, Some(z), y, dy)?;
        Ok(vec![Some(dz)])
    }
}
