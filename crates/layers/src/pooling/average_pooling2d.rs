//! `AveragePooling2D`: the mean over each window of a channels-last image
//! (`keras/src/layers/pooling/average_pooling2d.py`). With `padding="same"` a window at the
//! border averages its real cells only, as TensorFlow's `avg_pool` does (and Keras's JAX backend
//! matches: `keras/src/backend/jax/nn.py`, `average_pool`). The work is done by
//! `rkeras_ops::avg_pool2d`.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::base_pooling::{PoolWindow, PoolingConfig};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::Size2;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// `AveragePooling2D`'s options, with Keras's defaults: its window, saved as Keras saves it
/// (`pool_size`, `strides`, `padding`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AveragePooling2DConfig {
    /// The window (default 2x2, strides equal to it, valid padding).
    pub window: PoolWindow,
}

/// Average pooling: `AveragePooling2D::new((2, 2)).padding("same")(x)`.
pub type AveragePooling2D = LayerBuilder<AveragePooling2DConfig>;

impl AveragePooling2D {
    /// Pooling over `pool_size` windows, strides equal to the window, valid padding.
    pub fn new(pool_size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(AveragePooling2DConfig {
            window: PoolWindow::new(pool_size.into()),
        })
    }
}

impl Default for AveragePooling2D {
    fn default() -> Self {
        AveragePooling2D::new((2, 2))
    }
}

impl PoolingConfig for AveragePooling2DConfig {
    fn window_mut(&mut self) -> &mut PoolWindow {
        &mut self.window
    }
}

impl LayerConfig for AveragePooling2DConfig {
    const CLASS_NAME: &'static str = "AveragePooling2D";
    const NAME_PREFIX: &'static str = "average_pooling2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        self.window.check(&name)?;
        Ok(Arc::new(AveragePooling2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer an [`AveragePooling2D`] builder makes.
pub struct AveragePooling2DLayer {
    base: LayerBase,
    config: AveragePooling2DConfig,
}

impl Layer for AveragePooling2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <AveragePooling2DConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        Ok(vec![self.config.window.output_shape(self.name(), shape)?])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let (pool, strides, padding) = self.config.window.placement(self.name(), x)?;
        Ok(vec![rkeras_ops::avg_pool2d(x, pool, strides, padding)?])
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
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let (pool, strides, padding) = self.config.window.placement(self.name(), x)?;
        let dx = rkeras_ops::avg_pool2d_backward(x, dy, pool, strides, padding)?;
        Ok(vec![Some(dx)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }
}

/// The harness cases: same and valid padding, strides, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let pool = |p: AveragePooling2D| p.layer().expect("pool");
    // 1..9 in a 3x3 image.
    let x = Tensor::arange(1f32, 10.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 3, 1)))
        .expect("x");
    vec![
        LayerCase::new(pool(AveragePooling2D::default()), &[&[4, 6, 3]])
            .output_shapes(&["(None, 2, 3, 3)"]),
        LayerCase::new(
            pool(AveragePooling2D::new((3, 3)).strides((2, 1))),
            &[&[5, 4, 2]],
        )
        .output_shapes(&["(None, 2, 2, 2)"]),
        LayerCase::new(
            pool(AveragePooling2D::new(3).strides(1).padding("same")),
            &[&[4, 4, 2]],
        )
        .output_shapes(&["(None, 4, 4, 2)"]),
        // 'same' pads below and right; the border windows average their real cells only:
        // [[(1+2+4+5)/4, (3+6)/2], [(7+8)/2, 9]] = [[3, 4.5], [7.5, 9]].
        LayerCase::new(
            pool(AveragePooling2D::new((2, 2)).padding("same")),
            &[&[3, 3, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .forward(vec![x.clone()], vec![vec![3.0, 4.5, 7.5, 9.0]]),
        // Valid: the one window (1+2+4+5)/4 = 3.
        LayerCase::new(pool(AveragePooling2D::new((2, 2))), &[&[3, 3, 1]])
            .output_shapes(&["(None, 1, 1, 1)"])
            .forward(vec![x], vec![vec![3.0]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_its_window_as_keras_does() {
        let layer = AveragePooling2D::new((3, 2))
            .strides(1)
            .padding("same")
            .layer()
            .unwrap();
        let config = layer.config();
        assert_eq!(config["pool_size"], serde_json::json!([3, 2]));
        assert_eq!(config["strides"], serde_json::json!([1, 1]));
        assert_eq!(config["padding"], "same");
        let err = AveragePooling2D::new(2)
            .padding("full")
            .layer()
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown padding"), "{err}");
        let too_small = AveragePooling2D::new(3)(crate::Input::new(&[2, 2, 1]));
        assert!(too_small.shape().is_err());
    }
}
