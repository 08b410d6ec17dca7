//! `GlobalAveragePooling1D`: the mean of each feature over all the steps of a sequence
//! (`keras/src/layers/pooling/global_average_pooling1d.py`; rkeras has no masks, so every step
//! counts), by `rkeras_ops::avg_pool2d` with one window (see [`GlobalPoolingConfig`]).

use super::base_global_pooling::{GlobalPoolingConfig, GlobalPoolingKind};
use super::pool_mode::PoolMode;
use crate::builder::LayerBuilder;
use crate::reshaping::spatial::Spatial;

/// What makes `GlobalAveragePooling1D` itself among the global poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalAveragePooling1DKind;

impl GlobalPoolingKind for GlobalAveragePooling1DKind {
    const CLASS_NAME: &'static str = "GlobalAveragePooling1D";
    const NAME_PREFIX: &'static str = "global_average_pooling1d";
    const SPATIAL: Spatial = Spatial::Steps;
    const MODE: PoolMode = PoolMode::Average;
}

/// `GlobalAveragePooling1D`'s options, with Keras's defaults (see [`GlobalPoolingConfig`]).
pub type GlobalAveragePooling1DConfig = GlobalPoolingConfig<GlobalAveragePooling1DKind>;

/// Global average pooling over steps: `GlobalAveragePooling1D::new()(x)`,
/// `(None, steps, features)` to `(None, features)`.
pub type GlobalAveragePooling1D = LayerBuilder<GlobalAveragePooling1DConfig>;

/// The harness cases: with and without `keepdims`, odd and unit lengths, and forwards
/// computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let pool = |p: GlobalAveragePooling1D| p.layer().expect("pool");
    let sequences = |values: &[f32], (batch, steps): (usize, usize)| {
        Tensor::new(values, &Device::Cpu)
            .and_then(|x| x.reshape((batch, steps, values.len() / (batch * steps))))
            .expect("x")
    };
    vec![
        LayerCase::new(pool(GlobalAveragePooling1D::new()), &[&[5, 3]])
            .output_shapes(&["(None, 3)"]),
        LayerCase::new(
            pool(GlobalAveragePooling1D::new().keepdims(true)),
            &[&[4, 2]],
        )
        .output_shapes(&["(None, 1, 2)"]),
        LayerCase::new(pool(GlobalAveragePooling1D::new()), &[&[1, 3]])
            .output_shapes(&["(None, 3)"]),
        // Steps [1, -4], [5, -1], [3, -3]: means 9/3 = 3 and -8/3.
        LayerCase::new(pool(GlobalAveragePooling1D::new()), &[&[3, 2]])
            .output_shapes(&["(None, 2)"])
            .forward(
                vec![sequences(&[1., -4., 5., -1., 3., -3.], (1, 3))],
                vec![vec![3., -8. / 3.]],
            ),
        // Two sequences, [2, 7, 1, 8, 3] and [6, 4, 9, 0, 5] (odd length): 21/5 and 24/5,
        // kept as (2, 1, 1).
        LayerCase::new(
            pool(GlobalAveragePooling1D::new().keepdims(true)),
            &[&[5, 1]],
        )
        .output_shapes(&["(None, 1, 1)"])
        .forward(
            vec![sequences(&[2., 7., 1., 8., 3., 6., 4., 9., 0., 5.], (2, 5))],
            vec![vec![4.2, 4.8]],
        ),
    ]
}
