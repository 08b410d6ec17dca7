//! `GlobalMaxPooling2D`: the maximum of each channel over the whole image
//! (`keras/src/layers/pooling/global_max_pooling2d.py`), by `rkeras_ops::max_pool2d` with one
//! window, whose gradient goes whole to the first maximum.

use serde::{Deserialize, Serialize};

use super::base_global_pooling::{GlobalPooling, GlobalPoolingLayer};
use super::pool_mode::PoolMode;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::reshaping::spatial::Spatial;
use crate::{Layer, Result};

/// `GlobalMaxPooling2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalMaxPooling2DConfig {
    /// Whether the output keeps the spatial axes as size 1 (default false).
    pub keepdims: bool,
}

/// Global max pooling: `GlobalMaxPooling2D::new()(x)`, `(None, h, w, c)` to `(None, c)`.
pub type GlobalMaxPooling2D = LayerBuilder<GlobalMaxPooling2DConfig>;

impl GlobalMaxPooling2D {
    /// The maximum of each channel over the whole image, spatial axes dropped.
    pub fn new() -> Self {
        LayerBuilder::from_config(GlobalMaxPooling2DConfig::default())
    }
}

impl Default for GlobalMaxPooling2D {
    fn default() -> Self {
        GlobalMaxPooling2D::new()
    }
}

impl LayerConfig for GlobalMaxPooling2DConfig {
    const CLASS_NAME: &'static str = "GlobalMaxPooling2D";
    const NAME_PREFIX: &'static str = "global_max_pooling2d";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        GlobalPoolingLayer::made(self, name, trainable)
    }
}

impl GlobalPooling for GlobalMaxPooling2DConfig {
    const SPATIAL: Spatial = Spatial::Image;
    const MODE: PoolMode = PoolMode::Max;

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
    let pool = |p: GlobalMaxPooling2D| p.layer().expect("pool");
    // Channels [1, 40], [5, 20], [3, 30], [4, 10] in a 2x2 image: maxima 5 and 40.
    let x = Tensor::new(
        &[1f32, 40., 5., 20., 3., 30., 4., 10.],
        &candle_core::Device::Cpu,
    )
    .and_then(|x| x.reshape((1, 2, 2, 2)))
    .expect("x");
    vec![
        LayerCase::new(pool(GlobalMaxPooling2D::new()), &[&[3, 4, 5]])
            .output_shapes(&["(None, 5)"]),
        LayerCase::new(
            pool(GlobalMaxPooling2D::new().keepdims(true)),
            &[&[3, 2, 2]],
        )
        .output_shapes(&["(None, 1, 1, 2)"]),
        LayerCase::new(pool(GlobalMaxPooling2D::new()), &[&[2, 2, 2]])
            .output_shapes(&["(None, 2)"])
            .forward(vec![x], vec![vec![5.0, 40.0]]),
    ]
}
