//! Precision, recall and the confusion counts at a threshold, after
//! `keras/src/metrics/confusion_metrics.py` (`Precision`, `Recall`, and `TruePositives`,
//! `FalsePositives`, `TrueNegatives`, `FalseNegatives`: `_ConfusionMatrixConditionCount`).

use super::confusion_counts::{divide_no_nan, ConfusionCounts};
use super::Metric;
use crate::{Error, Result};
use candle_core::Tensor;
use serde_json::{json, Value};
use std::marker::PhantomData;

/// Which value of the counts a [`ThresholdMetric`] reports (a ratio, or one count), with the
/// Keras class and default name of that metric.
pub trait ConfusionRatio: Send {
    /// Keras's class name (`"Precision"`, `"TruePositives"`).
    const CLASS_NAME: &'static str;
    /// Keras's default name, the log key (`"precision"`, `"true_positives"`).
    const NAME: &'static str;
    /// The value of the counts at the threshold.
    fn ratio(counts: &Counts) -> f64;
}

/// The confusion counts at a threshold, summed over every element seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    /// Positives predicted positive.
    pub true_positives: f64,
    /// Negatives predicted positive.
    pub false_positives: f64,
    /// Negatives predicted negative.
    pub true_negatives: f64,
    /// Positives predicted negative.
    pub false_negatives: f64,
}

/// `tp / (tp + fp)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRatio;

/// `tp / (tp + fn)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecallRatio;

impl ConfusionRatio for PrecisionRatio {
    const CLASS_NAME: &'static str = "Precision";
    const NAME: &'static str = "precision";
    fn ratio(c: &Counts) -> f64 {
        divide_no_nan(c.true_positives, c.true_positives + c.false_positives)
    }
}

impl ConfusionRatio for RecallRatio {
    const CLASS_NAME: &'static str = "Recall";
    const NAME: &'static str = "recall";
    fn ratio(c: &Counts) -> f64 {
        divide_no_nan(c.true_positives, c.true_positives + c.false_negatives)
    }
}

/// A ratio of the confusion counts (or one count) over every element seen, an element predicted
/// positive when above the threshold (strictly, as Keras's
/// `metrics_utils.update_confusion_matrix_variables`) and positive when its target is not 0.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdMetric<R> {
    name: String,
    threshold: f64,
    counts: ConfusionCounts,
    ratio: PhantomData<R>,
}

/// The fraction of predicted positives that are positives (Keras defaults: threshold 0.5,
/// logged as `precision`).
pub type Precision = ThresholdMetric<PrecisionRatio>;

/// The fraction of positives predicted positive (Keras defaults: threshold 0.5, logged as
/// `recall`).
pub type Recall = ThresholdMetric<RecallRatio>;

impl<R: ConfusionRatio> ThresholdMetric<R> {
    /// The metric with Keras's defaults: threshold 0.5, logged under Keras's default name
    /// (`precision`, `recall`, `true_positives`...).
    pub fn new() -> Self {
        Self {
            name: R::NAME.to_string(),
            threshold: 0.5,
            counts: ConfusionCounts::new(1),
            ratio: PhantomData,
        }
    }

    /// The threshold in `[0, 1]` a prediction must be above to count as positive (Keras's
    /// `thresholds`, one value); another value is refused by `compile` and `update_state`.
    pub fn thresholds(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// The threshold set.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The same metric logged as `name` (Keras's `name=` argument).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl<R: ConfusionRatio> Default for ThresholdMetric<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: ConfusionRatio> Metric for ThresholdMetric<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> Result<()> {
        if (0.0..=1.0).contains(&self.threshold) {
            return Ok(());
        }
        Err(Error::Config(format!(
            "metric {}: thresholds must be in [0, 1], got {}",
            self.name, self.threshold
        )))
    }

    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        self.check()?;
        let threshold = self.threshold as f32;
        self.counts
            .add(&self.name, y_true, y_pred, |p| usize::from(p > threshold))
    }

    fn result(&self) -> f64 {
        let c = &self.counts;
        R::ratio(&Counts {
            true_positives: c.true_positives[0],
            false_positives: c.false_positives[0],
            true_negatives: c.true_negatives[0],
            false_negatives: c.false_negatives[0],
        })
    }

    fn reset_state(&mut self) {
        self.counts.reset();
    }

    fn config(&self) -> Option<Value> {
        Some(json!({
            "class_name": R::CLASS_NAME,
            "config": {"name": self.name, "thresholds": self.threshold},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn match_the_keras_docstring_examples() -> Result<()> {
        let cpu = &Device::Cpu;
        // keras: Precision()([0, 1, 1, 1], [1, 0, 1, 1]) = 2/3; Recall() of the same = 2/3.
        let y_true = Tensor::new(&[0f32, 1., 1., 1.], cpu)?;
        let y_pred = Tensor::new(&[1f32, 0., 1., 1.], cpu)?;
        let mut precision = Precision::new();
        let mut recall = Recall::new();
        precision.update_state(&y_true, &y_pred)?;
        recall.update_state(&y_true, &y_pred)?;
        assert!((precision.result() - 2.0 / 3.0).abs() < 1e-12);
        assert!((recall.result() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!((precision.name(), recall.name()), ("precision", "recall"));
        Ok(())
    }

    #[test]
    fn counts_accumulate_over_batches_and_a_prediction_must_exceed_the_threshold() -> Result<()> {
        let cpu = &Device::Cpu;
        let mut precision = Precision::new();
        let mut recall = Recall::new();
        // 0.5 is not above 0.5: batch 1 gives tp 1 (0.9), fp 1 (0.7), fn 2 (0.5, 0.2).
        let y_true = Tensor::new(&[[1f32], [0.], [1.], [1.]], cpu)?;
        let y_pred = Tensor::new(&[[0.9f32], [0.7], [0.5], [0.2]], cpu)?;
        // Batch 2: tp 1, fp 0.
        let (t2, p2) = (Tensor::new(&[[1f32]], cpu)?, Tensor::new(&[[0.6f32]], cpu)?);
        for metric in [&mut precision as &mut dyn Metric, &mut recall] {
            metric.update_state(&y_true, &y_pred)?;
            metric.update_state(&t2, &p2)?;
        }
        assert!((precision.result() - 2.0 / 3.0).abs() < 1e-12);
        assert!((recall.result() - 2.0 / 4.0).abs() < 1e-12);
        // A lower threshold: 0.5 and 0.2 are above 0.1.
        let mut low = Recall::new().thresholds(0.1);
        low.update_state(&y_true, &y_pred)?;
        assert_eq!(low.result(), 1.0);
        precision.reset_state();
        assert_eq!(precision.result(), 0.0);
        assert!(Precision::new()
            .thresholds(1.5)
            .update_state(&y_true, &y_pred)
            .is_err());
        Ok(())
    }
}
