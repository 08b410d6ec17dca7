//! Poisson loss, after `keras/src/losses/losses.py` (`Poisson`, `poisson`).

use super::elementwise::ElementwiseLoss;
use super::EPSILON;
use crate::Result;
use candle_core::Tensor;

/// `mean(y_pred - y_true·log(y_pred + 1e-7), axis=-1)`, reduced over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Poisson;

impl Poisson {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

impl ElementwiseLoss for Poisson {
    const NAME: &'static str = "poisson";

    fn elements(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok((p - (y * (p + EPSILON)?.log()?)?)?)
    }

    /// `1 - y_true / (y_pred + 1e-7)`.
    fn derivative(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok((y / (p + EPSILON)?)?.affine(-1.0, 1.0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::super::Loss;
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_hand_computed_values() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[0f32, 2.], [1., 1.]], cpu)?;
        let y_pred = Tensor::new(&[[0.5f32, 1.], [2., 1.]], cpu)?;
        // 0.5 - 0 and 1 - 2 ln 1 = 1 → 0.75; 2 - ln 2 and 1 - 0 → (3 - ln 2)/2
        let expected = (0.75 + (3.0 - 2f64.ln()) / 2.0) / 2.0;
        let loss = Poisson::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!(
            (loss as f64 - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        assert_gradient_matches(
            &Poisson::new(),
            &[0.0, 2.0, 1.0, 3.0],
            &[0.5, 1.0, 2.0, 0.25],
            &[2, 2],
        )
    }
}
