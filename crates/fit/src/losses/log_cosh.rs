//! Log-cosh loss, after `keras/src/losses/losses.py` (`LogCosh`, `log_cosh`).

use super::elementwise::ElementwiseLoss;
use crate::Result;
use candle_core::Tensor;

/// `mean(log(cosh(y_pred - y_true)), axis=-1)`, reduced over the batch, computed as Keras does:
/// `x + softplus(-2x) - log 2` (finite for any error).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LogCosh;

impl LogCosh {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

/// `log(1 + exp(x))` without overflow: `max(x, 0) + log(1 + exp(-|x|))`.
pub(crate) fn softplus(x: &Tensor) -> Result<Tensor> {
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((x.relu()? + tail)?)
}

impl ElementwiseLoss for LogCosh {
    const NAME: &'static str = "log_cosh";

    fn elements(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        let x = (p - y)?;
        Ok(((&x + softplus(&x.affine(-2.0, 0.0)?)?)? - std::f64::consts::LN_2)?)
    }

    /// `tanh(y_pred - y_true)`.
    fn derivative(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok((p - y)?.tanh()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::super::Loss;
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_keras_docstring_example_and_large_errors() -> Result<()> {
        let cpu = &Device::Cpu;
        // keras: log_cosh([[0, 1], [0, 0]], [[1, 1], [0, 0]]) = 0.108:
        // errors [[1, 0], [0, 0]]: ln(cosh 1) = 0.4338, mean over the 4 elements 0.1084
        let y_true = Tensor::new(&[[0f32, 1.], [0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[1f32, 1.], [0., 0.]], cpu)?;
        let loss = LogCosh::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        let expected = 1f64.cosh().ln() / 4.0;
        assert!(
            (loss as f64 - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
        // An error of 100: cosh overflows f32, the loss is 100 - ln 2.
        let far = LogCosh::new()
            .compute(
                &Tensor::new(&[[0f32]], cpu)?,
                &Tensor::new(&[[100f32]], cpu)?,
            )?
            .to_scalar::<f32>()?;
        assert!((far as f64 - (100.0 - 2f64.ln())).abs() < 1e-4, "{far}");
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        assert_gradient_matches(
            &LogCosh::new(),
            &[0.0, 1.0, -2.0, 0.5],
            &[1.0, 1.5, 3.0, -0.25],
            &[2, 2],
        )
    }
}
