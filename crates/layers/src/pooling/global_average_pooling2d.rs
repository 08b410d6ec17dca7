//! `GlobalAveragePooling2D`: the mean of each channel over the whole image
//! (`keras/src/layers/pooling/global_average_pooling2d.py`), by `rkeras_ops::avg_pool2d` with one
//! window.

use serde::{Deserialize, Serialize};

use super::base_global_pooling::{GlobalPooling, GlobalPoolingLayer};
use super::pool_mode::PoolMode;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::reshaping::spatial::Spatial;
use crate::{Layer, Result};

/// `GlobalAveragePooling2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalAveragePooling2DConfig {
    /// Whether the output keeps the spatial axes as size 1 (default false).
    pub keepdims: bool,
}

/// Global average pooling: `GlobalAveragePooling2D::new()(x)`, `(None, h, w, c)` to `(None, c)`.
pub type GlobalAveragePooling2D = LayerBuilder<GlobalAveragePooling2DConfig>;

impl GlobalAveragePooling2D {
    /// Averaging each channel over the whole image, spatial axes dropped.
    pub fn new() -> Self {
        LayerBuilder::from_config(GlobalAveragePooling2DConfig::default())
    }
}

impl Default for GlobalAveragePooling2D {
    fn default() -> Self {
        GlobalAveragePooling2D::new()
    }
}

impl LayerConfig for GlobalAveragePooling2DConfig {
    const CLASS_NAME: &'static str = "GlobalAveragePooling2D";
    const NAME_PREFIX: &'static str = "global_average_pooling2d";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        GlobalPoolingLayer::made(self, name, trainable)
    }
}

impl GlobalPooling for GlobalAveragePooling2DConfig {
    const SPATIAL: Spatial = Spatial::Image;
    const MODE: PoolMode = PoolMode::Average;

    fn keepdims(&self) -> bool {
        self.keepdims
    }

    fn set_keepdims(&mut self, keepdims: bool) {
        self.keepdims = keepdims;
    }
}

/// The harness cases: with and without `keepdims`, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Tensor;
    let pool = |p: GlobalAveragePooling2D| p.layer().expect("pool");
    // Channels [1, 10], [2, 20], [3, 30], [4, 40] in a 2x2 image: means 2.5 and 25.
    let x = Tensor::new(
        &[1f32, 10., 2., 20., 3., 30., 4., 40.],
        &candle_core::Device::Cpu,
    )
    .and_then(|x| x.reshape((1, 2, 2, 2)))
    .expect("x");
    vec![
        LayerCase::new(pool(GlobalAveragePooling2D::new()), &[&[3, 4, 5]])
            .output_shapes(&["(None, 5)"]),
        LayerCase::new(
            pool(GlobalAveragePooling2D::new().keepdims(true)),
            &[&[3, 2, 2]],
        )
        .output_shapes(&["(None, 1, 1, 2)"]),
        LayerCase::new(pool(GlobalAveragePooling2D::new()), &[&[2, 2, 2]])
            .output_shapes(&["(None, 2)"])
            .forward(vec![x], vec![vec![2.5, 25.0]]),
    ]
}
