//! `LeakyReLU`: `x` where `x >= 0`, else `negative_slope · x`
//! (`keras/src/layers/activations/leaky_relu.py`).

use std::sync::Arc;

use rkeras_ops::InputActivation;
use serde::{Deserialize, Serialize};

use super::elementwise::{non_negative, ElementwiseLayer, ElementwiseOptions};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `LeakyReLU`'s options, with Keras 3's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakyReLUConfig {
    /// The slope below 0, at least 0 (default 0.3; Keras 2's name `alpha` is read too).
    #[serde(alias = "alpha")]
    pub negative_slope: f64,
}

/// The leaky ReLU: `LeakyReLU::new().negative_slope(0.1)(x)`.
pub type LeakyReLU = LayerBuilder<LeakyReLUConfig>;

/// The layer a [`LeakyReLU`] builder makes.
pub type LeakyReLULayer = ElementwiseLayer<LeakyReLUConfig>;

impl LeakyReLU {
    /// A leaky ReLU with Keras's slope, 0.3.
    pub fn new() -> Self {
        LayerBuilder::from_config(LeakyReLUConfig {
            negative_slope: 0.3,
        })
    }

    /// The slope below 0.
    pub fn negative_slope(self, negative_slope: f64) -> Self {
        self.with(|c| c.negative_slope = negative_slope)
    }
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU::new()
    }
}

impl LayerConfig for LeakyReLUConfig {
    const CLASS_NAME: &'static str = "LeakyReLU";
    const NAME_PREFIX: &'static str = "leaky_re_lu";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        non_negative(&name, "negative_slope", self.negative_slope)?;
        Ok(Arc::new(LeakyReLULayer::new(name, trainable, self.clone())))
    }
}

impl ElementwiseOptions for LeakyReLUConfig {
    fn activation(&self) -> InputActivation {
        // Keras's `where(x >= 0, x, slope · x)` is a ReLU with this slope below threshold 0.
        InputActivation::Relu {
            negative_slope: self.negative_slope as f32,
            max_value: f32::INFINITY,
            threshold: 0.0,
        }
    }
}

/// The harness cases: the default slope, another, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let x = || {
        candle_core::Tensor::new(&[[-10f32, -5.0, 0.0, 5.0, 10.0]], &candle_core::Device::Cpu)
            .expect("x")
    };
    vec![
        LayerCase::new(LeakyReLU::new().layer().expect("leaky"), &[&[5]])
            .output_shapes(&["(None, 5)"])
            .forward(vec![x()], vec![vec![-3.0, -1.5, 0.0, 5.0, 10.0]]),
        // Keras's docstring example, slope 0.5.
        LayerCase::new(
            LeakyReLU::new().negative_slope(0.5).layer().expect("leaky"),
            &[&[5]],
        )
        .output_shapes(&["(None, 5)"])
        .forward(vec![x()], vec![vec![-5.0, -2.5, 0.0, 5.0, 10.0]]),
        LayerCase::new(LeakyReLU::new().layer().expect("leaky"), &[&[2, 2, 3]])
            .output_shapes(&["(None, 2, 2, 3)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keras_2_configs_and_refuses_negative_slopes() {
        let config: LeakyReLUConfig =
            serde_json::from_value(serde_json::json!({"alpha": 0.1})).expect("config");
        assert_eq!(config.negative_slope, 0.1);
        let message = LeakyReLU::new()
            .negative_slope(-1.0)
            .name("l")
            .layer()
            .err()
            .expect("refused")
            .to_string();
        assert!(
            message.contains("'l'") && message.contains("negative_slope"),
            "{message}"
        );
    }
}
