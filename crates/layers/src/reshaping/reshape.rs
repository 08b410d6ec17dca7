//! `Reshape`: `(batch, ...)` to `(batch, target_shape...)` in row-major order; one target
//! dimension may be `-1`, inferred (`keras/src/layers/reshaping/reshape.py`).

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Reshape`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReshapeConfig {
    /// The shape without the batch; at most one `-1`.
    pub target_shape: Vec<i64>,
}

/// Reshapes every axis after the batch: `Reshape::new(&[28, 28, 1])(x)`.
pub type Reshape = LayerBuilder<ReshapeConfig>;

impl Reshape {
    /// A reshape to `target_shape` (without the batch).
    pub fn new(target_shape: &[i64]) -> Self {
        LayerBuilder::from_config(ReshapeConfig {
            target_shape: target_shape.to_vec(),
        })
    }
}

impl LayerConfig for ReshapeConfig {
    const CLASS_NAME: &'static str = "Reshape";
    const NAME_PREFIX: &'static str = "reshape";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        let unknowns = self.target_shape.iter().filter(|&&d| d == -1).count();
        if unknowns > 1 || self.target_shape.iter().any(|&d| d == 0 || d < -1) {
            return Err(Error::config(
                name,
                format!(
                    "target_shape {:?} must hold positive sizes and at most one -1",
                    self.target_shape
                ),
            ));
        }
        Ok(Arc::new(ReshapeLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`Reshape`] builder makes.
pub struct ReshapeLayer {
    base: LayerBase,
    config: ReshapeConfig,
}

impl ReshapeLayer {
    /// The target dimensions for `features` input values per sample, or why they cannot be.
    fn resolve(&self, features: usize, input: &dyn std::fmt::Display) -> Result<Vec<usize>> {
        let known: usize = self
            .config
            .target_shape
            .iter()
            .filter(|&&d| d > 0)
            .map(|&d| d as usize)
            .product();
        let has_unknown = self.config.target_shape.contains(&-1);
        let fits = if has_unknown {
            features.is_multiple_of(known)
        } else {
            features == known
        };
        if !fits {
            return Err(Error::shape(
                self.name(),
                format!(
                    "an input with {} values per sample to reshape into {:?}",
                    if has_unknown {
                        format!("a multiple of {known}")
                    } else {
                        known.to_string()
                    },
                    self.config.target_shape
                ),
                input,
            ));
        }
        Ok(self
            .config
            .target_shape
            .iter()
            .map(|&d| {
                if d == -1 {
                    features / known
                } else {
                    d as usize
                }
            })
            .collect())
    }
}

impl Layer for ReshapeLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <ReshapeConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let batch = shape.dims().first().copied().flatten();
        let dims = match shape.known_features() {
            Some(features) => self
                .resolve(features.iter().product(), shape)?
                .into_iter()
                .map(Some)
                .collect(),
            None => self
                .config
                .target_shape
                .iter()
                .map(|&d| (d > 0).then_some(d as usize))
                .collect(),
        };
        let mut all = vec![batch];
        all.extend::<Vec<Option<usize>>>(dims);
        Ok(vec![SymbolicShape(all)])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let batch = x.dims().first().copied().unwrap_or(1);
        let features = x.elem_count() / batch.max(1);
        let mut dims = vec![batch];
        dims.extend(self.resolve(features, &format!("{:?}", x.dims()))?);
        Ok(vec![x.reshape(dims)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
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
    let x = Tensor::arange(0f32, 6.0, &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 3)))
        .expect("x");
    vec![
        LayerCase::new(
            Reshape::new(&[3, -1]).layer().expect("reshape"),
            &[&[2, 3, 2]],
        )
        .output_shapes(&["(None, 3, 4)"]),
        LayerCase::new(Reshape::new(&[3, 2]).layer().expect("reshape"), &[&[2, 3]])
            .output_shapes(&["(None, 3, 2)"])
            .forward(vec![x], vec![vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]),
    ]
}
