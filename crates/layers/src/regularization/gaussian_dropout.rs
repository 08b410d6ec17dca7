//! `GaussianDropout`: in training, the input times normal noise of mean 1 and standard
//! deviation `sqrt(rate / (1 - rate))`; the identity in inference
//! (`keras/src/layers/regularization/gaussian_dropout.py`).

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::noise::{seed_option, unit_interval, Noise, NoiseLayer, NoiseOptions};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `GaussianDropout`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaussianDropoutConfig {
    /// The drop probability the noise stands for, in [0, 1) (Keras accepts 1, then fails to
    /// train by a division by zero).
    pub rate: f64,
    /// Keras's per-layer seed: kept in the config, but the draws come from the stream training
    /// gives each step, which `set_random_seed` fixes.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Multiplicative Gaussian noise: `GaussianDropout::new(0.2)(x)`.
pub type GaussianDropout = LayerBuilder<GaussianDropoutConfig>;

/// The layer a [`GaussianDropout`] builder makes.
pub type GaussianDropoutLayer = NoiseLayer<GaussianDropoutConfig>;

impl GaussianDropout {
    /// Noise standing for a drop probability `rate`.
    pub fn new(rate: f64) -> Self {
        LayerBuilder::from_config(GaussianDropoutConfig { rate, seed: None })
    }

    seed_option!();
}

impl LayerConfig for GaussianDropoutConfig {
    const CLASS_NAME: &'static str = "GaussianDropout";
    const NAME_PREFIX: &'static str = "gaussian_dropout";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        unit_interval(&name, "rate", self.rate, false)?;
        Ok(Arc::new(GaussianDropoutLayer::new(
            name,
            trainable,
            self.clone(),
        )))
    }
}

impl NoiseOptions for GaussianDropoutConfig {
    fn draw(&self, _layer: &str, x: &Tensor) -> Result<Option<Noise>> {
        if self.rate == 0.0 {
            return Ok(None);
        }
        let stddev = (self.rate / (1.0 - self.rate)).sqrt();
        let noise = crate::random::normal(x.dims(), 1.0, stddev, x.device())?;
        Ok(Some(Noise::Multiply(noise)))
    }
}

/// The harness cases, and the inference forward (the identity).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |dropout: GaussianDropout| dropout.layer().expect("gaussian dropout");
    let x = Tensor::new(&[[-1f32, 0.5, 2.0]], &candle_core::Device::Cpu).expect("x");
    vec![
        LayerCase::new(layer(GaussianDropout::new(0.5)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x], vec![vec![-1.0, 0.5, 2.0]]),
        LayerCase::new(layer(GaussianDropout::new(0.2)), &[&[3, 2, 2]])
            .output_shapes(&["(None, 3, 2, 2)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::with_stream;
    use crate::testing::flat;
    use crate::CallContext;
    use candle_core::Device;

    #[test]
    fn multiplies_by_noise_of_mean_one_in_training_only() -> Result<()> {
        let x = Tensor::full(2f32, (200, 500), &Device::Cpu)?;
        // rate 0.2: standard deviation sqrt(0.2 / 0.8) = 0.5, so y ~ N(2, 1).
        let layer = GaussianDropout::new(0.2).layer()?;
        let mut ctx = CallContext::new(true);
        let y = flat(&with_stream(9, || layer.call(std::slice::from_ref(&x), &mut ctx))?[0]);
        let n = y.len() as f64;
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            (mean - 2.0).abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        let same = layer.call(std::slice::from_ref(&x), &mut CallContext::new(false))?;
        assert_eq!(flat(&same[0]), flat(&x));
        let message = GaussianDropout::new(1.0)
            .name("g")
            .layer()
            .err()
            .expect("refused");
        assert!(message.to_string().contains("[0, 1)"), "{message}");
        Ok(())
    }
}
