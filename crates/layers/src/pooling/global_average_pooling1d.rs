//! `GlobalAveragePooling1D`: the mean of each feature over all the steps of a sequence
//! (`keras/src/layers/pooling/global_average_pooling1d.py`; rkeras has no masks, so every step
//! counts), by `rkeras_ops::avg_pool2d` with one window (see [`GlobalPoolingLayer`]).

use serde::{Deserialize, Serialize};

use super::base_global_pooling::{GlobalPooling, GlobalPoolingLayer};
use super::pool_mode::PoolMode;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::reshaping::spatial::Spatial;
use crate::{Layer, Result};

/// `GlobalAveragePooling1D`'s options, with Keras's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalAveragePooling1DConfig {
    /// Whether the output keeps the steps axis as size 1 (default false).
    pub keepdims: bool,
}

/// Global average pooling over steps: `GlobalAveragePooling1D::new()(x)`,
/// `(None, steps, features)` to `(None, features)`.
pub type GlobalAveragePooling1D = LayerBuilder<GlobalAveragePooling1DConfig>;

impl GlobalAveragePooling1D {
    /// The mean of each feature over all the steps, steps axis dropped.
    pub fn new() -> Self {
        LayerBuilder::from_config(GlobalAveragePooling1DConfig::default())
    }
}

impl Default for GlobalAveragePooling1D {
    fn default() -> Self {
        GlobalAveragePooling1D::new()
    }
}

impl LayerConfig for GlobalAveragePooling1DConfig {
    const CLASS_NAME: &'static str = "GlobalAveragePooling1D";
    const NAME_PREFIX: &'static str = "global_average_pooling1d";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        GlobalPoolingLayer::made(self, name, trainable)
    }
}

impl GlobalPooling for GlobalAveragePooling1DConfig {
    const SPATIAL: Spatial = Spatial::Steps;
    const MODE: PoolMode = PoolMode::Average;

    fn keepdims(&self) -> bool {
        self.keepdims
    }

    fn set_keepdims(&mut self, keepdims: bool) {
        self.keepdims = keepdims;
    }
}

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
