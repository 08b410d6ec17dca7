//! `Flatten`: `(batch, d1, d2, ...)` to `(batch, d1·d2·...)` in row-major, channels-last order
//! (`keras/src/layers/reshaping/flatten.py`).

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::single_input;
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// `Flatten`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlattenConfig {}

/// Flattens every axis after the batch: `Flatten::new()(x)`.
pub type Flatten = LayerBuilder<FlattenConfig>;

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        LayerBuilder::from_config(FlattenConfig {})
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl LayerConfig for FlattenConfig {
    const CLASS_NAME: &'static str = "Flatten";
    const NAME_PREFIX: &'static str = "flatten";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(FlattenLayer {
            base: LayerBase::new(name, trainable),
        }))
    }
}

/// The layer a [`Flatten`] builder makes.
pub struct FlattenLayer {
    base: LayerBase,
}

impl Layer for FlattenLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <FlattenConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let features = shape
            .known_features()
            .map(|dims| dims.iter().product::<usize>());
        let batch = shape.dims().first().copied().flatten();
        Ok(vec![SymbolicShape(vec![batch, features])])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        if x.rank() <= 1 {
            return Ok(vec![x.unsqueeze(1)?]);
        }
        Ok(vec![x.flatten_from(1)?])
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "trainable": self.trainable() })
    }

    /// A reshape of the gradient, on every device.
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
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        // A row-major reshape: the gradient is the output gradient in the input's shape.
        Ok(vec![Some(dy.reshape(x.shape())?)])
    }
}

/// The harness cases, with a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let x = Tensor::arange(0f32, 4.0, &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 2, 1)))
        .expect("x");
    vec![
        LayerCase::new(Flatten::new().layer().expect("flatten"), &[&[2, 3, 2]])
            .output_shapes(&["(None, 12)"]),
        LayerCase::new(Flatten::new().layer().expect("flatten"), &[&[2, 2, 1]])
            .output_shapes(&["(None, 4)"])
            .forward(vec![x], vec![vec![0.0, 1.0, 2.0, 3.0]]),
    ]
}
