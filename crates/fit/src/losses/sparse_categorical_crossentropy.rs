//! Sparse categorical cross-entropy, after `keras/src/losses/losses.py`
//! (`SparseCategoricalCrossentropy`, `sparse_categorical_crossentropy`) and
//! `keras/src/backend/numpy/nn.py` (`sparse_categorical_crossentropy`).

use super::categorical_crossentropy::log_probabilities;
use super::reduction::{fused_on, require_float, require_rank_one};
use super::Loss;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use rkeras_layers::ActivationFn;
use serde_json::json;

/// `-log p[label]`, reduced over the batch, for integer class labels.
///
/// Labels may be any dtype (f32 holding whole numbers, u8, u32, i64, ...), shaped like `y_pred`
/// without its class axis, or with a trailing axis of 1. Probabilities are normalised and clipped
/// as in [`CategoricalCrossentropy`](super::CategoricalCrossentropy).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SparseCategoricalCrossentropy {
    from_logits: bool,
}

impl SparseCategoricalCrossentropy {
    /// Keras's default: probabilities.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `y_pred` holds logits rather than probabilities.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }
}

/// Checks that `labels` are whole numbers in `[0, classes)` and returns them as a u32 tensor of
/// shape `shape` on `device`.
pub(crate) fn class_indices(
    context: &str,
    labels: &Tensor,
    classes: usize,
    device: &Device,
) -> Result<Tensor> {
    let values = labels
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let indices = values
        .iter()
        .map(|&v| {
            if v.fract() == 0.0 && v >= 0.0 && v < classes as f64 {
                Ok(v as u32)
            } else {
                Err(Error::Config(format!(
                    "{context}: labels must be whole numbers in [0, {classes}), got {v}"
                )))
            }
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok(Tensor::from_vec(indices, labels.shape(), device)?)
}

/// The labels with a trailing axis of 1 dropped when they have the rank of `y_pred`, checked
/// against the shape of `y_pred` without its class axis.
pub(crate) fn squeeze_labels(context: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let labels = if y_true.rank() == y_pred.rank() && y_true.dims().last() == Some(&1) {
        y_true.squeeze(D::Minus1)?
    } else {
        y_true.clone()
    };
    let sample_shape = &y_pred.dims()[..y_pred.rank().saturating_sub(1)];
    if labels.dims() != sample_shape {
        return Err(Error::Shape {
            context: context.to_string(),
            expected: format!(
                "labels of shape {sample_shape:?} (y_pred {:?} without its last axis)",
                y_pred.dims()
            ),
            got: format!("{:?}", y_true.dims()),
        });
    }
    Ok(labels)
}

impl SparseCategoricalCrossentropy {
    /// `log p[label]` of each sample, with a trailing axis of 1 (`None` for no sample).
    fn picked(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        require_float(self.name(), y_pred)?;
        require_rank_one(self.name(), y_pred)?;
        let context = format!("loss {}", self.name());
        let labels = squeeze_labels(&context, y_true, y_pred)?;
        let classes = y_pred.dims().last().copied().unwrap_or(0);
        let indices = class_indices(&context, &labels, classes, y_pred.device())?;
        if indices.elem_count() == 0 {
            return Ok(None);
        }
        let log_p = log_probabilities(y_pred, self.from_logits)?;
        let picked = log_p.gather(&indices.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?;
        Ok(Some(picked))
    }
}

impl Loss for SparseCategoricalCrossentropy {
    fn name(&self) -> &str {
        "sparse_categorical_crossentropy"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        match self.picked(y_true, y_pred)? {
            Some(picked) => Ok((picked.sum_all()?.neg()? / picked.elem_count() as f64)?),
            None => Ok(Tensor::zeros((), y_pred.dtype(), y_pred.device())?),
        }
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        match self.picked(y_true, y_pred)? {
            Some(picked) => Ok(Some(picked.squeeze(D::Minus1)?.neg()?)),
            None => Ok(Some(y_pred.sum(D::Minus1)?.zeros_like()?)),
        }
    }

    /// From logits, on f32 CPU tensors: the fused kernel.
    fn value_and_gradient(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        if !fused_on(self.from_logits, y_pred) {
            return Ok(None);
        }
        require_rank_one(self.name(), y_pred)?;
        let context = format!("loss {}", self.name());
        let labels = squeeze_labels(&context, y_true, y_pred)?;
        let classes = y_pred.dims().last().copied().unwrap_or(0);
        let indices = class_indices(&context, &labels, classes, &Device::Cpu)?;
        if indices.elem_count() == 0 {
            return Ok(None);
        }
        let indices: Vec<u32> = indices.flatten_all()?.to_vec1()?;
        let (loss, grad) =
            rkeras_ops::sparse_softmax_cross_entropy_with_gradient(&indices, &y_pred.detach())?;
        Ok(Some((loss, grad)))
    }

    fn on_logits_of(&self, activation: ActivationFn) -> Option<Box<dyn Loss>> {
        (activation == ActivationFn::Softmax && !self.from_logits)
            .then(|| Box::new(self.from_logits(true)) as Box<dyn Loss>)
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "name": self.name(),
            "reduction": "sum_over_batch_size",
            "from_logits": self.from_logits,
            "ignore_class": null,
            "axis": -1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn matches_the_keras_docstring_example_for_every_label_dtype() -> Result<()> {
        // keras: sparse_categorical_crossentropy([1, 2], [[.05,.95,0],[.1,.8,.1]]) = [0.0513, 2.303]
        let y_pred = Tensor::new(&[[0.05f32, 0.95, 0.], [0.1, 0.8, 0.1]], &Device::Cpu)?;
        let expected = (-(0.95f64).ln() + -(0.1f64).ln()) / 2.0;
        let labels = [
            Tensor::new(&[1f32, 2.], &Device::Cpu)?,
            Tensor::new(&[1u32, 2], &Device::Cpu)?,
            Tensor::new(&[1i64, 2], &Device::Cpu)?,
            Tensor::new(&[[1u8], [2]], &Device::Cpu)?,
        ];
        for y_true in labels {
            let loss = SparseCategoricalCrossentropy::new().compute(&y_true, &y_pred)?;
            assert!(close(loss.to_scalar::<f32>()? as f64, expected, 1e-6));
        }
        Ok(())
    }

    #[test]
    fn logits_and_gradient() -> Result<()> {
        // loss = mean(lse(x) - x[label]); d/dx = (softmax(x) - onehot) / B, B = 2.
        let x = [[0f32, 1., 2.], [5., 5., 5.]];
        let labels = [2usize, 0];
        let logits = Var::from_tensor(&Tensor::new(&x, &Device::Cpu)?)?;
        let y_true = Tensor::new(&[2u32, 0], &Device::Cpu)?;
        let loss = SparseCategoricalCrossentropy::new()
            .from_logits(true)
            .compute(&y_true, logits.as_tensor())?;
        let mut expected = 0.0;
        let mut expected_grad = Vec::new();
        for (row, &label) in x.iter().zip(&labels) {
            let sum: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
            expected += (sum.ln() - row[label] as f64) / 2.0;
            for (j, &v) in row.iter().enumerate() {
                let onehot = if j == label { 1.0 } else { 0.0 };
                expected_grad.push(((v as f64).exp() / sum - onehot) / 2.0);
            }
        }
        assert!(close(loss.to_scalar::<f32>()? as f64, expected, 1e-6));
        let grads = loss.backward()?;
        let grad = grads.get(&logits).map(|g| g.flatten_all()).transpose()?;
        let grad = grad
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert_eq!(grad.len(), 6);
        for (g, e) in grad.iter().zip(&expected_grad) {
            assert!(close(*g as f64, *e, 1e-6), "{g} vs {e}");
        }
        Ok(())
    }

    #[test]
    fn bad_labels_are_errors() -> Result<()> {
        let y_pred = Tensor::new(&[[0.5f32, 0.5], [0.5, 0.5]], &Device::Cpu)?;
        let out_of_range = Tensor::new(&[0u32, 2], &Device::Cpu)?;
        let fractional = Tensor::new(&[0f32, 0.5], &Device::Cpu)?;
        let wrong_shape = Tensor::new(&[0u32, 1, 1], &Device::Cpu)?;
        let loss = SparseCategoricalCrossentropy::new();
        assert!(matches!(
            loss.compute(&out_of_range, &y_pred),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            loss.compute(&fractional, &y_pred),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            loss.compute(&wrong_shape, &y_pred),
            Err(Error::Shape { .. })
        ));
        Ok(())
    }
}
