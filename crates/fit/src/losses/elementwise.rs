//! Losses that are the mean over the last axis of one function of each element, after the
//! `LossFunctionWrapper`s of `keras/src/losses/losses.py` (`hinge`, `squared_hinge`,
//! `log_cosh`, `mean_absolute_percentage_error`, `mean_squared_logarithmic_error`, `poisson`):
//! written once here, each loss gives its function and that function's derivative.

use super::reduction::{
    align_targets, mean_over_last_axis, mean_over_last_axis_then_batch, require_float,
};
use super::Loss;
use crate::Result;
use candle_core::Tensor;
use serde_json::json;

/// A loss without options `mean(f(y_true, y_pred), axis=-1)`, reduced over the batch, whose `f`
/// has a closed-form derivative: the loss and its gradient then come without autograd.
pub(crate) trait ElementwiseLoss: Send + Sync {
    /// Keras's name of the loss.
    const NAME: &'static str;

    /// The targets `f` reads, from the aligned `y_true` (the hinge losses turn 0/1 labels
    /// into -1/1).
    fn targets(y_true: &Tensor) -> Result<Tensor> {
        Ok(y_true.clone())
    }

    /// `f` on each element of the targets `y` and predictions `p` (of one shape).
    fn elements(y: &Tensor, p: &Tensor) -> Result<Tensor>;

    /// `∂f/∂p` on each element.
    fn derivative(y: &Tensor, p: &Tensor) -> Result<Tensor>;
}

/// The targets and predictions `L` computes with: float predictions, targets aligned with them.
fn operands<L: ElementwiseLoss>(y_true: &Tensor, y_pred: &Tensor) -> Result<(Tensor, Tensor)> {
    require_float(L::NAME, y_pred)?;
    let (y, p) = align_targets(L::NAME, y_true, y_pred)?;
    Ok((L::targets(&y)?, p))
}

impl<L: ElementwiseLoss> Loss for L {
    fn name(&self) -> &str {
        L::NAME
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let (y, p) = operands::<L>(y_true, y_pred)?;
        mean_over_last_axis_then_batch(&L::elements(&y, &p)?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        let (y, p) = operands::<L>(y_true, y_pred)?;
        mean_over_last_axis(&L::elements(&y, &p)?)
    }

    /// Every element counts once in the mean, so the gradient is `∂f/∂p / N` for `N` elements.
    fn value_and_gradient(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        let (y, p) = operands::<L>(&y_true.detach(), &y_pred.detach())?;
        let count = p.elem_count();
        if count == 0 {
            return Ok(None);
        }
        let loss = L::elements(&y, &p)?.mean_all()?;
        let grad = (L::derivative(&y, &p)? / count as f64)?;
        Ok(Some((loss, grad.reshape(y_pred.dims())?)))
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": L::NAME, "reduction": "sum_over_batch_size" })
    }
}
