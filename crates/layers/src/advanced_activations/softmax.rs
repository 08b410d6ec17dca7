//! `Softmax`: `exp(x) / sum(exp(x))` along one axis (`keras/src/layers/activations/softmax.py`),
//! on `rkeras_ops::softmax`'s kernel, differentiated from the output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Softmax`'s options, with Keras's default. One axis (Keras also takes a list of axes, which
/// this layer does not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxConfig {
    /// The axis normalised, negative from the end (default -1, the last).
    pub axis: i64,
}

/// Softmax along an axis: `Softmax::new().axis(1)(x)`.
pub type Softmax = LayerBuilder<SoftmaxConfig>;

impl Softmax {
    /// Softmax along the last axis.
    pub fn new() -> Self {
        LayerBuilder::from_config(SoftmaxConfig { axis: -1 })
    }

    /// The axis normalised, negative from the end.
    pub fn axis(self, axis: i64) -> Self {
        self.with(|c| c.axis = axis)
    }
}

impl Default for Softmax {
    fn default() -> Self {
        Softmax::new()
    }
}

impl LayerConfig for SoftmaxConfig {
    const CLASS_NAME: &'static str = "Softmax";
    const NAME_PREFIX: &'static str = "softmax";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(SoftmaxLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            over_batch: AtomicBool::new(false),
        }))
    }
}

/// The layer a [`Softmax`] builder makes.
pub struct SoftmaxLayer {
    base: LayerBase,
    config: SoftmaxConfig,
    /// Whether a build found the axis to be the batch's.
    over_batch: AtomicBool,
}

impl SoftmaxLayer {
    /// The axis of an input of `rank` dimensions, or an error naming the layer.
    fn axis(&self, rank: usize) -> Result<usize> {
        let axis = self.config.axis;
        let resolved = if axis < 0 { rank as i64 + axis } else { axis };
        if (0..rank as i64).contains(&resolved) {
            Ok(resolved as usize)
        } else {
            Err(Error::shape(
                self.name(),
                format!("an input with an axis {axis}"),
                format!("{rank} dimensions"),
            ))
        }
    }
}

impl Layer for SoftmaxLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        SoftmaxConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        if self.axis(shape.rank())? == 0 {
            self.over_batch.store(true, Ordering::Relaxed);
        }
        Ok(vec![shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        Ok(vec![rkeras_ops::softmax(x, self.axis(x.rank())?)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// Along the batch axis, each output depends on the whole batch.
    fn mixes_samples(&self) -> bool {
        self.over_batch.load(Ordering::Relaxed)
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (_, y, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let axis = self.axis(y.rank())?;
        Ok(vec![Some(rkeras_ops::softmax_backward(y, dy, axis)?)])
    }
}

/// The harness cases: the last axis, a middle one, a negative one, and forwards by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |softmax: Softmax| softmax.layer().expect("softmax");
    // Keras's docstring example: [1, 2, 1] gives [0.21194157, 0.5761169, 0.21194157].
    let x = candle_core::Tensor::new(&[[1f32, 2.0, 1.0]], &candle_core::Device::Cpu).expect("x");
    // Along axis 1 of (1, 2, 2) = [[0, 0], [ln 3, 1]]: columns [0, ln 3] and [0, 1].
    let columns = candle_core::Tensor::new(
        &[[[0f32, 0.0], [3f32.ln(), 1.0]]],
        &candle_core::Device::Cpu,
    )
    .expect("columns");
    let e = std::f64::consts::E;
    vec![
        LayerCase::new(layer(Softmax::new()), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x], vec![vec![0.211_941_57, 0.576_116_9, 0.211_941_57]]),
        LayerCase::new(layer(Softmax::new().axis(1)), &[&[2, 2]])
            .output_shapes(&["(None, 2, 2)"])
            .forward(
                vec![columns],
                vec![vec![0.25, 1.0 / (1.0 + e), 0.75, e / (1.0 + e)]],
            ),
        LayerCase::new(layer(Softmax::new().axis(-2)), &[&[3, 4, 2]])
            .output_shapes(&["(None, 3, 4, 2)"]),
        LayerCase::new(layer(Softmax::new()), &[&[2, 5]]).output_shapes(&["(None, 2, 5)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_axis_out_of_range_is_an_error_naming_the_layer() {
        let softmax = Softmax::new().axis(3).name("s");
        let message = softmax(crate::Input::new(&[4]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'s'") && message.contains("axis 3"),
            "{message}"
        );
        let layer = Softmax::new().axis(0).layer().expect("layer");
        layer
            .build(&[SymbolicShape::batched(None, &[3])])
            .expect("build");
        assert!(layer.mixes_samples());
    }
}
