//! `SpatialDropout2D`: dropout of whole feature maps, one draw per sample and channel
//! (`keras/src/layers/regularization/spatial_dropout.py`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::noise::{dropout_noise, seed_option, unit_interval, Noise, NoiseLayer, NoiseOptions};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Error, Layer, Result, SymbolicShape};

/// Where the channels of an image are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// `(batch, height, width, channels)`: Keras's default and rkeras's layout.
    #[default]
    ChannelsLast,
    /// `(batch, channels, height, width)`.
    ChannelsFirst,
}

impl FromStr for DataFormat {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        match name {
            "channels_last" => Ok(DataFormat::ChannelsLast),
            "channels_first" => Ok(DataFormat::ChannelsFirst),
            _ => Err(format!(
                "unknown data_format '{name}' (known: channels_last, channels_first)"
            )),
        }
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataFormat::ChannelsLast => "channels_last",
            DataFormat::ChannelsFirst => "channels_first",
        })
    }
}

/// `SpatialDropout2D`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpatialDropout2DConfig {
    /// The fraction of feature maps dropped, in [0, 1].
    pub rate: f64,
    /// Keras's per-layer seed: kept in the config, but the draws come from the stream training
    /// gives each step, which `set_random_seed` fixes.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Where the channels are (default channels last).
    #[serde(default)]
    pub data_format: DataFormat,
}

/// Spatial dropout of 2-D feature maps: `SpatialDropout2D::new(0.2)(x)`.
pub type SpatialDropout2D = LayerBuilder<SpatialDropout2DConfig>;

/// The layer a [`SpatialDropout2D`] builder makes.
pub type SpatialDropout2DLayer = NoiseLayer<SpatialDropout2DConfig>;

impl SpatialDropout2D {
    /// Dropout of a fraction `rate` of the feature maps.
    pub fn new(rate: f64) -> Self {
        LayerBuilder::from_config(SpatialDropout2DConfig {
            rate,
            seed: None,
            data_format: DataFormat::ChannelsLast,
        })
    }

    /// `"channels_last"` or `"channels_first"`.
    pub fn data_format(self, data_format: &str) -> Self {
        let parsed = data_format.parse();
        self.with_checked(|c| {
            c.data_format = parsed?;
            Ok(())
        })
    }

    seed_option!();
}

impl LayerConfig for SpatialDropout2DConfig {
    const CLASS_NAME: &'static str = "SpatialDropout2D";
    const NAME_PREFIX: &'static str = "spatial_dropout2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        unit_interval(&name, "rate", self.rate, true)?;
        Ok(Arc::new(SpatialDropout2DLayer::new(
            name,
            trainable,
            self.clone(),
        )))
    }
}

impl NoiseOptions for SpatialDropout2DConfig {
    fn check_input(&self, layer: &str, shape: &SymbolicShape) -> Result<()> {
        if shape.rank() == 4 {
            return Ok(());
        }
        let expected = match self.data_format {
            DataFormat::ChannelsLast => "(None, height, width, channels)",
            DataFormat::ChannelsFirst => "(None, channels, height, width)",
        };
        Err(Error::shape(layer, expected, shape))
    }

    fn draw(&self, layer: &str, x: &Tensor) -> Result<Option<Noise>> {
        let &[n, a, _, c] = x.dims() else {
            return Err(Error::shape(
                layer,
                "(batch, height, width, channels)",
                format!("{:?}", x.dims()),
            ));
        };
        // One draw per sample and channel (Keras's `_get_noise_shape`).
        let shape = match self.data_format {
            DataFormat::ChannelsLast => [n, 1, 1, c],
            DataFormat::ChannelsFirst => [n, a, 1, 1],
        };
        dropout_noise(&shape, self.rate, x.device())
    }
}

/// The harness cases: both data formats, and the inference forward (the identity).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |dropout: SpatialDropout2D| dropout.layer().expect("spatial dropout");
    let x = Tensor::arange(0f32, 8.0, &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 2, 2)))
        .expect("x");
    vec![
        LayerCase::new(layer(SpatialDropout2D::new(0.5)), &[&[3, 4, 5]])
            .output_shapes(&["(None, 3, 4, 5)"])
            .forward(vec![x], vec![(0..8).map(f64::from).collect()]),
        LayerCase::new(
            layer(SpatialDropout2D::new(0.4).data_format("channels_first")),
            &[&[4, 3, 2]],
        )
        .output_shapes(&["(None, 4, 3, 2)"]),
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
        let x = Tensor::ones((8, 5, 6, 40), DType::F32, &Device::Cpu)?;
        let layer = SpatialDropout2D::new(0.5).layer()?;
        let mut ctx = CallContext::new(true);
        let y = flat(&with_stream(7, || layer.call(&[x], &mut ctx))?[0]);
        let mut kept = 0;
        for sample in y.chunks(5 * 6 * 40) {
            // Every pixel keeps or drops the same channels as the first.
            assert!(sample.chunks(40).all(|pixel| pixel == &sample[..40]));
            assert!(sample[..40].iter().all(|&v| v == 0.0 || v == 2.0));
            kept += sample[..40].iter().filter(|&&v| v == 2.0).count();
        }
        assert!((100..220).contains(&kept), "{kept} of 320 channels kept");
        Ok(())
    }

    #[test]
    fn needs_images_and_a_known_data_format() {
        let layer = SpatialDropout2D::new(0.5).name("s");
        let message = layer(crate::Input::new(&[4, 4]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'s'") && message.contains("channels"),
            "{message}"
        );
        let message = SpatialDropout2D::new(0.5)
            .data_format("channels_middle")
            .layer()
            .err()
            .expect("refused")
            .to_string();
        assert!(message.contains("channels_middle"), "{message}");
    }
}
