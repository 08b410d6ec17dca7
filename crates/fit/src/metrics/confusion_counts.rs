//! The counts confusion metrics accumulate, after `keras/src/metrics/metrics_utils.py`
//! (`update_confusion_matrix_variables` and its evenly-distributed-thresholds path
//! `_update_confusion_matrix_variables_optimized`).

use crate::losses::reduction::align_targets;
use crate::Result;
use candle_core::{DType, Device, Tensor};

/// True/false positives/negatives at each of a list of thresholds: an element is predicted
/// positive at a threshold when its prediction is above it, and is a positive when its target is
/// not 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConfusionCounts {
    pub(crate) true_positives: Vec<f64>,
    pub(crate) false_positives: Vec<f64>,
    pub(crate) true_negatives: Vec<f64>,
    pub(crate) false_negatives: Vec<f64>,
}

impl ConfusionCounts {
    /// Zero counts at `thresholds` thresholds.
    pub(crate) fn new(thresholds: usize) -> Self {
        Self {
            true_positives: vec![0.0; thresholds],
            false_positives: vec![0.0; thresholds],
            true_negatives: vec![0.0; thresholds],
            false_negatives: vec![0.0; thresholds],
        }
    }

    /// Forgets every count.
    pub(crate) fn reset(&mut self) {
        *self = Self::new(self.true_positives.len());
    }

    /// Adds a batch whose elements are predicted positive at the thresholds below
    /// `positive_up_to(prediction)` (an index: positive at thresholds `0..index`), for thresholds
    /// in increasing order.
    pub(crate) fn add(
        &mut self,
        metric: &str,
        y_true: &Tensor,
        y_pred: &Tensor,
        positive_up_to: impl Fn(f32) -> usize,
    ) -> Result<()> {
        let (targets, predictions) = host_pairs(metric, y_true, y_pred)?;
        let count = self.true_positives.len();
        // How many positives and negatives are predicted positive up to each index.
        let mut positives = vec![0.0; count + 1];
        let mut negatives = vec![0.0; count + 1];
        for (target, prediction) in targets.iter().zip(&predictions) {
            let index = positive_up_to(*prediction).min(count);
            if *target != 0.0 {
                positives[index] += 1.0;
            } else {
                negatives[index] += 1.0;
            }
        }
        let (total_positives, total_negatives): (f64, f64) =
            (positives.iter().sum(), negatives.iter().sum());
        let (mut tp, mut fp) = (0.0, 0.0);
        for i in (0..count).rev() {
            tp += positives[i + 1];
            fp += negatives[i + 1];
            self.true_positives[i] += tp;
            self.false_positives[i] += fp;
            self.false_negatives[i] += total_positives - tp;
            self.true_negatives[i] += total_negatives - fp;
        }
        Ok(())
    }
}

/// The targets and predictions of a batch as host vectors, lined up as Keras's
/// `squeeze_or_expand_to_same_rank` does.
fn host_pairs(metric: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
    let y_pred = y_pred.to_dtype(DType::F32)?;
    let (t, p) = align_targets(&format!("metric {metric}"), y_true, &y_pred)?;
    let host = |x: Tensor| -> Result<Vec<f32>> {
        Ok(x.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?)
    };
    Ok((host(t)?, host(p)?))
}

/// The quotient, or 0 when the divisor is 0 (Keras's `divide_no_nan`).
pub(crate) fn divide_no_nan(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        0.0
    } else {
        numerator / denominator
    }
}
