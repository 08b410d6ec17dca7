//! `UpSampling2D`: repeats each pixel `size` times along height and width (nearest)
//! (`keras/src/layers/reshaping/up_sampling2d.py`), by [`UpSamplingLayer`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::base_up_sampling::{UpSampling, UpSamplingLayer};
use super::spatial::Spatial;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::Size2;
use crate::limits::check_window;
use crate::{Layer, Result};

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
        UpSamplingLayer::made(self, name, trainable)
    }
}

impl UpSampling for UpSampling2DConfig {
    const SPATIAL: Spatial = Spatial::Image;

    fn factors(&self) -> Size2 {
        self.size
    }

    fn check(&self, layer: &str) -> Result<()> {
        check_window(layer, "size", self.size)
    }
}

/// The harness cases, with a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Tensor;
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
