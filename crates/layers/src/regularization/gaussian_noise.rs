//! `GaussianNoise`: in training, zero-centred normal noise added to the input; the identity in
//! inference (`keras/src/layers/regularization/gaussian_noise.py`).

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::noise::{seed_option, unit_interval, Noise, NoiseLayer, NoiseOptions};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `GaussianNoise`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaussianNoiseConfig {
    /// The noise's standard deviation, in [0, 1] (as Keras requires).
    pub stddev: f64,
    /// Keras's per-layer seed: kept in the config, but the draws come from the stream training
    /// gives each step, which `set_random_seed` fixes.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Additive Gaussian noise: `GaussianNoise::new(0.1)(x)`.
pub type GaussianNoise = LayerBuilder<GaussianNoiseConfig>;

/// The layer a [`GaussianNoise`] builder makes.
pub type GaussianNoiseLayer = NoiseLayer<GaussianNoiseConfig>;

impl GaussianNoise {
    /// Noise of standard deviation `stddev`.
    pub fn new(stddev: f64) -> Self {
        LayerBuilder::from_config(GaussianNoiseConfig { stddev, seed: None })
    }

    seed_option!();
}

impl LayerConfig for GaussianNoiseConfig {
    const CLASS_NAME: &'static str = "GaussianNoise";
    const NAME_PREFIX: &'static str = "gaussian_noise";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        unit_interval(&name, "stddev", self.stddev, true)?;
        Ok(Arc::new(GaussianNoiseLayer::new(
            name,
            trainable,
            self.clone(),
        )))
    }
}

impl NoiseOptions for GaussianNoiseConfig {
    fn draw(&self, _layer: &str, x: &Tensor) -> Result<Option<Noise>> {
        if self.stddev == 0.0 {
            return Ok(None);
        }
        let noise = crate::random::normal(x.dims(), 0.0, self.stddev, x.device())?;
        Ok(Some(Noise::Add(noise)))
    }
}

/// The harness cases, and the inference forward (the identity).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |noise: GaussianNoise| noise.layer().expect("gaussian noise");
    let x = Tensor::new(&[[-1f32, 0.5, 2.0]], &candle_core::Device::Cpu).expect("x");
    vec![
        LayerCase::new(layer(GaussianNoise::new(0.5)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x], vec![vec![-1.0, 0.5, 2.0]]),
        LayerCase::new(layer(GaussianNoise::new(1.0)), &[&[2, 3, 4]])
            .output_shapes(&["(None, 2, 3, 4)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::with_stream;
    use crate::testing::flat;
    use crate::CallContext;
    use candle_core::{DType, Device};

    #[test]
    fn adds_noise_of_the_standard_deviation_in_training_only() -> Result<()> {
        let x = Tensor::full(3f32, (200, 500), &Device::Cpu)?;
        let layer = GaussianNoise::new(0.5).layer()?;
        let mut ctx = CallContext::new(true);
        let y = flat(&with_stream(5, || layer.call(std::slice::from_ref(&x), &mut ctx))?[0]);
        let n = y.len() as f64;
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 3.0).abs() < 0.01 && (var.sqrt() - 0.5).abs() < 0.01);
        let same = layer.call(std::slice::from_ref(&x), &mut CallContext::new(false))?;
        assert_eq!(flat(&same[0]), flat(&x));
        assert!(GaussianNoise::new(1.5).layer().is_err());
        let x64 = x.to_dtype(DType::F64)?;
        let y64 = with_stream(5, || layer.call(&[x64], &mut CallContext::new(true)))?;
        assert_eq!(y64[0].dtype(), DType::F64);
        Ok(())
    }
}
