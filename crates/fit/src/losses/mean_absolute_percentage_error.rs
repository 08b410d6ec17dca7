//! Mean absolute percentage error, after `keras/src/losses/losses.py`
//! (`MeanAbsolutePercentageError`, `mean_absolute_percentage_error`).

use super::elementwise::ElementwiseLoss;
use super::EPSILON;
use crate::Result;
use candle_core::Tensor;

/// `100·mean(abs((y_true - y_pred) / maximum(abs(y_true), 1e-7)), axis=-1)`, reduced over the
/// batch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeanAbsolutePercentageError;

impl MeanAbsolutePercentageError {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

/// `maximum(abs(y_true), 1e-7)`, the divisor of the percentages.
fn divisor(y: &Tensor) -> Result<Tensor> {
    Ok(y.abs()?.clamp(EPSILON, f64::INFINITY)?)
}

impl ElementwiseLoss for MeanAbsolutePercentageError {
    const NAME: &'static str = "mean_absolute_percentage_error";

    fn elements(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok(((y - p)? / divisor(y)?)?.abs()?.affine(100.0, 0.0)?)
    }

    /// `100·sign(y_pred - y_true) / maximum(abs(y_true), 1e-7)` (0 where they are equal).
    fn derivative(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok(((p - y)?.sign()? / divisor(y)?)?.affine(100.0, 0.0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::super::Loss;
    use super::*;
    use candle_core::Device;

    #[test]
    fn percentages_of_the_targets() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[2f32, -4.], [1., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[1f32, -5.], [1., 1e-7]], cpu)?;
        // |2-1|/2 = 0.5, |-4+5|/4 = 0.25 → sample 100·0.375 = 37.5;
        // 0 and |0 - 1e-7| / 1e-7 = 1 → sample 100·0.5 = 50; loss (37.5 + 50)/2 = 43.75
        let loss = MeanAbsolutePercentageError::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!((loss - 43.75).abs() < 1e-4, "{loss}");
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        assert_gradient_matches(
            &MeanAbsolutePercentageError::new(),
            &[2.0, -4.0, 0.5, 3.0],
            &[1.0, -5.0, 0.75, -1.0],
            &[2, 2],
        )
    }
}
