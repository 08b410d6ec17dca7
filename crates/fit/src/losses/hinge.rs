//! Hinge loss, after `keras/src/losses/losses.py` (`Hinge`, `hinge`,
//! `convert_binary_labels_to_hinge`).

use super::elementwise::ElementwiseLoss;
use crate::Result;
use candle_core::Tensor;

/// `mean(maximum(1 - y_true·y_pred, 0), axis=-1)`, reduced over the batch.
///
/// Targets are expected in {-1, 1}; when every target of the batch is 0 or 1 they are first
/// turned into -1 or 1, as Keras does. (That test is on the whole batch, so a batch of targets
/// mixing -1, 0 and 1 would be read differently by its parts; with 0/1 or -1/1 targets the loss
/// is an exact mean over samples.)
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Hinge;

impl Hinge {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

/// Keras's `convert_binary_labels_to_hinge`: `2·y - 1` when every element is 0 or 1, else `y`
/// unchanged; decided on the device (`y·(1 + b) - b` with `b` 1 or 0), without a transfer.
pub(crate) fn hinge_targets(y: &Tensor) -> Result<Tensor> {
    if y.elem_count() == 0 {
        return Ok(y.clone());
    }
    let dtype = y.dtype();
    let is_binary = (y.eq(0.0)?.to_dtype(dtype)? + y.eq(1.0)?.to_dtype(dtype)?)?.min_all()?;
    Ok(y.broadcast_mul(&(&is_binary + 1.0)?)?
        .broadcast_sub(&is_binary)?)
}

/// `1 - y·p`, the margin the hinge losses clip at 0.
pub(crate) fn hinge_margin(y: &Tensor, p: &Tensor) -> Result<Tensor> {
    Ok((y * p)?.affine(-1.0, 1.0)?)
}

impl ElementwiseLoss for Hinge {
    const NAME: &'static str = "hinge";

    fn targets(y_true: &Tensor) -> Result<Tensor> {
        hinge_targets(y_true)
    }

    fn elements(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        Ok(hinge_margin(y, p)?.relu()?)
    }

    /// `-y` where the margin is >= 0 (TensorFlow's `maximum` passes the gradient at the tie),
    /// else 0.
    fn derivative(y: &Tensor, p: &Tensor) -> Result<Tensor> {
        let active = hinge_margin(y, p)?.ge(0.0)?.to_dtype(p.dtype())?;
        Ok((active * y.neg()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::super::Loss;
    use super::*;
    use candle_core::Device;

    #[test]
    fn binary_labels_become_minus_one_and_one() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[0f32, 1.], [0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[0.6f32, 0.4], [0.4, 0.6]], cpu)?;
        // targets [[-1, 1], [-1, -1]]: margins [[1.6, 0.6], [1.4, 1.6]], none clipped;
        // samples (1.6 + 0.6)/2 = 1.1 and (1.4 + 1.6)/2 = 1.5; loss (1.1 + 1.5)/2 = 1.3
        let loss = Hinge::new().compute(&y_true, &y_pred)?.to_scalar::<f32>()?;
        assert!((loss - 1.3).abs() < 1e-6, "{loss}");
        Ok(())
    }

    #[test]
    fn signed_labels_are_kept_and_margins_clip_at_zero() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[-1f32, 1., 1.]], cpu)?;
        let y_pred = Tensor::new(&[[-2f32, 0.25, -0.5]], cpu)?;
        // margins 1 - 2 = -1 → 0, 1 - 0.25 = 0.75, 1 + 0.5 = 1.5; mean 2.25/3 = 0.75
        let loss = Hinge::new().compute(&y_true, &y_pred)?.to_scalar::<f32>()?;
        assert_eq!(loss, 0.75);
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        // 0/1 labels; margins away from 0 (one clipped: 1 - 1·1.5 < 0).
        assert_gradient_matches(
            &Hinge::new(),
            &[0.0, 1.0, 1.0, 0.0, 1.0, 0.0],
            &[0.3, 0.2, 1.5, -0.7, -0.4, 2.5],
            &[2, 3],
        )
    }
}
