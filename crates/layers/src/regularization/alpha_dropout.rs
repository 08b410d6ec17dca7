//! `AlphaDropout`: in training, each unit kept with probability `1 - rate` or set to SELU's
//! negative saturation value `alpha_p = -alpha · scale`, then the whole shifted and scaled to
//! keep the mean and variance of the input: `a · (x · kept + alpha_p · (1 - kept)) + b` with
//! `a = ((1 - rate) · (1 + rate · alpha_p²))^(-1/2)` and `b = -a · alpha_p · rate`; the identity
//! in inference (`keras/src/layers/regularization/alpha_dropout.py`).

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::noise::{
    check_noise_shape, concrete_noise_shape, positive_noise_shape, seed_option, unit_interval,
    Noise, NoiseLayer, NoiseOptions,
};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result, SymbolicShape};

/// SELU's `alpha` and `scale`, as Keras writes them in `alpha_dropout.py`.
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// `AlphaDropout`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaDropoutConfig {
    /// The fraction of units dropped, in [0, 1) (Keras accepts 1, where `a` is infinite).
    pub rate: f64,
    /// Keras's per-layer seed: kept in the config, but the draws come from the stream training
    /// gives each step, which `set_random_seed` fixes.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The shape of the mask, broadcast over the input (each dimension the input's or 1;
    /// `None` for the input's); default the input's shape.
    #[serde(default)]
    pub noise_shape: Option<Vec<Option<usize>>>,
}

/// Alpha dropout, for self-normalizing (SELU) networks: `AlphaDropout::new(0.1)(x)`.
pub type AlphaDropout = LayerBuilder<AlphaDropoutConfig>;

/// The layer an [`AlphaDropout`] builder makes.
pub type AlphaDropoutLayer = NoiseLayer<AlphaDropoutConfig>;

impl AlphaDropout {
    /// Alpha dropout of a fraction `rate` of the units.
    pub fn new(rate: f64) -> Self {
        LayerBuilder::from_config(AlphaDropoutConfig {
            rate,
            seed: None,
            noise_shape: None,
        })
    }

    /// The shape of the mask (`None` for the input's dimension).
    pub fn noise_shape(self, noise_shape: &[Option<usize>]) -> Self {
        let noise_shape = noise_shape.to_vec();
        self.with(|c| c.noise_shape = Some(noise_shape))
    }

    seed_option!();
}

impl AlphaDropoutConfig {
    /// Keras's `alpha_p`, `a` and `b` for the rate.
    fn coefficients(&self) -> (f64, f64, f64) {
        let alpha_p = -SELU_ALPHA * SELU_SCALE;
        let rate = self.rate;
        let a = ((1.0 - rate) * (1.0 + rate * alpha_p * alpha_p)).powf(-0.5);
        let b = -a * alpha_p * rate;
        (alpha_p, a, b)
    }
}

impl LayerConfig for AlphaDropoutConfig {
    const CLASS_NAME: &'static str = "AlphaDropout";
    const NAME_PREFIX: &'static str = "alpha_dropout";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        unit_interval(&name, "rate", self.rate, false)?;
        positive_noise_shape(&name, self.noise_shape.as_deref())?;
        Ok(Arc::new(AlphaDropoutLayer::new(
            name,
            trainable,
            self.clone(),
        )))
    }
}

impl NoiseOptions for AlphaDropoutConfig {
    fn check_input(&self, layer: &str, shape: &SymbolicShape) -> Result<()> {
        check_noise_shape(layer, self.noise_shape.as_deref(), shape)
    }

    fn draw(&self, layer: &str, x: &Tensor) -> Result<Option<Noise>> {
        let shape = concrete_noise_shape(layer, self.noise_shape.as_deref(), x.dims())?;
        if self.rate == 0.0 {
            return Ok(None);
        }
        let rate = self.rate as f32;
        let count = shape.iter().product();
        // Kept where a uniform draw is at least the rate (Keras's `greater_equal`).
        let kept = crate::random::uniform_map(count, |u| if u >= rate { 1.0 } else { 0.0 });
        let kept = Tensor::from_vec(kept, shape, x.device())?;
        // a · (x · kept + alpha_p · (1 - kept)) + b = x · (a · kept) + (a · alpha_p + b
        // - a · alpha_p · kept).
        let (alpha_p, a, b) = self.coefficients();
        Ok(Some(Noise::Affine {
            scale: kept.affine(a, 0.0)?,
            shift: kept.affine(-a * alpha_p, a * alpha_p + b)?,
        }))
    }
}

