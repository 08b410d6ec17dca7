//! Top-k accuracies, after `keras/src/metrics/accuracy_metrics.py`
//! (`TopKCategoricalAccuracy`, `top_k_categorical_accuracy`, `SparseTopKCategoricalAccuracy`,
//! `sparse_top_k_categorical_accuracy`) with TensorFlow's `in_top_k`.

use super::mean_metric_wrapper::{SampleMean, SampleValues};
use crate::losses::sparse_categorical_crossentropy::{class_indices, squeeze_labels};
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};

/// Whether each sample's target class is among the `k` highest scores, as TensorFlow's
/// `in_top_k` decides: when fewer than `k` classes score strictly higher than the target (so
/// classes tied at the boundary all count as in the top `k`). `labels` are class indices of the
/// shape of `scores` without its last axis; the result has that shape too.
fn in_top_k(metric: &str, labels: &Tensor, scores: &Tensor, k: usize) -> Result<Tensor> {
    if scores.rank() == 0 || scores.dims().last() == Some(&0) {
        return Err(Error::Shape {
            context: format!("metric {metric}"),
            expected: "y_pred of rank 1 or more with at least one class".into(),
            got: format!("{:?}", scores.dims()),
        });
    }
    let classes = scores.dim(D::Minus1)?;
    let indices = class_indices(
        &format!("metric {metric}"),
        labels,
        classes,
        scores.device(),
    )?;
    let target = scores
        .contiguous()?
        .gather(&indices.unsqueeze(D::Minus1)?, D::Minus1)?;
    let higher = scores
        .broadcast_gt(&target)?
        .to_dtype(DType::F32)?
        .sum(D::Minus1)?;
    Ok(higher.lt(k as f64)?.to_dtype(DType::F32)?)
}

/// The options of [`TopKCategoricalAccuracy`]: `k`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopK {
    k: usize,
}

/// The options of [`SparseTopKCategoricalAccuracy`]: `k`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseTopK {
    k: usize,
}

/// How often the one-hot target's class is among the `k` highest predictions (Keras defaults:
/// `k = 5`, logged as `top_k_categorical_accuracy`).
pub type TopKCategoricalAccuracy = SampleMean<TopK>;

/// How often the integer label is among the `k` highest predictions (Keras defaults: `k = 5`,
/// logged as `sparse_top_k_categorical_accuracy`).
pub type SparseTopKCategoricalAccuracy = SampleMean<SparseTopK>;

impl TopKCategoricalAccuracy {
    /// The metric with Keras's defaults.
    pub fn new() -> Self {
        Self::with_values("top_k_categorical_accuracy", TopK { k: 5 })
    }

    /// The number of top predictions the target must be among.
    pub fn k(mut self, k: usize) -> Self {
        self.values.k = k;
        self
    }
}

impl Default for TopKCategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}

impl SparseTopKCategoricalAccuracy {
    /// The metric with Keras's defaults.
    pub fn new() -> Self {
        Self::with_values("sparse_top_k_categorical_accuracy", SparseTopK { k: 5 })
    }

    /// The number of top predictions the label must be among.
    pub fn k(mut self, k: usize) -> Self {
        self.values.k = k;
        self
    }
}

impl Default for SparseTopKCategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}

impl SampleValues for TopK {
    /// The target class is the argmax of the one-hot `y_true`.
    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        if y_true.dims() != y_pred.dims() || y_pred.rank() == 0 {
            return Err(Error::Shape {
                context: "metric top_k_categorical_accuracy".into(),
                expected: format!("one-hot targets of the shape of y_pred {:?}", y_pred.dims()),
                got: format!("{:?}", y_true.dims()),
            });
        }
        let labels = y_true.argmax(D::Minus1)?;
        in_top_k("top_k_categorical_accuracy", &labels, y_pred, self.k)
    }
}

impl SampleValues for SparseTopK {
    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let metric = "sparse_top_k_categorical_accuracy";
        let labels = squeeze_labels(&format!("metric {metric}"), y_true, y_pred)?;
        in_top_k(metric, &labels, y_pred, self.k)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metric;
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_keras_docstring_examples() -> Result<()> {
        let cpu = &Device::Cpu;
        // keras: TopKCategoricalAccuracy(k=1) on [[0, 0, 1], [0, 1, 0]] and
        // [[0.1, 0.9, 0.8], [0.05, 0.95, 0]] gives 0.5.
        let scores = Tensor::new(&[[0.1f32, 0.9, 0.8], [0.05, 0.95, 0.]], cpu)?;
        let onehot = Tensor::new(&[[0f32, 0., 1.], [0., 1., 0.]], cpu)?;
        let mut top_1 = TopKCategoricalAccuracy::new().k(1);
        top_1.update_state(&onehot, &scores)?;
        assert_eq!(
            (top_1.name(), top_1.result()),
            ("top_k_categorical_accuracy", 0.5)
        );
        // k = 2: both targets are among the two highest.
        let mut top_2 = TopKCategoricalAccuracy::new().k(2);
        top_2.update_state(&onehot, &scores)?;
        assert_eq!(top_2.result(), 1.0);
        // keras: SparseTopKCategoricalAccuracy(k=1) on [2, 1] and the same scores gives 0.5.
        let mut sparse = SparseTopKCategoricalAccuracy::new().k(1);
        sparse.update_state(&Tensor::new(&[2u32, 1], cpu)?, &scores)?;
        assert_eq!(sparse.result(), 0.5);
        assert_eq!(sparse.name(), "sparse_top_k_categorical_accuracy");
        Ok(())
    }

    #[test]
    fn ties_at_the_boundary_count_as_in_the_top_k() -> Result<()> {
        let cpu = &Device::Cpu;
        // Six classes, label 5 scores 0.1; classes 0-3 score 0.3, 0.2, 0.1, 0.1 and class 4
        // 0.2: three classes score higher (0.3, 0.2, 0.2) < 5, so the label is in the top 5
        // although a tied class would be left out of a strict top 5. With k = 3 it is not.
        let scores = Tensor::new(&[[0.3f32, 0.2, 0.1, 0.1, 0.2, 0.1]], cpu)?;
        let labels = Tensor::new(&[[5i64]], cpu)?;
        let mut top_5 = SparseTopKCategoricalAccuracy::new();
        top_5.update_state(&labels, &scores)?;
        assert_eq!(top_5.result(), 1.0);
        let mut top_3 = SparseTopKCategoricalAccuracy::new().k(3);
        top_3.update_state(&labels, &scores)?;
        assert_eq!(top_3.result(), 0.0);
        // Labels out of range are errors.
        let mut bad = SparseTopKCategoricalAccuracy::new();
        assert!(bad
            .update_state(&Tensor::new(&[6u32], cpu)?, &scores)
            .is_err());
        Ok(())
    }

    #[test]
    fn sequences_average_per_sample() -> Result<()> {
        let cpu = &Device::Cpu;
        // Batch of 1, 2 time steps of 3 classes: step 0 right, step 1 wrong with k = 1.
        let scores = Tensor::new(&[[[0.7f32, 0.2, 0.1], [0.1, 0.2, 0.7]]], cpu)?;
        let labels = Tensor::new(&[[0u32, 1]], cpu)?;
        let mut metric = SparseTopKCategoricalAccuracy::new().k(1);
        metric.update_state(&labels, &scores)?;
        assert_eq!(metric.result(), 0.5);
        Ok(())
    }
}
