//! `MaxPooling2D`: the maximum over each window of a channels-last image
//! (`keras/src/layers/pooling/max_pooling2d.py`); padded cells never win. The work is done by
//! `rkeras_ops::max_pool2d` (see [`PoolingConfig`]), whose gradient routes to the maximum in full.

use super::base_pooling::{PoolingConfig, PoolingKind};
use super::pool_mode::PoolMode;
use crate::builder::LayerBuilder;
use crate::convolutional::options::Size2;

/// What makes `MaxPooling2D` itself among the windowed poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPooling2DKind;

impl PoolingKind for MaxPooling2DKind {
    const CLASS_NAME: &'static str = "MaxPooling2D";
    const NAME_PREFIX: &'static str = "max_pooling2d";
    type Size = Size2;
    const MODE: PoolMode = PoolMode::Max;
}

/// `MaxPooling2D`'s options, with Keras's defaults (see [`PoolingConfig`]).
pub type MaxPooling2DConfig = PoolingConfig<MaxPooling2DKind>;

/// Max pooling: `MaxPooling2D::new((2, 2)).padding("same")(x)`.
pub type MaxPooling2D = LayerBuilder<MaxPooling2DConfig>;

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
