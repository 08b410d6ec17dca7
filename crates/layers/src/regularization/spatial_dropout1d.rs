//! `SpatialDropout1D`: dropout of whole 1-D feature maps, one draw per sample and channel of a
//! `(batch, steps, channels)` input (`keras/src/layers/regularization/spatial_dropout.py`).

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::noise::{dropout_noise, seed_option, unit_interval, Noise, NoiseLayer, NoiseOptions};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Error, Layer, Result, SymbolicShape};

/// `SpatialDropout1D`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpatialDropout1DConfig {
    /// The fraction of feature maps dropped, in [0, 1].
    pub rate: f64,
    /// Keras's per-layer seed: kept in the config, but the draws come from the stream training
    /// gives each step, which `set_random_seed` fixes.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Spatial dropout of sequences' channels: `SpatialDropout1D::new(0.2)(x)`.
pub type SpatialDropout1D = LayerBuilder<SpatialDropout1DConfig>;

/// The layer a [`SpatialDropout1D`] builder makes.
pub type SpatialDropout1DLayer = NoiseLayer<SpatialDropout1DConfig>;

impl SpatialDropout1D {
    /// Dropout of a fraction `rate` of the feature maps.
    pub fn new(rate: f64) -> Self {
        LayerBuilder::from_config(SpatialDropout1DConfig { rate, seed: None })
    }

    seed_option!();
}

impl LayerConfig for SpatialDropout1DConfig {
    const CLASS_NAME: &'static str = "SpatialDropout1D";
    const NAME_PREFIX: &'static str = "spatial_dropout1d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        unit_interval(&name, "rate", self.rate, true)?;
        Ok(Arc::new(SpatialDropout1DLayer::new(
            name,
            trainable,
            self.clone(),
        )))
    }
}

/// The input shape the layer takes, for messages.
const EXPECTED: &str = "(None, steps, channels)";

impl NoiseOptions for SpatialDropout1DConfig {
    fn check_input(&self, layer: &str, shape: &SymbolicShape) -> Result<()> {
        if shape.rank() == 3 {
            return Ok(());
        }
        Err(Error::shape(layer, EXPECTED, shape))
    }

    fn draw(&self, layer: &str, x: &Tensor) -> Result<Option<Noise>> {
        let &[n, _, c] = x.dims() else {
            return Err(Error::shape(layer, EXPECTED, format!("{:?}", x.dims())));
        };
        // One draw per sample and channel (Keras's `_get_noise_shape`: `(batch, 1, channels)`).
        dropout_noise(&[n, 1, c], self.rate, x.device())
    }
}

/// The harness cases: a rate, a rate of 1, and the inference forward (the identity).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |dropout: SpatialDropout1D| dropout.layer().expect("spatial dropout");
    let x = Tensor::arange(0f32, 6.0, &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 2)))
        .expect("x");
    vec![
        LayerCase::new(layer(SpatialDropout1D::new(0.5)), &[&[4, 5]])
            .output_shapes(&["(None, 4, 5)"])
            .forward(vec![x], vec![(0..6).map(f64::from).collect()]),
        LayerCase::new(layer(SpatialDropout1D::new(0.3).seed(3)), &[&[3, 8]])
            .output_shapes(&["(None, 3, 8)"]),
        LayerCase::new(layer(SpatialDropout1D::new(1.0)), &[&[2, 3]])
            .output_shapes(&["(None, 2, 3)"]),
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
    fn drops_whole_channels_of_each_sample() -> Result<()> {
        let x = Tensor::ones((8, 7, 40), DType::F32, &Device::Cpu)?;
        let layer = SpatialDropout1D::new(0.5).layer()?;
        let mut ctx = CallContext::new(true);
        let y = flat(&with_stream(7, || layer.call(&[x], &mut ctx))?[0]);
        let mut kept = 0;
        for sample in y.chunks(7 * 40) {
            // Every step keeps or drops the same channels as the first, scaled by 1 / 0.5.
            assert!(sample.chunks(40).all(|step| step == &sample[..40]));
            assert!(sample[..40].iter().all(|&v| v == 0.0 || v == 2.0));
            kept += sample[..40].iter().filter(|&&v| v == 2.0).count();
        }
        assert!((100..220).contains(&kept), "{kept} of 320 channels kept");
        Ok(())
    }

    #[test]
    fn needs_sequences_and_a_rate_in_the_unit_interval() {
        let layer = SpatialDropout1D::new(0.5).name("s1");
        let message = layer(crate::Input::new(&[4, 4, 2]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'s1'") && message.contains("steps"),
            "{message}"
        );
        let message = SpatialDropout1D::new(1.5)
            .name("s2")
            .layer()
            .err()
            .expect("refused")
            .to_string();
        assert!(
            message.contains("'s2'") && message.contains("rate"),
            "{message}"
        );
    }
}
