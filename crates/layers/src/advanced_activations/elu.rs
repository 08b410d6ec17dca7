//! `ELU`: `x` where `x > 0`, else `alpha · (exp(x) - 1)` (`keras/src/layers/activations/elu.py`).

use std::sync::Arc;

use rkeras_ops::InputActivation;
use serde::{Deserialize, Serialize};

use super::elementwise::{ElementwiseLayer, ElementwiseOptions};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Error, Layer, Result};

/// `ELU`'s options, with Keras's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ELUConfig {
    /// The scale of the negative part (default 1; read as 1 when missing, since Keras's
    /// `ELU.get_config` leaves it out).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

fn default_alpha() -> f64 {
    1.0
}

/// The exponential linear unit: `ELU::new().alpha(0.5)(x)`.
pub type ELU = LayerBuilder<ELUConfig>;

/// The layer an [`ELU`] builder makes.
pub type ELULayer = ElementwiseLayer<ELUConfig>;

impl ELU {
    /// An ELU with alpha 1.
    pub fn new() -> Self {
        LayerBuilder::from_config(ELUConfig {
            alpha: default_alpha(),
        })
    }

    /// The scale of the negative part.
    pub fn alpha(self, alpha: f64) -> Self {
        self.with(|c| c.alpha = alpha)
    }
}

impl Default for ELU {
    fn default() -> Self {
        ELU::new()
    }
}

impl LayerConfig for ELUConfig {
    const CLASS_NAME: &'static str = "ELU";
    const NAME_PREFIX: &'static str = "elu";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if !self.alpha.is_finite() {
            return Err(Error::config(
                name,
                format!("alpha must be a finite number, got {}", self.alpha),
            ));
        }
        Ok(Arc::new(ELULayer::new(name, trainable, self.clone())))
    }
}

impl ElementwiseOptions for ELUConfig {
    fn activation(&self) -> InputActivation {
        InputActivation::Elu {
            alpha: self.alpha as f32,
        }
    }
}

/// The harness cases: alpha 1 and another, with forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let x =
        || candle_core::Tensor::new(&[[-1f32, 0.0, 2.0]], &candle_core::Device::Cpu).expect("x");
    // e^-1 - 1 = -0.6321205588.
    let negative = (-1f64).exp_m1();
    vec![
        LayerCase::new(ELU::new().layer().expect("elu"), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x()], vec![vec![negative, 0.0, 2.0]]),
        LayerCase::new(ELU::new().alpha(0.5).layer().expect("elu"), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x()], vec![vec![0.5 * negative, 0.0, 2.0]]),
        LayerCase::new(ELU::new().alpha(2.0).layer().expect("elu"), &[&[4, 2]])
            .output_shapes(&["(None, 4, 2)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keras_config_without_alpha_reads_as_alpha_one() {
        let config: ELUConfig = serde_json::from_value(serde_json::json!({})).expect("config");
        assert_eq!(config.alpha, 1.0);
        assert!(ELU::new().alpha(f64::INFINITY).layer().is_err());
    }
}
