//! `ActivityRegularization`: returns its input unchanged and adds the penalty
//! `l1 · Σ|x| + l2 · Σx²` on it, divided by the batch size, to the loss
//! (`keras/src/layers/regularization/activity_regularization.py`, the layer's
//! `activity_regularizer=L1L2(l1, l2)` applied by `Layer.__call__`). The backward pass adds the
//! penalty's gradient to the output's: candle ops, on every device.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::kernel_bias::{activity_penalty, with_activity_penalty_gradient};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `ActivityRegularization`'s options, Keras's `l1` and `l2` (default 0 each).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivityRegularizationConfig {
    /// The L1 factor.
    #[serde(default)]
    pub l1: f64,
    /// The L2 factor.
    #[serde(default)]
    pub l2: f64,
}

/// A penalty on the activity flowing through: `ActivityRegularization::new().l1(1e-4)(x)`.
pub type ActivityRegularization = LayerBuilder<ActivityRegularizationConfig>;

impl ActivityRegularization {
    /// A layer with no penalty until `l1` or `l2` is set (Keras's defaults).
    pub fn new() -> Self {
        LayerBuilder::from_config(ActivityRegularizationConfig::default())
    }

    /// The L1 factor.
    pub fn l1(self, l1: f64) -> Self {
        self.with(|c| c.l1 = l1)
    }

    /// The L2 factor.
    pub fn l2(self, l2: f64) -> Self {
        self.with(|c| c.l2 = l2)
    }
}

impl Default for ActivityRegularization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerConfig for ActivityRegularizationConfig {
    const CLASS_NAME: &'static str = "ActivityRegularization";
    const NAME_PREFIX: &'static str = "activity_regularization";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        for (option, value) in [("l1", self.l1), ("l2", self.l2)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::config(
                    name,
                    format!("{option} must be finite and non-negative, got {value}"),
                ));
            }
        }
        let penalized = self.l1 != 0.0 || self.l2 != 0.0;
        Ok(Arc::new(ActivityRegularizationLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            regularizer: penalized.then(|| Regularizer::l1_l2(self.l1, self.l2)),
        }))
    }
}

/// The layer an [`ActivityRegularization`] builder makes.
pub struct ActivityRegularizationLayer {
    base: LayerBase,
    config: ActivityRegularizationConfig,
    /// The penalty, none when both factors are 0.
    regularizer: Option<Regularizer>,
}

impl Layer for ActivityRegularizationLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        ActivityRegularizationConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        Ok(vec![single_input(self.name(), inputs)?.clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        if let Some(penalty) = activity_penalty(self.regularizer.as_ref(), x)? {
            ctx.add_loss(penalty);
        }
        Ok(vec![x.clone()])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// The output's gradient plus the penalty's, on every device.
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
        Ok(vec![Some(with_activity_penalty_gradient(
            self.regularizer.as_ref(),
            x,
            dy,
        )?)])
    }
}

/// The harness cases: L1, L2, both, none (the gradient checks include the penalty), and the
/// forward (the identity).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |r: ActivityRegularization| r.layer().expect("activity regularization");
    let x = Tensor::new(&[[-1f32, 0.5, 2.0]], &candle_core::Device::Cpu).expect("x");
    vec![
        LayerCase::new(layer(ActivityRegularization::new().l1(0.1)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x], vec![vec![-1.0, 0.5, 2.0]]),
        LayerCase::new(layer(ActivityRegularization::new().l2(0.5)), &[&[2, 3]])
            .output_shapes(&["(None, 2, 3)"]),
        LayerCase::new(
            layer(ActivityRegularization::new().l1(0.2).l2(0.3)),
            &[&[4]],
        )
        .output_shapes(&["(None, 4)"]),
        LayerCase::new(layer(ActivityRegularization::new()), &[&[4]]).output_shapes(&["(None, 4)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::flat;
    use candle_core::Device;

    #[test]
    fn adds_the_penalty_divided_by_the_batch_size() -> Result<()> {
        let layer = ActivityRegularization::new().l1(0.1).l2(0.5).layer()?;
        let x = Tensor::new(&[[-1f32, 0.5], [2.0, 0.0]], &Device::Cpu)?;
        let mut ctx = CallContext::new(false);
        let y = layer.call(std::slice::from_ref(&x), &mut ctx)?;
        assert_eq!(flat(&y[0]), flat(&x));
        // (0.1 · (1 + 0.5 + 2) + 0.5 · (1 + 0.25 + 4)) / 2 = (0.35 + 2.625) / 2 = 1.4875.
        let [loss] = ctx.losses() else {
            panic!("one loss")
        };
        assert!((loss.to_scalar::<f32>()? - 1.4875).abs() < 1e-6);
        let mut none = CallContext::new(false);
        ActivityRegularization::new()
            .layer()?
            .call(&[x], &mut none)?;
        assert!(none.losses().is_empty());
        Ok(())
    }

    #[test]
    fn saves_keras_keys_and_refuses_bad_factors() {
        let layer = ActivityRegularization::new()
            .l2(0.01)
            .name("ar")
            .layer()
            .unwrap();
        let config = layer.config();
        assert_eq!(
            (config["l1"].as_f64(), config["l2"].as_f64()),
            (Some(0.0), Some(0.01))
        );
        for bad in [
            ActivityRegularization::new().l1(-1.0),
            ActivityRegularization::new().l2(f64::NAN),
        ] {
            let message = bad.name("ar2").layer().err().expect("refused").to_string();
            assert!(message.contains("'ar2'"), "{message}");
        }
    }
}
