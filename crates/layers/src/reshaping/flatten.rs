//! `Flatten`: `(batch, d1, d2, ...)` to `(batch, d1·d2·...)` in row-major, channels-last order
//! (`keras/src/layers/reshaping/flatten.py`).

use std::sync::Arc;

use candle_core::Tensor;
use serde_json::json;

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{single_input, CallRecord, WeightGrads};
use crate::layer_base_methods;
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// `Flatten`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlattenConfig;

/// Flattens every axis after the batch: `Flatten::new()(x)`.
pub type Flatten = LayerBuilder<FlattenConfig>;

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        LayerBuilder::from_config(FlattenConfig)
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl LayerConfig for FlattenConfig {
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
        "Flatten"
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
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        // A row-major reshape: the gradient is the output gradient in the input's shape.
        Ok(vec![Some(dy.reshape(x.shape())?)])
    }
}
