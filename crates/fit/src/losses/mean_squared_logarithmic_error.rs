//! Mean squared logarithmic error, after `keras/src/losses/losses.py`
//! (`MeanSquaredLogarithmicError`, `mean_squared_logarithmic_error`).

use super::elementwise::ElementwiseLoss;
use super::EPSILON;
use crate::Result;
use candle_core::Tensor;

/// `mean(square(log(maximum(y_pred, 1e-7) + 1) - log(maximum(y_true, 1e-7) + 1)), axis=-1)`,
/// reduced over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeanSquaredLogarithmicError;

impl MeanSquaredLogarithmicError {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

/// `maximum(x, 1e-7) + 1`.
fn shifted(x: &Tensor) -> Result<Tensor> {
    Ok((x.clamp(EPSILON, f64::INFINITY)? + 1.0)?)
}

/// `log(maximum(p, 1e-7) + 1) - log(maximum(y, 1e-7) + 1)`.
fn log_difference(y: &Tensor, p: &Tensor) -> Result<Tensor> {
    Ok((shifted(p)?.log()? - shifted(y)?.log()?)?)
}

impl ElementwiseLoss for MeanSquaredLogarithmicError {
    const NAME: &'static str = "mean_squared_logarithmic_error";

    fn elements(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok(log_difference(y, p)?.sqr()?)
    }

    /// `2·difference / (y_pred + 1)` where `y_pred >= 1e-7` (the gradient of TensorFlow's
    /// `maximum` goes to its first operand on a tie), else 0.
    fn derivative(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        let unclipped = p.ge(EPSILON)?.to_dtype(p.dtype())?;
        let slope = (log_difference(y, p)? / shifted(p)?)?.affine(2.0, 0.0)?;
        Ok((slope * unclipped)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::super::Loss;
    use super::*;
    use candle_core::Device;

    #[test]
    fn squared_differences_of_logarithms() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[0f32, 1.], [3., -2.]], cpu)?;
        let y_pred = Tensor::new(&[[1f32, 1.], [1., 0.]], cpu)?;
        // (ln 2 - ln 1)² = ln²2, 0 → sample ln²2 / 2; (ln 2 - ln 4)² = ln²2, and y = -2 and
        // p = 0 both clip to 1e-7: 0 → sample ln²2 / 2; loss ln²2 / 2
        let loss = MeanSquaredLogarithmicError::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        let expected = 2f64.ln().powi(2) / 2.0;
        assert!(
            (loss as f64 - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        assert_gradient_matches(
            &MeanSquaredLogarithmicError::new(),
            &[0.0, 1.0, 3.0, -2.0, 0.5, 2.0],
            &[1.0, 1.5, 0.25, -0.5, 4.0, 2.5],
            &[2, 3],
        )
    }
}
