//! `GlobalAveragePooling2D`: the mean of each channel over the whole image
//! (`keras/src/layers/pooling/global_average_pooling2d.py`), by `rkeras_ops::avg_pool2d` with one
//! window.

use super::base_global_pooling::{GlobalPoolingConfig, GlobalPoolingKind};
use super::pool_mode::PoolMode;
use crate::builder::LayerBuilder;
use crate::reshaping::spatial::Spatial;

/// What makes `GlobalAveragePooling2D` itself among the global poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalAveragePooling2DKind;

impl GlobalPoolingKind for GlobalAveragePooling2DKind {
    const CLASS_NAME: &'static str = "GlobalAveragePooling2D";
    const NAME_PREFIX: &'static str = "global_average_pooling2d";
    const SPATIAL: Spatial = Spatial::Image;
    const MODE: PoolMode = PoolMode::Average;
}

/// `GlobalAveragePooling2D`'s options, with Keras's defaults (see [`GlobalPoolingConfig`]).
pub type GlobalAveragePooling2DConfig = GlobalPoolingConfig<GlobalAveragePooling2DKind>;

/// Global average pooling: `GlobalAveragePooling2D::new()(x)`, `(None, h, w, c)` to `(None, c)`.
pub type GlobalAveragePooling2D = LayerBuilder<GlobalAveragePooling2DConfig>;

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
