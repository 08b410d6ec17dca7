//! `GlobalMaxPooling2D`: the maximum of each channel over the whole image
//! (`keras/src/layers/pooling/global_max_pooling2d.py`), by `rkeras_ops::max_pool2d` with one
//! window, whose gradient goes whole to the first maximum.

use super::base_global_pooling::{GlobalPoolingConfig, GlobalPoolingKind};
use super::pool_mode::PoolMode;
use crate::builder::LayerBuilder;
use crate::reshaping::spatial::Spatial;

/// What makes `GlobalMaxPooling2D` itself among the global poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalMaxPooling2DKind;

impl GlobalPoolingKind for GlobalMaxPooling2DKind {
    const CLASS_NAME: &'static str = "GlobalMaxPooling2D";
    const NAME_PREFIX: &'static str = "global_max_pooling2d";
    const SPATIAL: Spatial = Spatial::Image;
    const MODE: PoolMode = PoolMode::Max;
}

/// `GlobalMaxPooling2D`'s options, with Keras's defaults (see [`GlobalPoolingConfig`]).
pub type GlobalMaxPooling2DConfig = GlobalPoolingConfig<GlobalMaxPooling2DKind>;

/// Global max pooling: `GlobalMaxPooling2D::new()(x)`, `(None, h, w, c)` to `(None, c)`.
pub type GlobalMaxPooling2D = LayerBuilder<GlobalMaxPooling2DConfig>;

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
