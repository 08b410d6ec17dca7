//! `UpSampling1D`: repeats each step of a channels-last sequence `size` times
//! (`keras/src/layers/reshaping/up_sampling1d.py`), by [`UpSamplingLayer`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::base_up_sampling::{UpSampling, UpSamplingLayer};
use super::spatial::Spatial;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::Size2;
use crate::pooling::window_size::check_length;
use crate::{Layer, Result};

/// `UpSampling1D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpSampling1DConfig {
    /// How many times each step is repeated (default 2).
    pub size: usize,
}

/// Upsampling of a sequence: `UpSampling1D::new(2)(x)`, `(None, steps, features)` to
/// `(None, 2 * steps, features)`.
pub type UpSampling1D = LayerBuilder<UpSampling1DConfig>;

impl UpSampling1D {
    /// Each step repeated `size` times.
    pub fn new(size: usize) -> Self {
        LayerBuilder::from_config(UpSampling1DConfig { size })
    }
}

impl Default for UpSampling1D {
    fn default() -> Self {
        UpSampling1D::new(2)
    }
}

impl LayerConfig for UpSampling1DConfig {
    const CLASS_NAME: &'static str = "UpSampling1D";
    const NAME_PREFIX: &'static str = "up_sampling1d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        UpSamplingLayer::made(self, name, trainable)
    }
}

impl UpSampling for UpSampling1DConfig {
    const SPATIAL: Spatial = Spatial::Steps;

    /// Down the image one column wide the sequence is seen as.
    fn factors(&self) -> Size2 {
        Size2(self.size, 1)
    }

    fn check(&self, layer: &str) -> Result<()> {
        check_length(layer, "size", self.size)
    }
}

/// The harness cases, with forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let up = |u: UpSampling1D| u.layer().expect("up");
    // Keras's example: [[0, 1, 2], [3, 4, 5]], each step twice.
    let x = Tensor::arange(0f32, 6.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 3)))
        .expect("x");
    // 1, 2, 3 (an odd length), each three times.
    let odd = Tensor::arange(1f32, 4.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 1)))
        .expect("odd");
    vec![
        LayerCase::new(up(UpSampling1D::default()), &[&[3, 2]]).output_shapes(&["(None, 6, 2)"]),
        LayerCase::new(up(UpSampling1D::new(1)), &[&[3, 2]]).output_shapes(&["(None, 3, 2)"]),
        LayerCase::new(up(UpSampling1D::new(2)), &[&[2, 3]])
            .output_shapes(&["(None, 4, 3)"])
            .forward(
                vec![x],
                vec![vec![0., 1., 2., 0., 1., 2., 3., 4., 5., 3., 4., 5.]],
            ),
        LayerCase::new(up(UpSampling1D::new(3)), &[&[3, 1]])
            .output_shapes(&["(None, 9, 1)"])
            .forward(vec![odd], vec![vec![1., 1., 1., 2., 2., 2., 3., 3., 3.]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn saves_its_size_as_keras_does_and_refuses_bad_options_and_inputs() {
        let layer = UpSampling1D::new(3).layer().unwrap();
        assert_eq!(layer.config()["size"], 3);
        let err = UpSampling1D::new(0)
            .name("up")
            .layer()
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("'up'") && err.contains("size 0 must be positive"),
            "{err}"
        );
        let err = UpSampling1D::new(2).name("up2")(Input::new(&[4, 4, 1]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'up2'") && err.contains("(None, steps, features)"),
            "{err}"
        );
    }
}
