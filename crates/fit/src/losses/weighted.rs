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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losses::{
        BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy, CategoricalHinge,
        CosineSimilarity, Hinge, Huber, KLDivergence, LogCosh, MeanAbsoluteError, MeanSquaredError,
        Poisson, SparseCategoricalCrossentropy,
    };
    use candle_core::{DType, Device};

    fn tensor(values: &[f64], shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_slice(values, shape, &Device::Cpu)?)
    }

    fn scalar(t: &Tensor) -> Result<f64> {
        Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
    }

    #[test]
    fn mse_weights_multiply_each_sample_and_the_sum_is_divided_by_the_sample_count() -> Result<()> {
        let y = tensor(&[0.; 6], &[3, 2])?;
        let p = tensor(&[1., 1., 2., 0., 3., 3.], &[3, 2])?;
        // Per sample: (1 + 1)/2 = 1, (4 + 0)/2 = 2, (9 + 9)/2 = 9. Weights [1, 3, 0]:
        // (1·1 + 3·2 + 0·9) / 3 = 7/3 (divided by the 3 samples, not by the weights' sum 4).
        let w = tensor(&[1., 3., 0.], &[3])?;
        let value = scalar(&weighted_value(&MeanSquaredError, &y, &p, &w)?)?;
        assert!((value - 7.0 / 3.0).abs() < 1e-12, "{value}");
        // Weights [1, 2, 0]: (1 + 4 + 0) / 3 = 5/3.
        let w = tensor(&[1., 2., 0.], &[3])?;
        let value = scalar(&weighted_value(&MeanSquaredError, &y, &p, &w)?)?;
        assert!((value - 5.0 / 3.0).abs() < 1e-12, "{value}");
        Ok(())
    }

    #[test]
    fn temporal_weights_weight_each_timestep() -> Result<()> {
        // 2 samples of 2 timesteps of 1 value: squared errors [[1, 4], [9, 16]], weights
        // [[1, 0], [2, 1]]: (1 + 0 + 18 + 16) / 4 = 35/4.
        let y = tensor(&[0.; 4], &[2, 2, 1])?;
        let p = tensor(&[1., 2., 3., 4.], &[2, 2, 1])?;
        let w = tensor(&[1., 0., 2., 1.], &[2, 2])?;
        let (value, grad) = weighted_value_and_gradient(&MeanSquaredError, &y, &p, &w)?;
        assert!((scalar(&value)? - 35.0 / 4.0).abs() < 1e-12);
        // d/dp w·(p - y)² / 4 = w·2p/4
        let grad = grad.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(grad, vec![0.5, 0.0, 3.0, 2.0]);
        Ok(())
    }

    /// A loss, its targets and predictions, and their shapes.
    type Case = (Box<dyn Loss>, Vec<f64>, Vec<f64>, Vec<usize>, Vec<usize>);

    /// Every built-in loss with a target and a prediction of 3 samples, away from its kinks.
    fn cases() -> Vec<Case> {
        let probs = vec![0.2, 0.5, 0.3, 0.6, 0.1, 0.3, 0.25, 0.25, 0.5];
        let logits = vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4, 1.5, -2.2, 0.9];
        let one_hot = vec![0., 1., 0., 1., 0., 0., 0., 0., 1.];
        let binary = vec![0., 1., 1., 0., 1., 0.];
        let real = vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4];
        let positive = vec![0.3, 1.2, 2.0, 0.7, 0.1, 0.4];
        let targets = vec![1.0, -0.5, 1.5, 0.2, 0.9, 0.3];
        let (s3x3, s3x2) = (vec![3, 3], vec![3, 2]);
        let bce = BinaryCrossentropy::new();
        let focal = BinaryFocalCrossentropy::new();
        let cce = CategoricalCrossentropy::new();
        let sparse = SparseCategoricalCrossentropy::new();
        vec![
            (
                Box::new(MeanSquaredError),
                targets.clone(),
                real.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(MeanAbsoluteError),
                targets.clone(),
                real.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(Huber::new()),
                targets.clone(),
                real.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(LogCosh),
                targets.clone(),
                real.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(Poisson),
                positive.clone(),
                positive.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(Hinge),
                binary.clone(),
                real.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(CosineSimilarity::new()),
                targets,
                real.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(KLDivergence),
                one_hot.clone(),
                probs.clone(),
                s3x3.clone(),
                s3x3.clone(),
            ),
            (
                Box::new(bce),
                binary.clone(),
                probs[..6].to_vec(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(bce.from_logits(true)),
                binary.clone(),
                real.clone(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(bce.label_smoothing(0.1)),
                binary.clone(),
                probs[..6].to_vec(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(focal),
                binary.clone(),
                probs[..6].to_vec(),
                s3x2.clone(),
                s3x2.clone(),
            ),
            (
                Box::new(focal.from_logits(true)),
                binary,
                real,
                s3x2.clone(),
                s3x2,
            ),
            (
                Box::new(cce),
                one_hot.clone(),
                probs.clone(),
                s3x3.clone(),
                s3x3.clone(),
            ),
            (
                Box::new(cce.from_logits(true)),
                one_hot.clone(),
                logits.clone(),
                s3x3.clone(),
                s3x3.clone(),
            ),
            (
                Box::new(CategoricalHinge),
                one_hot,
                logits.clone(),
                s3x3.clone(),
                s3x3.clone(),
            ),
            (
                Box::new(sparse),
                vec![1., 0., 2.],
                probs,
                vec![3],
                s3x3.clone(),
            ),
            (
                Box::new(sparse.from_logits(true)),
                vec![1., 0., 2.],
                logits,
                vec![3],
                s3x3,
            ),
        ]
    }

    #[test]
    fn every_loss_gives_values_whose_mean_is_its_loss() -> Result<()> {
        for (loss, y, p, y_shape, p_shape) in cases() {
            let (y, p) = (tensor(&y, &y_shape)?, tensor(&p, &p_shape)?);
            let ones = tensor(&[1.; 3], &[3])?;
            let weighted = scalar(&weighted_value(loss.as_ref(), &y, &p, &ones)?)?;
            let plain = scalar(&loss.compute(&y, &p)?)?;
            assert!(
                (weighted - plain).abs() < 1e-12,
                "{}: {weighted} vs {plain}",
                loss.name()
            );
        }
        Ok(())
    }

    /// The weighted gradient in f64 and in f32 (where the fused kernels run) against central
    /// finite differences of the weighted value in f64; a zero-weighted sample gets none.
    #[test]
    fn every_loss_has_the_exact_gradient_of_its_weighted_value() -> Result<()> {
        let weights = [0.5, 2.0, 0.0];
        for (loss, y_values, p_values, y_shape, p_shape) in cases() {
            let name = loss.name().to_string();
            let y = tensor(&y_values, &y_shape)?;
            let w = tensor(&weights, &[3])?;
            let value_at = |p: &[f64]| -> Result<f64> {
                scalar(&weighted_value(
                    loss.as_ref(),
                    &y,
                    &tensor(p, &p_shape)?,
                    &w,
                )?)
            };
            let h = 1e-6;
            let numeric: Vec<f64> = (0..p_values.len())
                .map(|i| {
                    let (mut up, mut down) = (p_values.clone(), p_values.clone());
                    up[i] += h;
                    down[i] -= h;
                    Ok((value_at(&up)? - value_at(&down)?) / (2.0 * h))
                })
                .collect::<Result<_>>()?;
            let expected = value_at(&p_values)?;
            for dtype in [DType::F64, DType::F32] {
                let p = tensor(&p_values, &p_shape)?.to_dtype(dtype)?;
                let (y, w) = (y.to_dtype(dtype)?, w.to_dtype(dtype)?);
                let (value, grad) = weighted_value_and_gradient(loss.as_ref(), &y, &p, &w)?;
                assert_eq!(grad.dims(), &p_shape[..], "{name}");
                let grad = grad.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
                let tolerance = if dtype == DType::F64 { 1e-6 } else { 1e-4 };
                let value = scalar(&value)?;
                assert!(
                    (value - expected).abs() < tolerance * (1.0 + expected.abs()),
                    "{name} {dtype:?}: value {value}, expected {expected}"
                );
                for (i, (g, n)) in grad.iter().zip(&numeric).enumerate() {
                    assert!(
                        (g - n).abs() < tolerance * (1.0 + n.abs()),
                        "{name} {dtype:?} element {i}: {g} vs finite differences {n}"
                    );
                }
                let last = &grad[grad.len() - p_shape[1]..];
                assert!(last.iter().all(|&g| g == 0.0), "{name}: {last:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn misshapen_weights_and_losses_without_values_are_errors() -> Result<()> {
        let y = tensor(&[0.; 6], &[3, 2])?;
        let p = tensor(&[1.; 6], &[3, 2])?;
        let short = tensor(&[1., 1.], &[2])?;
        let message = weighted_value(&MeanSquaredError, &y, &p, &short)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("sample_weight") && message.contains("[2]"),
            "{message}"
        );
        let w = tensor(&[1.; 3], &[3])?;
        let across_samples = CosineSimilarity::new().axis(0);
        let message = weighted_value_and_gradient(&across_samples, &y, &p, &w)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("cosine_similarity"), "{message}");
        Ok(())
    }
}
