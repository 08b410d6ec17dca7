//! `MaxPooling2D`: the maximum over each window of a channels-last image
//! (`keras/src/layers/pooling/max_pooling2d.py`); padded cells never win. The work is done by
//! `rkeras_ops::max_pool2d` (see [`PoolingLayer`]), whose gradient routes to the maximum in full.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::base_pooling::{Pooling, PoolingLayer};
use super::pool_mode::PoolMode;
use super::pool_window::PoolWindow;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::Size2;
use crate::{Layer, Result};

/// `MaxPooling2D`'s options, with Keras's defaults: its window, saved as Keras saves it
/// (`pool_size`, `strides`, `padding`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxPooling2DConfig {
    /// The window (default 2x2, strides equal to it, valid padding).
    pub window: PoolWindow<Size2>,
}

/// Max pooling: `MaxPooling2D::new((2, 2)).padding("same")(x)`.
pub type MaxPooling2D = LayerBuilder<MaxPooling2DConfig>;

impl MaxPooling2D {
    /// Pooling over `pool_size` windows, strides equal to the window, valid padding.
    pub fn new(pool_size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(MaxPooling2DConfig {
            window: PoolWindow::new(pool_size.into()),
        })
    }
}

impl Default for MaxPooling2D {
    fn default() -> Self {
        MaxPooling2D::new((2, 2))
    }
}

impl LayerConfig for MaxPooling2DConfig {
    const CLASS_NAME: &'static str = "MaxPooling2D";
    const NAME_PREFIX: &'static str = "max_pooling2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        PoolingLayer::made(self, name, trainable)
    }
}

impl Pooling for MaxPooling2DConfig {
    type Size = Size2;
    const MODE: PoolMode = PoolMode::Max;

    fn window(&self) -> &PoolWindow<Size2> {
        &self.window
    }

    fn window_mut(&mut self) -> &mut PoolWindow<Size2> {
        &mut self.window
    }
}

/// The harness cases: same and valid padding, strides, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Tensor;
    let pool = |p: MaxPooling2D| p.layer().expect("pool");
    // 1..9 in a 3x3 image: 2x2 windows, 'same' pads below and right.
    let x = Tensor::arange(1f32, 10.0, &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 3, 1)))
        .expect("x");
    vec![
        LayerCase::new(
            pool(MaxPooling2D::new((2, 2)).padding("same")),
            &[&[5, 5, 2]],
        )
        .output_shapes(&["(None, 3, 3, 2)"]),
        LayerCase::new(
            pool(MaxPooling2D::new((3, 3)).strides((2, 1))),
            &[&[5, 4, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"]),
        LayerCase::new(
            pool(MaxPooling2D::new((2, 2)).padding("same")),
            &[&[3, 3, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .forward(vec![x.clone()], vec![vec![5.0, 6.0, 8.0, 9.0]]),
        LayerCase::new(pool(MaxPooling2D::new((2, 2))), &[&[3, 3, 1]])
            .output_shapes(&["(None, 1, 1, 1)"])
            .forward(vec![x], vec![vec![5.0]]),
    ]
}
