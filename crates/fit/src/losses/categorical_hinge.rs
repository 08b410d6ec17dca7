//! Categorical hinge loss, after `keras/src/losses/losses.py` (`CategoricalHinge`,
//! `categorical_hinge`).

use super::reduction::{align_targets, require_float, sum_over_batch_size};
use super::Loss;
use crate::Result;
use candle_core::{Tensor, D};
use serde_json::json;

/// `maximum(neg - pos + 1, 0)` per sample, with `pos = sum(y_true·y_pred, axis=-1)` and
/// `neg = max((1 - y_true)·y_pred, axis=-1)`, reduced over the batch. Targets are one-hot.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CategoricalHinge;

impl CategoricalHinge {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

/// The aligned targets and predictions, `(1 - y)·p`, its maximum over the last axis (kept) and
/// each sample's margin `neg - pos + 1` (kept).
struct Parts {
    y: Tensor,
    others: Tensor,
    neg: Tensor,
    margin: Tensor,
}

fn parts(y_true: &Tensor, y_pred: &Tensor) -> Result<Parts> {
    require_float(CategoricalHinge.name(), y_pred)?;
    let (y, p) = align_targets(CategoricalHinge.name(), y_true, y_pred)?;
    let pos = (&y * &p)?.sum_keepdim(D::Minus1)?;
    let others = (y.affine(-1.0, 1.0)? * &p)?;
    let neg = others.max_keepdim(D::Minus1)?;
    let margin = ((&neg - pos)? + 1.0)?;
    Ok(Parts {
        y,
        others,
        neg,
        margin,
    })
}

impl Loss for CategoricalHinge {
    fn name(&self) -> &str {
        "categorical_hinge"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        if y_pred.elem_count() == 0 {
            return sum_over_batch_size(y_pred);
        }
        sum_over_batch_size(&parts(y_true, y_pred)?.margin.relu()?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            parts(y_true, y_pred)?.margin.relu()?.squeeze(D::Minus1)?,
        ))
    }

    /// Where a sample's margin is >= 0: `-y` plus `1 - y` on the largest `(1 - y)·p`, shared
    /// equally among ties (TensorFlow's gradients of `maximum` and `max`); divided by the
    /// number of samples.
    fn value_and_gradient(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        if y_pred.elem_count() == 0 {
            return Ok(None);
        }
        let Parts {
            y,
            others,
            neg,
            margin,
        } = parts(&y_true.detach(), &y_pred.detach())?;
        let dtype = margin.dtype();
        let loss = sum_over_batch_size(&margin.relu()?)?;
        let samples = margin.elem_count() as f64;
        let ties = others.broadcast_eq(&neg)?.to_dtype(dtype)?;
        let share = ties.broadcast_div(&ties.sum_keepdim(D::Minus1)?)?;
        let d_neg = (share * y.affine(-1.0, 1.0)?)?;
        let active = (margin.ge(0.0)?.to_dtype(dtype)? / samples)?;
        let grad = (d_neg - y)?.broadcast_mul(&active)?;
        Ok(Some((loss, grad.reshape(y_pred.dims())?)))
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "reduction": "sum_over_batch_size" })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_hand_computed_values() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[0f32, 1., 0.], [1., 0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[0.2f32, 0.5, 0.3], [3., 0.5, 1.]], cpu)?;
        // sample 0: pos 0.5, neg max(0.2, 0.3) = 0.3, margin 0.8;
        // sample 1: pos 3, neg 1, margin -1 → 0; loss 0.8 / 2 = 0.4
        let loss = CategoricalHinge::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!((loss - 0.4).abs() < 1e-6, "{loss}");
        Ok(())
    }

    #[test]
    fn closed_form_gradient() -> Result<()> {
        // Sample 1's margin is negative (no gradient); no ties.
        assert_gradient_matches(
            &CategoricalHinge::new(),
            &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0],
            &[0.2, 0.5, 0.3, 3.0, 0.5, 1.0, -0.4, 0.9, 0.1],
            &[3, 3],
        )
    }

    #[test]
    fn tied_maxima_share_the_gradient() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[1f64, 0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[0.5f64, 0.25, 0.25]], cpu)?;
        // margin 0.25 - 0.5 + 1 > 0: -1 on the target, 1/2 on each tied maximum.
        let grad = CategoricalHinge::new()
            .value_and_gradient(&y_true, &y_pred)?
            .map(|(_, g)| g.flatten_all()?.to_vec1::<f64>())
            .transpose()?;
        assert_eq!(grad, Some(vec![-1.0, 0.5, 0.5]));
        Ok(())
    }
}
