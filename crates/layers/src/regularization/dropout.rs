//! `Dropout`: in training, each input unit set to 0 with probability `rate` and the others
//! scaled by `1 / (1 - rate)`; the identity in inference (`keras/src/layers/regularization/
//! dropout.py`).

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::noise::{
    check_noise_shape, concrete_noise_shape, dropout_noise, positive_noise_shape, seed_option,
    unit_interval, Noise, NoiseLayer, NoiseOptions,
};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result, SymbolicShape};

/// `Dropout`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropoutConfig {
    /// The fraction of units dropped, in [0, 1].
    pub rate: f64,
    /// Keras's per-layer seed: kept in the config, but the draws come from the stream training
    /// gives each step, which `set_random_seed` fixes.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The shape of the mask, broadcast over the input (each dimension the input's or 1;
    /// `None` for the input's, as the batch usually is); default the input's shape.
    #[serde(default)]
    pub noise_shape: Option<Vec<Option<usize>>>,
}

/// Dropout: `Dropout::new(0.5)(x)`.
pub type Dropout = LayerBuilder<DropoutConfig>;

/// The layer a [`Dropout`] builder makes.
pub type DropoutLayer = NoiseLayer<DropoutConfig>;

impl Dropout {
    /// Dropout of a fraction `rate` of the units.
    pub fn new(rate: f64) -> Self {
        LayerBuilder::from_config(DropoutConfig {
            rate,
            seed: None,
            noise_shape: None,
        })
    }

    /// The shape of the mask (`None` for the input's dimension): `&[None, Some(1), None]` drops
    /// the same features at every step of a sequence.
    pub fn noise_shape(self, noise_shape: &[Option<usize>]) -> Self {
        let noise_shape = noise_shape.to_vec();
        self.with(|c| c.noise_shape = Some(noise_shape))
    }

    seed_option!();
}

impl LayerConfig for DropoutConfig {
    const CLASS_NAME: &'static str = "Dropout";
    const NAME_PREFIX: &'static str = "dropout";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        unit_interval(&name, "rate", self.rate, true)?;
        positive_noise_shape(&name, self.noise_shape.as_deref())?;
        Ok(Arc::new(DropoutLayer::new(name, trainable, self.clone())))
    }
}

impl NoiseOptions for DropoutConfig {
    fn check_input(&self, layer: &str, shape: &SymbolicShape) -> Result<()> {
        check_noise_shape(layer, self.noise_shape.as_deref(), shape)
    }

    fn draw(&self, layer: &str, x: &Tensor) -> Result<Option<Noise>> {
        let shape = concrete_noise_shape(layer, self.noise_shape.as_deref(), x.dims())?;
        dropout_noise(&shape, self.rate, x.device())
    }
}

/// The harness cases: a rate, a rate of 0 and of 1, a mask shared along an axis, and the
/// inference forward (the identity).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |dropout: Dropout| dropout.layer().expect("dropout");
    let x = Tensor::new(&[[-1f32, 0.5, 2.0]], &candle_core::Device::Cpu).expect("x");
    vec![
        LayerCase::new(layer(Dropout::new(0.5)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x.clone()], vec![vec![-1.0, 0.5, 2.0]]),
        LayerCase::new(layer(Dropout::new(0.3).seed(5)), &[&[4, 5]])
            .output_shapes(&["(None, 4, 5)"]),
        LayerCase::new(
            layer(Dropout::new(0.5).noise_shape(&[None, Some(1), None])),
            &[&[6, 4]],
        )
        .output_shapes(&["(None, 6, 4)"]),
        LayerCase::new(layer(Dropout::new(0.0)), &[&[3]]).output_shapes(&["(None, 3)"]),
        LayerCase::new(layer(Dropout::new(1.0)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x], vec![vec![-1.0, 0.5, 2.0]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::with_stream;
    use crate::testing::flat;
    use crate::CallContext;
    use candle_core::Device;

    /// A training call of `dropout` on `x` in the stream `key`.
    fn train(dropout: &dyn Layer, x: &Tensor, key: u64) -> Vec<f32> {
        let mut ctx = CallContext::new(true);
        with_stream(key, || dropout.call(std::slice::from_ref(x), &mut ctx))
            .map(|y| flat(&y[0]))
            .expect("call")
    }

    #[test]
    fn drops_the_rate_and_scales_the_rest_as_keras() -> Result<()> {
        let x = Tensor::ones((100, 1000), candle_core::DType::F32, &Device::Cpu)?;
        let dropout = Dropout::new(0.2).layer()?;
        let y = train(dropout.as_ref(), &x, 1);
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!((dropped - 0.2).abs() < 0.01, "{dropped}");
        assert!(y.iter().all(|&v| v == 0.0 || v == 1.25));
        assert_eq!(train(dropout.as_ref(), &x, 1), y, "one stream, one mask");
        assert_ne!(train(dropout.as_ref(), &x, 2), y);
        let all = Dropout::new(1.0).layer()?;
        assert!(train(all.as_ref(), &x, 1).iter().all(|&v| v == 0.0));
        Ok(())
    }

    #[test]
    fn a_noise_shape_shares_the_mask_and_must_broadcast() -> Result<()> {
        let x = Tensor::ones((4, 50, 3), candle_core::DType::F32, &Device::Cpu)?;
        let dropout = Dropout::new(0.5)
            .noise_shape(&[None, Some(1), None])
            .layer()?;
        let y = train(dropout.as_ref(), &x, 3);
        // Every step of a sample's sequence keeps or drops the same features.
        for sample in y.chunks(150) {
            assert!(sample.chunks(3).all(|step| step == &sample[..3]));
        }
        let bad = Dropout::new(0.5)
            .noise_shape(&[None, Some(2), None])
            .name("d");
        let message = bad(crate::Input::new(&[50, 3]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'d'") && message.contains("noise_shape"),
            "{message}"
        );
        let bad = bad.layer()?;
        let message = bad
            .call(std::slice::from_ref(&x), &mut CallContext::new(true))
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains("'d'") && message.contains("noise_shape"),
            "{message}"
        );
        for rate in [-0.1, 1.5, f64::NAN] {
            assert!(Dropout::new(rate).layer().is_err(), "{rate}");
        }
        Ok(())
    }
}