/// The harness cases: a rate, a mask shared along an axis, a rate of 0, and the inference
/// forward (the identity).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |dropout: AlphaDropout| dropout.layer().expect("alpha dropout");
    let x = Tensor::new(&[[-1f32, 0.5, 2.0]], &candle_core::Device::Cpu).expect("x");
    vec![
        LayerCase::new(layer(AlphaDropout::new(0.5)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .forward(vec![x], vec![vec![-1.0, 0.5, 2.0]]),
        LayerCase::new(layer(AlphaDropout::new(0.2).seed(4)), &[&[4, 5]])
            .output_shapes(&["(None, 4, 5)"]),
        LayerCase::new(
            layer(AlphaDropout::new(0.4).noise_shape(&[None, Some(1), None])),
            &[&[6, 4]],
        )
        .output_shapes(&["(None, 6, 4)"]),
        LayerCase::new(layer(AlphaDropout::new(0.0)), &[&[3]]).output_shapes(&["(None, 3)"]),
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
    fn keeps_or_saturates_then_rescales_as_keras() -> Result<()> {
        let config = AlphaDropout::new(0.5).config().clone();
        let (alpha_p, a, b) = config.coefficients();
        // alpha_p = -1.6732632 · 1.0507010 = -1.7580993; a = (0.5 · (1 + 0.5 · 3.0909133))^-½
        // = 1.2727283^-½ = 0.8864049; b = 0.8864049 · 1.7580993 · 0.5 = 0.7791939.
        assert!((alpha_p + 1.758_099_3).abs() < 1e-6, "{alpha_p}");
        assert!((a - 0.886_404_9).abs() < 1e-6, "{a}");
        assert!((b - 0.779_193_9).abs() < 1e-6, "{b}");
        let x = Tensor::full(2f32, (100, 1000), &Device::Cpu)?;
        let layer = AlphaDropout::new(0.5).layer()?;
        let mut ctx = CallContext::new(true);
        let y = flat(&with_stream(3, || layer.call(std::slice::from_ref(&x), &mut ctx))?[0]);
        // Kept: a · 2 + b = 2.5520037; dropped: a · alpha_p + b = -0.7791939.
        let (kept, dropped) = ((a * 2.0 + b) as f32, (a * alpha_p + b) as f32);
        assert!(y
            .iter()
            .all(|&v| (v - kept).abs() < 1e-5 || (v - dropped).abs() < 1e-5));
        let share = y.iter().filter(|&&v| (v - dropped).abs() < 1e-5).count() as f64 / 1e5;
        assert!((share - 0.5).abs() < 0.01, "{share}");
        let same = layer.call(std::slice::from_ref(&x), &mut CallContext::new(false))?;
        assert_eq!(flat(&same[0]), flat(&x));
        Ok(())
    }

    #[test]
    fn keeps_a_standard_input_standard() -> Result<()> {
        // Units of mean 0 and variance 1 keep them (the point of alpha dropout).
        let x = with_stream(1, || {
            crate::random::normal(&[200, 500], 0.0, 1.0, &Device::Cpu)
        })?;
        let layer = AlphaDropout::new(0.3).layer()?;
        let mut ctx = CallContext::new(true);
        let y = flat(&with_stream(8, || layer.call(&[x], &mut ctx))?[0]);
        let n = y.len() as f64;
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
        Ok(())
    }

    #[test]
    fn bad_options_are_errors_naming_the_layer() {
        for rate in [-0.1, 1.0, f64::NAN] {
            let message = AlphaDropout::new(rate)
                .name("ad")
                .layer()
                .err()
                .expect("refused")
                .to_string();
            assert!(
                message.contains("'ad'") && message.contains("rate"),
                "{message}"
            );
        }
        let bad = AlphaDropout::new(0.5)
            .noise_shape(&[None, Some(2)])
            .name("ad2");
        let message = bad(crate::Input::new(&[3]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'ad2'") && message.contains("noise_shape"),
            "{message}"
        );
    }
}
