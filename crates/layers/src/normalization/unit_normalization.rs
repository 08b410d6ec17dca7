//! `UnitNormalization`: each sample scaled to unit L2 norm over some axes (the last by default)
//! (`keras/src/layers/normalization/unit_normalization.py`, computed as `keras/src/ops/nn.py`'s
//! `_normalize` with `order=2, epsilon=1e-12`: `x · rsqrt(max(Σx², epsilon²))`, so a zero
//! vector stays zero). No weights; the backward pass is candle ops, on every device.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::axes::{resolve_axes, RowLayout};
use super::layer_normalization::Axes;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// The floor of the squared norm: Keras's `epsilon²`, `(1e-12)²`.
const MIN_SQUARED_NORM: f64 = 1e-24;

/// `UnitNormalization`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitNormalizationConfig {
    /// The axes whose values form each unit vector (default -1).
    pub axis: Axes,
}

/// L2 normalization, callable on symbolic tensors: `UnitNormalization::new()(x)`.
pub type UnitNormalization = LayerBuilder<UnitNormalizationConfig>;

impl UnitNormalization {
    /// Unit vectors along the last axis.
    pub fn new() -> Self {
        LayerBuilder::from_config(UnitNormalizationConfig {
            axis: Axes::One(-1),
        })
    }

    /// Unit vectors along one axis (negative counts from the end).
    pub fn axis(self, axis: i64) -> Self {
        self.with(|c| c.axis = Axes::One(axis))
    }

    /// Unit vectors over several axes (Keras's `axis=[1, 2]`).
    pub fn axes(self, axes: &[i64]) -> Self {
        self.with(|c| c.axis = Axes::Many(axes.to_vec()))
    }
}

impl Default for UnitNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerConfig for UnitNormalizationConfig {
    const CLASS_NAME: &'static str = "UnitNormalization";
    const NAME_PREFIX: &'static str = "unit_normalization";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if self.axis.list().is_empty() {
            return Err(Error::config(name, "axis must name at least one axis"));
        }
        Ok(Arc::new(UnitNormalizationLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// What a recorded call keeps: each row's inverse norm, and 1 where the norm was not floored.
struct Saved {
    inv_norm: Tensor,
    unfloored: Tensor,
}

/// The layer a [`UnitNormalization`] builder makes.
pub struct UnitNormalizationLayer {
    base: LayerBase,
    config: UnitNormalizationConfig,
}

impl UnitNormalizationLayer {
    /// An input of `dims` as rows, one per unit vector.
    fn layout(&self, dims: &[usize]) -> Result<RowLayout> {
        let axes = resolve_axes(self.name(), &self.config.axis.list(), dims.len())?;
        Ok(RowLayout::new(dims, &axes))
    }
}

impl Layer for UnitNormalizationLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        UnitNormalizationConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        resolve_axes(self.name(), &self.config.axis.list(), shape.rank())?;
        Ok(vec![shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let layout = self.layout(x.dims())?;
        let rows = layout.to_rows(x)?;
        let squared = rows.sqr()?.sum_keepdim(1)?;
        let inv_norm = squared.maximum(MIN_SQUARED_NORM)?.sqrt()?.recip()?;
        let y = rows.broadcast_mul(&inv_norm)?;
        if ctx.is_recording() {
            let unfloored = squared.gt(MIN_SQUARED_NORM)?.to_dtype(x.dtype())?;
            ctx.save(Saved {
                inv_norm,
                unfloored,
            });
        }
        Ok(vec![layout.to_input_dims(&y)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// Candle ops, on every device.
    fn has_backward(&self, _device: &Device) -> bool {
        true
    }

    /// With `s = rsqrt(Σx²)` and `y = x · s`: `dx = s · (dy - y · Σ(y · dy))`, and
    /// `dx = s · dy` where the norm was floored (`s` is then a constant).
    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let saved = record.saved::<Saved>(self.name())?;
        let layout = self.layout(x.dims())?;
        let (y, dy) = (layout.to_rows(y)?, layout.to_rows(dy)?);
        let along = (&y * &dy)?.sum_keepdim(1)?.mul(&saved.unfloored)?;
        let dx = (dy - y.broadcast_mul(&along)?)?.broadcast_mul(&saved.inv_norm)?;
        Ok(vec![Some(layout.to_input_dims(&dx)?)])
    }
}

/// The harness cases: the last axis, an axis before it, several axes, and forwards computed by
/// hand (a zero vector included).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Device;
    let layer = |un: UnitNormalization| un.layer().expect("unit normalization");
    // [3, 4] has norm 5: [0.6, 0.8]; [0, 0] is floored, so stays [0, 0]; [1, -1]: ±1/√2.
    let r = 0.5f64.sqrt();
    let x = Tensor::new(&[[3f32, 4.0], [0.0, 0.0], [1.0, -1.0]], &Device::Cpu).expect("x");
    // Axis 1 of [[3, 1], [4, 2]] (per column): [3, 4] / 5 and [1, 2] / √5.
    let s = 1.0 / 5f64.sqrt();
    let columns = Tensor::new(&[[[3f32, 1.0], [4.0, 2.0]]], &Device::Cpu).expect("x");
    // Axes [1, 2] of [[1, 2], [2, 4]]: norm √25 = 5.
    let whole = Tensor::new(&[[[1f32, 2.0], [2.0, 4.0]]], &Device::Cpu).expect("x");
    vec![
        LayerCase::new(layer(UnitNormalization::new()), &[&[2]])
            .output_shapes(&["(None, 2)"])
            .forward(vec![x], vec![vec![0.6, 0.8, 0.0, 0.0, r, -r]]),
        LayerCase::new(layer(UnitNormalization::new().axis(1)), &[&[2, 2]])
            .output_shapes(&["(None, 2, 2)"])
            .forward(vec![columns], vec![vec![0.6, s, 0.8, 2.0 * s]]),
        LayerCase::new(layer(UnitNormalization::new().axes(&[1, 2])), &[&[2, 2]])
            .output_shapes(&["(None, 2, 2)"])
            .forward(vec![whole], vec![vec![0.2, 0.4, 0.4, 0.8]]),
        LayerCase::new(layer(UnitNormalization::new().axis(-2)), &[&[3, 4, 2]])
            .output_shapes(&["(None, 3, 4, 2)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_the_axis_as_keras_and_refuses_bad_axes() {
        let layer = UnitNormalization::new().name("un").layer().unwrap();
        assert_eq!(layer.config()["axis"], -1);
        let many = UnitNormalization::new()
            .axes(&[1, 2])
            .name("un1")
            .layer()
            .unwrap();
        assert_eq!(many.config()["axis"], serde_json::json!([1, 2]));
        let shape = |un: UnitNormalization, dims: &[usize]| {
            un(crate::Input::new(dims)).shape().unwrap_err().to_string()
        };
        let message = shape(UnitNormalization::new().axis(3).name("un2"), &[4, 2]);
        assert!(
            message.contains("'un2'") && message.contains("out of range"),
            "{message}"
        );
        let message = shape(UnitNormalization::new().axes(&[1, -2]).name("un3"), &[4, 2]);
        assert!(message.contains("duplicate"), "{message}");
        assert!(UnitNormalization::new().axes(&[]).layer().is_err());
    }
}
