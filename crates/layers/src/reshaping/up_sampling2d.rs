//! `UpSampling2D`: repeats each pixel `size` times along height and width (nearest)
//! (`keras/src/layers/reshaping/up_sampling2d.py`); the work is done by
//! `rkeras_ops::upsample_nearest2d`.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::Size2;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::check_window;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `UpSampling2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpSampling2DConfig {
    /// Repeat factors along height and width (default 2x2).
    pub size: Size2,
}

/// Nearest-neighbour upsampling: `UpSampling2D::new((2, 2))(x)`.
pub type UpSampling2D = LayerBuilder<UpSampling2DConfig>;

impl UpSampling2D {
    /// Upsampling by `size`.
    pub fn new(size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(UpSampling2DConfig { size: size.into() })
    }
}

impl Default for UpSampling2D {
    fn default() -> Self {
        UpSampling2D::new((2, 2))
    }
}

impl LayerConfig for UpSampling2DConfig {
    const CLASS_NAME: &'static str = "UpSampling2D";
    const NAME_PREFIX: &'static str = "up_sampling2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        check_window(&name, "size", self.size)?;
        Ok(Arc::new(UpSampling2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer an [`UpSampling2D`] builder makes.
pub struct UpSampling2DLayer {
    base: LayerBase,
    config: UpSampling2DConfig,
}

impl Layer for UpSampling2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <UpSampling2DConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        if shape.rank() != 4 {
            return Err(Error::shape(
                self.name(),
                "(None, height, width, channels)",
                shape,
            ));
        }
        let d = shape.dims();
        let Size2(sh, sw) = self.config.size;
        Ok(vec![SymbolicShape(vec![
            d[0],
            d[1].map(|h| h * sh),
            d[2].map(|w| w * sw),
            d[3],
        ])])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        if x.rank() != 4 {
            return Err(Error::shape(
                self.name(),
                "(batch, height, width, channels)",
                format!("{:?}", x.dims()),
            ));
        }
        Ok(vec![rkeras_ops::upsample_nearest2d(
            x,
            self.config.size.pair(),
        )?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
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
        let (_, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let dx = rkeras_ops::upsample_nearest2d_backward(dy, self.config.size.pair())?;
        Ok(vec![Some(dx)])
    }
}

/// The harness cases, with a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let x = Tensor::new(&[1f32, 2.0], &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 1, 2, 1)))
        .expect("x");
    vec![
        LayerCase::new(
            UpSampling2D::new((2, 3)).layer().expect("up"),
            &[&[2, 3, 2]],
        )
        .output_shapes(&["(None, 4, 9, 2)"]),
        LayerCase::new(
            UpSampling2D::new((2, 1)).layer().expect("up"),
            &[&[1, 2, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .forward(vec![x], vec![vec![1.0, 2.0, 1.0, 2.0]]),
    ]
}
