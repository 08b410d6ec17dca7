//! Squared hinge loss, after `keras/src/losses/losses.py` (`SquaredHinge`, `squared_hinge`).

use super::elementwise::ElementwiseLoss;
use super::hinge::{hinge_margin, hinge_targets};
use crate::Result;
use candle_core::Tensor;

/// `mean(square(maximum(1 - y_true·y_pred, 0)), axis=-1)`, reduced over the batch; 0/1 targets
/// are turned into -1/1 first, as for [`Hinge`](super::Hinge).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SquaredHinge;

impl SquaredHinge {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

impl ElementwiseLoss for SquaredHinge {
    const NAME: &'static str = "squared_hinge";

    fn targets(y_true: &Tensor) -> Result<Tensor> {
        hinge_targets(y_true)
    }

    fn elements(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok(hinge_margin(y, p)?.relu()?.sqr()?)
    }

    /// `-2·y·maximum(1 - y·p, 0)`.
    fn derivative(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok((hinge_margin(y, p)?.relu()? * y)?.affine(-2.0, 0.0)?)
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
        let y_true = Tensor::new(&[[0f32, 1.], [0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[0.6f32, 0.4], [0.4, 0.6]], cpu)?;
        // targets [[-1, 1], [-1, -1]]: margins [[1.6, 0.6], [1.4, 1.6]];
        // samples (2.56 + 0.36)/2 = 1.46 and (1.96 + 2.56)/2 = 2.26 (Keras's docstring:
        // [1.46, 2.26]); loss (1.46 + 2.26)/2 = 1.86
        let loss = SquaredHinge::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!((loss - 1.86).abs() < 1e-6, "{loss}");
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        assert_gradient_matches(
            &SquaredHinge::new(),
            &[-1.0, 1.0, 1.0, -1.0, 1.0, -1.0],
            &[0.3, 0.2, 1.5, -0.7, -0.4, 2.5],
            &[3, 2],
        )
    }
}
