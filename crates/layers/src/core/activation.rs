//! `Activation`: applies an activation function as a layer of its own
//! (`keras/src/layers/activations/activation.py`).

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::activations::{ActivationArg, ActivationFn};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// `Activation`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationConfig {
    /// The function applied.
    pub activation: ActivationFn,
}

/// An activation as a layer: `Activation::new("relu")(x)` (Keras's `layers.Activation`).
pub type Activation = LayerBuilder<ActivationConfig>;

impl Activation {
    /// A layer applying `activation`, by value or Keras name.
    pub fn new(activation: impl Into<ActivationArg>) -> Self {
        let arg = activation.into();
        LayerBuilder::from_config(ActivationConfig {
            activation: ActivationFn::Linear,
        })
        .with_checked(|c| {
            c.activation = arg.0?;
            Ok(())
        })
    }
}

impl LayerConfig for ActivationConfig {
    const CLASS_NAME: &'static str = "Activation";
    const NAME_PREFIX: &'static str = "activation";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(ActivationLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer an [`Activation`] builder makes.
pub struct ActivationLayer {
    base: LayerBase,
    config: ActivationConfig,
}

impl ActivationLayer {
    /// The function the layer applies.
    pub fn activation(&self) -> ActivationFn {
        self.config.activation
    }

    /// A twin that passes its input through (the same name), with the activation it leaves
    /// out: see [`crate::logits::logits_twin`].
    pub(crate) fn logits_twin(&self) -> Option<(ActivationLayer, ActivationFn)> {
        let activation = self.config.activation;
        activation.has_logits().then(|| {
            let twin = ActivationLayer {
                base: LayerBase::new(self.name().to_string(), self.trainable()),
                config: ActivationConfig {
                    activation: ActivationFn::Linear,
                },
            };
            (twin, activation)
        })
    }
}

impl Layer for ActivationLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        ActivationConfig::CLASS_NAME
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

    /// The activation's gradient runs on every device (kernels on the CPU, candle ops elsewhere).
    fn has_backward(&self, _device: &Device) -> bool {
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
        Ok(vec![Some(self.config.activation.gradient(
            Some(z),
            y,
            dy,
        )?)])
    }
}

/// The harness cases: every activation, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let mut cases: Vec<LayerCase> = ActivationFn::ALL
        .iter()
        .map(|(_, name)| {
            LayerCase::new(
                Activation::new(*name).layer().expect("activation"),
                &[&[2, 5]],
            )
            .output_shapes(&["(None, 2, 5)"])
        })
        .collect();
    let x = || Tensor::new(&[[-4f32, 0.5, 7.0]], &candle_core::Device::Cpu).expect("x");
    // Each activation of x = [-4, 0.5, 7], by hand.
    let by_hand: [(&str, [f64; 3]); 6] = [
        ("relu", [0.0, 0.5, 7.0]),
        ("relu6", [0.0, 0.5, 6.0]),
        // relu6(x + 3) / 6 = [0, 3.5 / 6, 1].
        ("hard_sigmoid", [0.0, 3.5 / 6.0, 1.0]),
        // x · hard_sigmoid(x).
        ("hard_swish", [0.0, 0.5 * 3.5 / 6.0, 7.0]),
        ("leaky_relu", [-0.8, 0.5, 7.0]),
        // x / (1 + |x|).
        ("softsign", [-0.8, 0.5 / 1.5, 7.0 / 8.0]),
    ];
    for (name, want) in by_hand {
        cases.push(
            LayerCase::new(Activation::new(name).layer().expect("activation"), &[&[3]])
                .output_shapes(&["(None, 3)"])
                .forward(vec![x()], vec![want.to_vec()]),
        );
    }
    // Softmax over the last axis of (1, 2, 2): rows [0, ln 3] and [1, 1] give [1/4, 3/4] and
    // [1/2, 1/2]; log-softmax their logarithms.
    let logits = Tensor::new(
        &[[[0f32, 3f32.ln()], [1.0, 1.0]]],
        &candle_core::Device::Cpu,
    )
    .expect("logits");
    let softmax = [0.25f64, 0.75, 0.5, 0.5];
    for (name, want) in [
        ("softmax", softmax.to_vec()),
        ("log_softmax", softmax.iter().map(|p| p.ln()).collect()),
    ] {
        cases.push(
            LayerCase::new(
                Activation::new(name).layer().expect("activation"),
                &[&[2, 2]],
            )
            .output_shapes(&["(None, 2, 2)"])
            .forward(vec![logits.clone()], vec![want]),
        );
    }
    cases
}
