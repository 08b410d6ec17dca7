//! What every loss shares: aligning `y_true` with `y_pred`, and Keras's "sum_over_batch_size"
//! reduction (`keras/src/losses/loss.py`: `squeeze_or_expand_to_same_rank`, `reduce_values`).

use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// Casts `y_true` to the dtype of `y_pred` and lines their shapes up as Keras's
/// `squeeze_or_expand_to_same_rank` does: when the ranks differ by one and the longer shape ends
/// in 1, a rank-1 tensor gains that trailing 1 and any other loses it. The shapes must then be
/// equal (Keras would broadcast; rkeras refuses, since a broadcast target is almost always a bug).
pub(crate) fn align_targets(
    loss: &str,
    y_true: &Tensor,
    y_pred: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let y_true = y_true.to_dtype(y_pred.dtype())?;
    let (t_rank, p_rank) = (y_true.rank(), y_pred.rank());
    let (y_true, y_pred) = if t_rank == p_rank + 1 && y_true.dims().last() == Some(&1) {
        if p_rank == 1 {
            (y_true, y_pred.unsqueeze(1)?)
        } else {
            (y_true.squeeze(t_rank - 1)?, y_pred.clone())
        }
    } else if p_rank == t_rank + 1 && y_pred.dims().last() == Some(&1) {
        if t_rank == 1 {
            (y_true.unsqueeze(1)?, y_pred.clone())
        } else {
            let squeezed = y_pred.squeeze(p_rank - 1)?;
            (y_true, squeezed)
        }
    } else {
        (y_true, y_pred.clone())
    };
    if y_true.dims() != y_pred.dims() {
        return Err(Error::Shape {
            context: format!("loss {loss}"),
            expected: format!("y_true of the shape of y_pred {:?}", y_pred.dims()),
            got: format!("y_true of shape {:?}", y_true.dims()),
        });
    }
    require_rank_one(loss, &y_pred)?;
    Ok((y_true, y_pred))
}

/// Refuses scalars: every Keras loss reduces over the last axis.
pub(crate) fn require_rank_one(loss: &str, y_pred: &Tensor) -> Result<()> {
    if y_pred.rank() == 0 {
        return Err(Error::Shape {
            context: format!("loss {loss}"),
            expected: "y_pred of rank 1 or more (the last axis holds the values of one sample)"
                .into(),
            got: "a scalar".into(),
        });
    }
    Ok(())
}

/// Keras's "sum_over_batch_size" reduction of per-sample values: their sum divided by their
/// number. An empty batch gives 0, as Keras's `divide_no_nan` does.
pub(crate) fn sum_over_batch_size(per_sample: &Tensor) -> Result<Tensor> {
    if per_sample.elem_count() == 0 {
        return Ok(Tensor::zeros((), per_sample.dtype(), per_sample.device())?);
    }
    Ok(per_sample.mean_all()?)
}

/// `mean(values, axis=-1)` followed by "sum_over_batch_size". Every per-sample mean has the same
/// count, so this is the mean of all values (0 for none).
pub(crate) fn mean_over_last_axis_then_batch(values: &Tensor) -> Result<Tensor> {
    sum_over_batch_size(values)
}

/// `mean(values, axis=-1)`: one value per sample (per sample and timestep beyond rank 2).
pub(crate) fn mean_over_last_axis(values: &Tensor) -> Result<Option<Tensor>> {
    Ok(Some(values.mean(candle_core::D::Minus1)?))
}

/// `sum(values, axis=-1)`: one value per sample (per sample and timestep beyond rank 2).
pub(crate) fn sum_over_last_axis(values: &Tensor) -> Result<Option<Tensor>> {
    Ok(Some(values.sum(candle_core::D::Minus1)?))
}

/// `sum(values, axis=-1)` followed by "sum_over_batch_size": the sum of all values divided by the
/// number of per-sample values (all dimensions but the last). An empty batch gives 0.
pub(crate) fn sum_over_last_axis_then_batch(values: &Tensor) -> Result<Tensor> {
    let last = values.dims().last().copied().unwrap_or(1);
    if values.elem_count() == 0 || last == 0 {
        return Ok(Tensor::zeros((), values.dtype(), values.device())?);
    }
    let samples = values.elem_count() / last;
    Ok((values.sum_all()? / samples as f64)?)
}

/// Refuses a label smoothing outside `[0, 1]`.
pub(crate) fn check_label_smoothing(loss: &str, smoothing: f64) -> Result<()> {
    if (0.0..=1.0).contains(&smoothing) {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{loss}: label_smoothing must be in [0, 1], got {smoothing}"
    )))
}

/// Refuses integer predictions, which cannot carry a gradient.
pub(crate) fn require_float(loss: &str, y_pred: &Tensor) -> Result<()> {
    match y_pred.dtype() {
        DType::F16 | DType::BF16 | DType::F32 | DType::F64 => Ok(()),
        other => Err(Error::Config(format!(
            "loss {loss}: y_pred must be a floating-point tensor, got {other:?}"
        ))),
    }
}

/// Whether a loss taking logits runs its fused kernel on `y_pred`: f32, where kernels run.
pub(crate) fn fused_on(from_logits: bool, y_pred: &Tensor) -> bool {
    from_logits && y_pred.dtype() == DType::F32 && rkeras_ops::kernels_on(y_pred.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_rank_one_target_gains_the_trailing_one_of_the_predictions() -> Result<()> {
        let y_true = Tensor::new(&[1u32, 0], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.5f32], [0.25]], &Device::Cpu)?;
        let (t, p) = align_targets("x", &y_true, &y_pred)?;
        assert_eq!(t.dims(), &[2, 1]);
        assert_eq!(t.dtype(), DType::F32);
        assert_eq!(p.dims(), &[2, 1]);
        Ok(())
    }

    #[test]
    fn a_trailing_one_is_squeezed_from_higher_ranks() -> Result<()> {
        let y_true = Tensor::zeros((2, 3, 1), DType::F32, &Device::Cpu)?;
        let y_pred = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let (t, p) = align_targets("x", &y_true, &y_pred)?;
        assert_eq!((t.dims(), p.dims()), (&[2usize, 3][..], &[2usize, 3][..]));
        Ok(())
    }

    #[test]
    fn other_mismatches_name_the_loss_and_both_shapes() -> Result<()> {
        let y_true = Tensor::zeros((2, 4), DType::F32, &Device::Cpu)?;
        let y_pred = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let message = align_targets("mean_squared_error", &y_true, &y_pred)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("mean_squared_error"), "{message}");
        assert!(
            message.contains("[2, 3]") && message.contains("[2, 4]"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn sum_reduction_divides_by_the_number_of_samples() -> Result<()> {
        // 2 samples of 3 values: (1+2+3 + 4+5+6) / 2 = 10.5
        let values = Tensor::new(&[[1f32, 2., 3.], [4., 5., 6.]], &Device::Cpu)?;
        assert_eq!(
            sum_over_last_axis_then_batch(&values)?.to_scalar::<f32>()?,
            10.5
        );
        // mean of the per-sample means: (2 + 5) / 2 = 3.5
        assert_eq!(
            mean_over_last_axis_then_batch(&values)?.to_scalar::<f32>()?,
            3.5
        );
        let empty = Tensor::zeros((0, 3), DType::F32, &Device::Cpu)?;
        assert_eq!(
            sum_over_last_axis_then_batch(&empty)?.to_scalar::<f32>()?,
            0.0
        );
        assert_eq!(
            mean_over_last_axis_then_batch(&empty)?.to_scalar::<f32>()?,
            0.0
        );
        Ok(())
    }
}
