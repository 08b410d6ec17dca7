//! `Activation`: applies an activation function as a layer of its own
//! (`keras/src/layers/activations/activation.py`).

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::activations::{Activation, ActivationArg};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

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
}
