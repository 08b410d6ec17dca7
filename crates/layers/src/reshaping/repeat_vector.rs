//! `RepeatVector`: `(batch, features)` to `(batch, n, features)`, the input repeated `n` times
//! (`keras/src/layers/reshaping/repeat_vector.py`).

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::check_shape;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `RepeatVector`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatVectorConfig {
    /// How many times the input is repeated (positive).
    pub n: usize,
}

/// Repeats a vector: `RepeatVector::new(3)(x)`.
pub type RepeatVector = LayerBuilder<RepeatVectorConfig>;

impl RepeatVector {
    /// Repeating the input `n` times.
    pub fn new(n: usize) -> Self {
        LayerBuilder::from_config(RepeatVectorConfig { n })
    }
}

impl LayerConfig for RepeatVectorConfig {
    const CLASS_NAME: &'static str = "RepeatVector";
    const NAME_PREFIX: &'static str = "repeat_vector";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if self.n == 0 {
            return Err(Error::config(name, "n must be a positive integer, got 0"));
        }
        Ok(Arc::new(RepeatVectorLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`RepeatVector`] builder makes.
pub struct RepeatVectorLayer {
    base: LayerBase,
    config: RepeatVectorConfig,
}

impl Layer for RepeatVectorLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <RepeatVectorConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        match shape.dims() {
            &[batch, features] => Ok(vec![SymbolicShape(vec![
                batch,
                Some(self.config.n),
                features,
            ])]),
            _ => Err(Error::shape(self.name(), "(None, features)", shape)),
        }
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let &[batch, features] = x.dims() else {
            return Err(Error::shape(
                self.name(),
                "(batch, features)",
                format!("{:?}", x.dims()),
            ));
        };
        let n = self.config.n;
        check_shape(
            self.name(),
            &SymbolicShape::batched(Some(batch), &[n, features]),
        )?;
        let repeated = x
            .unsqueeze(1)?
            .broadcast_as((batch, n, features))?
            .contiguous()?;
        Ok(vec![repeated])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// A sum of the gradient over the copies, on every device.
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
        let (_, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        Ok(vec![Some(dy.sum(1)?)])
    }
}

/// The harness cases, with a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let x = Tensor::new(&[[1f32, 2.0]], &Device::Cpu).expect("x");
    vec![
        LayerCase::new(RepeatVector::new(4).layer().expect("repeat"), &[&[5]])
            .output_shapes(&["(None, 4, 5)"]),
        // [1, 2] three times.
        LayerCase::new(RepeatVector::new(3).layer().expect("repeat"), &[&[2]])
            .output_shapes(&["(None, 3, 2)"])
            .forward(vec![x], vec![vec![1., 2., 1., 2., 1., 2.]]),
    ]
}
