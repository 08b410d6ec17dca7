//! `Cropping2D`: removes rows and columns at the borders of a channels-last image
//! (`keras/src/layers/reshaping/cropping2d.py`).

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::sides::Sides2;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Cropping2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cropping2DConfig {
    /// Rows cut above and below, columns left and right (default none).
    pub cropping: Sides2,
}

/// Cropping: `Cropping2D::new(((1, 2), (3, 4)))(x)`, `Cropping2D::new(1)(x)`.
pub type Cropping2D = LayerBuilder<Cropping2DConfig>;

impl Cropping2D {
    /// Cropping by `cropping`: `n`, `(rows, columns)` or `((top, bottom), (left, right))`.
    pub fn new(cropping: impl Into<Sides2>) -> Self {
        LayerBuilder::from_config(Cropping2DConfig {
            cropping: cropping.into(),
        })
    }
}

impl Default for Cropping2D {
    fn default() -> Self {
        Cropping2D::new(0)
    }
}

impl LayerConfig for Cropping2DConfig {
    const CLASS_NAME: &'static str = "Cropping2D";
    const NAME_PREFIX: &'static str = "cropping2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        self.cropping.check(&name, "cropping")?;
        Ok(Arc::new(Cropping2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`Cropping2D`] builder makes.
pub struct Cropping2DLayer {
    base: LayerBase,
    config: Cropping2DConfig,
}

impl Cropping2DLayer {
    /// The output shape for an input of `shape`, which must be `(batch, height, width,
    /// channels)` with more rows and columns than are cut (Keras's rule).
    fn output_shape(&self, shape: &SymbolicShape) -> Result<SymbolicShape> {
        let (dh, dw) = self.config.cropping.totals();
        let left = |len: Option<usize>, cut: usize| match len {
            Some(len) => len.checked_sub(cut).filter(|&n| n > 0).map(Some),
            None => Some(None),
        };
        let refused = || {
            Error::shape(
                self.name(),
                format!(
                    "(None, height, width, channels) with more than {dh} rows and {dw} columns"
                ),
                shape,
            )
        };
        let &[batch, h, w, c] = shape.dims() else {
            return Err(refused());
        };
        let (Some(h), Some(w)) = (left(h, dh), left(w, dw)) else {
            return Err(refused());
        };
        Ok(SymbolicShape(vec![batch, h, w, c]))
    }
}

impl Layer for Cropping2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <Cropping2DConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        Ok(vec![self.output_shape(single_input(self.name(), inputs)?)?])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let known = SymbolicShape(x.dims().iter().map(|&d| Some(d)).collect());
        let out = self.output_shape(&known)?;
        let (h, w) = (out.dims()[1].unwrap_or(0), out.dims()[2].unwrap_or(0));
        let Sides2((top, _), (left, _)) = self.config.cropping;
        Ok(vec![x
            .narrow(1, top, h)?
            .narrow(2, left, w)?
            .contiguous()?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// The gradient padded back with zeros, on every device.
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
        let Sides2((top, bottom), (left, right)) = self.config.cropping;
        Ok(vec![Some(
            dy.pad_with_zeros(1, top, bottom)?
                .pad_with_zeros(2, left, right)?,
        )])
    }
}

/// The harness cases: each form of `cropping`, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let crop = |c: Cropping2D| c.layer().expect("cropping");
    // 1..12 in a 3x4 image.
    let x = Tensor::arange(1f32, 13.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 4, 1)))
        .expect("x");
    vec![
        LayerCase::new(crop(Cropping2D::default()), &[&[2, 3, 2]])
            .output_shapes(&["(None, 2, 3, 2)"]),
        LayerCase::new(crop(Cropping2D::new(1)), &[&[4, 5, 2]]).output_shapes(&["(None, 2, 3, 2)"]),
        LayerCase::new(crop(Cropping2D::new((1, 0))), &[&[4, 3, 1]])
            .output_shapes(&["(None, 2, 3, 1)"]),
        // One row off the top, one column off the left and two off the right of
        // [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]: [[6], [10]].
        LayerCase::new(crop(Cropping2D::new(((1, 0), (1, 2)))), &[&[3, 4, 1]])
            .output_shapes(&["(None, 2, 1, 1)"])
            .forward(vec![x], vec![vec![6., 10.]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_cut_everything() {
        let x = crate::Input::new(&[4, 4, 1]);
        let err = Cropping2D::new((2, 1))(x).shape().unwrap_err().to_string();
        assert!(err.contains("more than 4 rows"), "{err}");
        assert!(Cropping2D::new(((0, 0), (1, 3)))(x).shape().is_err());
        assert!(Cropping2D::new(1 << 20).layer().is_err());
    }
}
