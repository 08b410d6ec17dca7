//! `ReLU`: the rectified linear unit with an optional ceiling, a slope below a threshold, and a
//! threshold (`keras/src/layers/activations/relu.py`, computed as `keras.activations.relu`).

use std::sync::Arc;

use rkeras_ops::InputActivation;
use serde::{Deserialize, Serialize};

use super::elementwise::{non_negative, ElementwiseLayer, ElementwiseOptions};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `ReLU`'s options, with Keras's defaults (a plain `max(x, 0)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReLUConfig {
    /// The largest output, at least 0 (default none).
    pub max_value: Option<f64>,
    /// The slope below the threshold, at least 0 (default 0).
    pub negative_slope: f64,
    /// Where the identity starts, at least 0 (default 0).
    pub threshold: f64,
}

/// `min(x, max_value)` where `x > threshold`, else `negative_slope · (x - threshold)`:
/// `ReLU::new().max_value(6.0)(x)`.
pub type ReLU = LayerBuilder<ReLUConfig>;

/// The layer a [`ReLU`] builder makes.
pub type ReLULayer = ElementwiseLayer<ReLUConfig>;

impl ReLU {
    /// A plain ReLU, `max(x, 0)`.
    pub fn new() -> Self {
        LayerBuilder::from_config(ReLUConfig {
            max_value: None,
            negative_slope: 0.0,
            threshold: 0.0,
        })
    }

    /// The largest output.
    pub fn max_value(self, max_value: f64) -> Self {
        self.with(|c| c.max_value = Some(max_value))
    }

    /// The slope below the threshold.
    pub fn negative_slope(self, negative_slope: f64) -> Self {
        self.with(|c| c.negative_slope = negative_slope)
    }

    /// Where the identity starts.
    pub fn threshold(self, threshold: f64) -> Self {
        self.with(|c| c.threshold = threshold)
    }
}

impl Default for ReLU {
    fn default() -> Self {
        ReLU::new()
    }
}

impl LayerConfig for ReLUConfig {
    const CLASS_NAME: &'static str = "ReLU";
    const NAME_PREFIX: &'static str = "re_lu";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if let Some(max_value) = self.max_value {
            non_negative(&name, "max_value", max_value)?;
        }
        non_negative(&name, "negative_slope", self.negative_slope)?;
        non_negative(&name, "threshold", self.threshold)?;
        Ok(Arc::new(ReLULayer::new(name, trainable, self.clone())))
    }
}

impl ElementwiseOptions for ReLUConfig {
    fn activation(&self) -> InputActivation {
        InputActivation::Relu {
            negative_slope: self.negative_slope as f32,
            max_value: self.max_value.map_or(f32::INFINITY, |m| m as f32),
            threshold: self.threshold as f32,
        }
    }
}

/// The harness cases: each option, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |relu: ReLU| relu.layer().expect("relu");
    let x = || {
        candle_core::Tensor::new(
            &[[-10f32, -5.0, 0.0, 0.4, 5.0, 10.0]],
            &candle_core::Device::Cpu,
        )
        .expect("x")
    };
    vec![
        LayerCase::new(layer(ReLU::new()), &[&[3, 4]])
            .output_shapes(&["(None, 3, 4)"])
            .forward(vec![x()], vec![vec![0.0, 0.0, 0.0, 0.4, 5.0, 10.0]]),
        // Keras's docstring example: max 10, slope 0.5: [-5, -2.5, 0, 0.4, 5, 10].
        LayerCase::new(
            layer(ReLU::new().max_value(10.0).negative_slope(0.5)),
            &[&[6]],
        )
        .output_shapes(&["(None, 6)"])
        .forward(vec![x()], vec![vec![-5.0, -2.5, 0.0, 0.4, 5.0, 10.0]]),
        // Threshold 0.5 and slope 0.1: 0.1 (x - 0.5) at or below it, x above (ceiling 4.5).
        LayerCase::new(
            layer(
                ReLU::new()
                    .threshold(0.5)
                    .negative_slope(0.1)
                    .max_value(4.5),
            ),
            &[&[6]],
        )
        .output_shapes(&["(None, 6)"])
        .forward(vec![x()], vec![vec![-1.05, -0.55, -0.05, -0.01, 4.5, 4.5]]),
        // A ceiling inside the inputs' range [-1, 1], away from their grid.
        LayerCase::new(layer(ReLU::new().max_value(0.4567)), &[&[2, 3, 2]])
            .output_shapes(&["(None, 2, 3, 2)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_as_keras_does() {
        for (relu, option) in [
            (ReLU::new().max_value(-1.0), "max_value"),
            (ReLU::new().negative_slope(-0.1), "negative_slope"),
            (ReLU::new().threshold(f64::NAN), "threshold"),
        ] {
            let message = relu.name("r").layer().err().expect("refused").to_string();
            assert!(
                message.contains("'r'") && message.contains(option),
                "{message}"
            );
        }
    }
}
