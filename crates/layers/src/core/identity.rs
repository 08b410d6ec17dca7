//! `Identity`: returns its inputs unchanged, a placeholder where no operation is wanted
//! (`keras/src/layers/core/identity.py`). Like Keras's, it takes any number of inputs and
//! returns each of them; the gradient passes through unchanged, on every device.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::config_with_name;
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Identity`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityConfig {}

/// The identity as a layer: `Identity::new()(x)` is `x`.
pub type Identity = LayerBuilder<IdentityConfig>;

impl Identity {
    /// An identity layer.
    pub fn new() -> Self {
        LayerBuilder::from_config(IdentityConfig {})
    }
}

impl Default for Identity {
    fn default() -> Self {
        Identity::new()
    }
}

impl LayerConfig for IdentityConfig {
    const CLASS_NAME: &'static str = "Identity";
    const NAME_PREFIX: &'static str = "identity";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(IdentityLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer an [`Identity`] builder makes.
pub struct IdentityLayer {
    base: LayerBase,
    config: IdentityConfig,
}

impl IdentityLayer {
    /// `inputs` as the outputs, or an error naming the layer when there are none.
    fn passed<T: Clone>(&self, inputs: &[T]) -> Result<Vec<T>> {
        if inputs.is_empty() {
            return Err(Error::config(
                self.name(),
                "expects at least one input, got 0",
            ));
        }
        Ok(inputs.to_vec())
    }
}

impl Layer for IdentityLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        IdentityConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        self.passed(inputs)
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        self.passed(inputs)
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// The output gradients are the input gradients, on every device.
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
        if grad_outputs.len() != record.inputs.len() {
            return Err(Error::config(
                self.name(),
                format!(
                    "backward got {} output gradient(s) for {} input(s)",
                    grad_outputs.len(),
                    record.inputs.len()
                ),
            ));
        }
        let needed = needs_input_grad.iter().chain(std::iter::repeat(&false));
        Ok(record
            .inputs
            .iter()
            .zip(grad_outputs)
            .zip(needed)
            .map(|((x, dy), &need)| (need && x.dtype().is_float()).then(|| dy.clone()))
            .collect())
    }
}

/// The harness cases: inputs of several ranks, two inputs at once, and forwards by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let identity = || Identity::new().layer().expect("identity");
    let values = |values: &[f32], shape: &[usize]| {
        Tensor::from_slice(values, shape, &Device::Cpu).expect("values")
    };
    vec![
        LayerCase::new(identity(), &[&[4]]).output_shapes(&["(None, 4)"]),
        // [1, -2, 3] in a (1, 3, 1) sequence, unchanged.
        LayerCase::new(identity(), &[&[3, 1]])
            .output_shapes(&["(None, 3, 1)"])
            .forward(
                vec![values(&[1., -2., 3.], &[1, 3, 1])],
                vec![vec![1., -2., 3.]],
            ),
        // Two inputs, each returned as it came: [5] and [[6, 7]].
        LayerCase::new(identity(), &[&[1], &[1, 2]])
            .output_shapes(&["(None, 1)", "(None, 1, 2)"])
            .forward(
                vec![values(&[5.], &[1, 1]), values(&[6., 7.], &[1, 1, 2])],
                vec![vec![5.], vec![6., 7.]],
            ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_inputs_pass_through_without_a_gradient_and_no_input_is_an_error() {
        let layer = Identity::new().name("same").layer().unwrap();
        let ids = Tensor::new(&[[3u32, 1]], &Device::Cpu).unwrap();
        let y = layer
            .call(std::slice::from_ref(&ids), &mut CallContext::new(false))
            .unwrap();
        assert_eq!(y[0].to_vec2::<u32>().unwrap(), [[3, 1]]);
        let dy = Tensor::ones((1, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let record = CallRecord::new(vec![ids], y);
        let grads = layer
            .backward(record, &[dy], &[true], &mut WeightGrads::new(&[]))
            .unwrap();
        assert!(grads[0].is_none());
        let err = layer.call(&[], &mut CallContext::new(false)).unwrap_err();
        assert!(err.to_string().contains("'same'"), "{err}");
        assert_eq!(
            layer.config(),
            serde_json::json!({"name": "same", "trainable": true})
        );
    }
}
