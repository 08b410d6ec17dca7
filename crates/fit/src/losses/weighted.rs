//! Sample weights on a loss, as Keras applies them (`keras/src/losses/loss.py`,
//! `reduce_weighted_values` with the default `"sum_over_batch_size"` reduction): each value of
//! the loss's `call` (one per sample, or per sample and timestep) times its weight, summed, and
//! divided by the number of values, not by the sum of the weights.
//!
//! The gradient of a loss with a closed form (the fused sigmoid and softmax heads included) is
//! its unweighted gradient with each sample's rows scaled by the sample's weight: exact, since
//! each value depends on its own sample only ([`Loss::per_sample`]) and the divisor does not
//! depend on the weights. Other losses are differentiated by candle's autograd over the
//! weighted mean.

use candle_core::{Tensor, Var};

use super::Loss;
use crate::{Error, Result};

/// `weights` (one per sample, or per sample and timestep: a prefix of the shape `like`) with
/// trailing axes of 1 up to `like`'s rank, in its dtype; an error naming `loss` when it does not
/// fit.
fn aligned(weights: &Tensor, like: &Tensor, loss: &str) -> Result<Tensor> {
    let (w, dims) = (weights.dims(), like.dims());
    let fits = !w.is_empty() && w.len() <= dims.len() && w.iter().zip(dims).all(|(a, b)| a == b);
    if !fits {
        return Err(Error::Shape {
            context: format!("sample_weight for loss {loss}"),
            expected: format!("weights shaped as a prefix of the loss's values {dims:?}"),
            got: format!("{w:?}"),
        });
    }
    let mut shape = w.to_vec();
    shape.resize(dims.len(), 1);
    Ok(weights.to_dtype(like.dtype())?.reshape(shape)?)
}

/// The loss's per-sample values, or an error saying that it takes no sample weights.
fn per_sample(loss: &dyn Loss, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    loss.per_sample(y_true, y_pred)?.ok_or_else(|| {
        Error::Config(format!(
            "loss {} gives no per-sample values, so it cannot take sample_weight or class_weight",
            loss.name()
        ))
    })
}

/// Keras's weighted `"sum_over_batch_size"`: `sum(values · weights) / size(values)` (0 for no
/// values).
fn reduce_weighted(values: &Tensor, weights: &Tensor, loss: &str) -> Result<Tensor> {
    let weights = aligned(weights, values, loss)?;
    if values.elem_count() == 0 {
        return Ok(Tensor::zeros((), values.dtype(), values.device())?);
    }
    let sum = values.broadcast_mul(&weights)?.sum_all()?;
    Ok((sum / values.elem_count() as f64)?)
}

/// `loss` on `(y_true, y_pred)` with each sample's values weighted by `weights`.
pub(crate) fn weighted_value(
    loss: &dyn Loss,
    y_true: &Tensor,
    y_pred: &Tensor,
    weights: &Tensor,
) -> Result<Tensor> {
    reduce_weighted(&per_sample(loss, y_true, y_pred)?, weights, loss.name())
}

/// The weighted loss (see [`weighted_value`]) and its gradient with respect to `y_pred`: the
/// closed-form gradient scaled sample by sample where the loss has one and its values are one
/// per row of `y_pred`'s last axis, else candle's autograd over the weighted mean.
pub(crate) fn weighted_value_and_gradient(
    loss: &dyn Loss,
    y_true: &Tensor,
    y_pred: &Tensor,
    weights: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (y_true, y_pred) = (y_true.detach(), y_pred.detach());
    if let Some((_, grad)) = loss.value_and_gradient(&y_true, &y_pred)? {
        let values = per_sample(loss, &y_true, &y_pred)?;
        let rows = &grad.dims()[..grad.rank().saturating_sub(1)];
        if weights.rank() == 1 || values.dims() == rows {
            let value = reduce_weighted(&values, weights, loss.name())?;
            let grad = grad.broadcast_mul(&aligned(weights, &grad, loss.name())?)?;
            return Ok((value, grad));
        }
    }
    let var = Var::from_tensor(&y_pred)?;
    let value = weighted_value(loss, &y_true, var.as_tensor(), weights)?;
    let grad = match value.backward()?.get(var.as_tensor()) {
        Some(grad) => grad.clone(),
        None => var.as_tensor().zeros_like()?,
    };
    Ok((value.detach(), grad))
}
