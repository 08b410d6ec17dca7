//! `ZeroPadding2D`: rows and columns of zeros around a channels-last image
//! (`keras/src/layers/reshaping/zero_padding2d.py`).

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::sides::Sides2;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::check_shape;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `ZeroPadding2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZeroPadding2DConfig {
    /// Rows above and below, columns left and right (default one each).
    pub padding: Sides2,
}

/// Zero padding: `ZeroPadding2D::new(((1, 2), (3, 4)))(x)`, `ZeroPadding2D::new(1)(x)`.
pub type ZeroPadding2D = LayerBuilder<ZeroPadding2DConfig>;

impl ZeroPadding2D {
    /// Padding by `padding`: `n`, `(rows, columns)` or `((top, bottom), (left, right))`.
    pub fn new(padding: impl Into<Sides2>) -> Self {
        LayerBuilder::from_config(ZeroPadding2DConfig {
            padding: padding.into(),
        })
    }
}

impl Default for ZeroPadding2D {
    fn default() -> Self {
        ZeroPadding2D::new(1)
    }
}

impl LayerConfig for ZeroPadding2DConfig {
    const CLASS_NAME: &'static str = "ZeroPadding2D";
    const NAME_PREFIX: &'static str = "zero_padding2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        self.padding.check(&name, "padding")?;
        Ok(Arc::new(ZeroPadding2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`ZeroPadding2D`] builder makes.
pub struct ZeroPadding2DLayer {
    base: LayerBase,
    config: ZeroPadding2DConfig,
}

impl ZeroPadding2DLayer {
    /// The output shape for an input of `shape`, which must be `(batch, height, width, channels)`.
    fn output_shape(&self, shape: &SymbolicShape) -> Result<SymbolicShape> {
        let &[batch, h, w, c] = shape.dims() else {
            return Err(Error::shape(
                self.name(),
                "(None, height, width, channels)",
                shape,
            ));
        };
        let (dh, dw) = self.config.padding.totals();
        Ok(SymbolicShape(vec![
            batch,
            h.map(|h| h + dh),
            w.map(|w| w + dw),
            c,
        ]))
    }
}

impl Layer for ZeroPadding2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <ZeroPadding2DConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        Ok(vec![self.output_shape(single_input(self.name(), inputs)?)?])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let known = SymbolicShape(x.dims().iter().map(|&d| Some(d)).collect());
        check_shape(self.name(), &self.output_shape(&known)?)?;
        let Sides2((top, bottom), (left, right)) = self.config.padding;
        let padded = x
            .pad_with_zeros(1, top, bottom)?
            .pad_with_zeros(2, left, right)?;
        Ok(vec![padded])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// The gradient without its border, on every device.
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
        let Sides2((top, _), (left, _)) = self.config.padding;
        let (_, h, w, _) = x.dims4()?;
        Ok(vec![Some(
            dy.narrow(1, top, h)?.narrow(2, left, w)?.contiguous()?,
        )])
    }
}

/// The harness cases: each form of `padding`, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let pad = |p: ZeroPadding2D| p.layer().expect("padding");
    let x = Tensor::new(&[1f32, 2.0], &Device::Cpu)
        .and_then(|x| x.reshape((1, 1, 2, 1)))
        .expect("x");
    vec![
        LayerCase::new(pad(ZeroPadding2D::default()), &[&[3, 4, 2]])
            .output_shapes(&["(None, 5, 6, 2)"]),
        LayerCase::new(pad(ZeroPadding2D::new((2, 0))), &[&[3, 4, 1]])
            .output_shapes(&["(None, 7, 4, 1)"]),
        // [1, 2] with one row above, none below, no column left and two right:
        // [[0, 0, 0, 0], [1, 2, 0, 0]].
        LayerCase::new(pad(ZeroPadding2D::new(((1, 0), (0, 2)))), &[&[1, 2, 1]])
            .output_shapes(&["(None, 2, 4, 1)"])
            .forward(vec![x], vec![vec![0., 0., 0., 0., 1., 2., 0., 0.]]),
    ]
}
