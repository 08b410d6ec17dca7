//! Area under the ROC curve, after `keras/src/metrics/confusion_metrics.py` (`AUC`) and
//! `keras/src/metrics/metrics_utils.py` (`_update_confusion_matrix_variables_optimized`).

use super::confusion_counts::{divide_no_nan, ConfusionCounts};
use super::Metric;
use crate::{Error, Result};
use candle_core::Tensor;
use serde_json::{json, Value};

/// The area under the ROC curve, approximated as Keras does: confusion counts at
/// `num_thresholds` evenly spaced thresholds (`-1e-7`, `1/(n-1)`, ..., `(n-2)/(n-1)`,
/// `1 + 1e-7`), the true positive rate against the false positive rate, summed as trapezoids
/// ("interpolation"). Predictions are clipped to `[0, 1]`, targets other than 0 are positives.
/// Keras defaults: 200 thresholds, logged as `auc`.
#[derive(Debug, Clone, PartialEq)]
pub struct AUC {
    name: String,
    num_thresholds: usize,
    from_logits: bool,
    counts: ConfusionCounts,
}

impl AUC {
    /// AUC with Keras's defaults.
    pub fn new() -> Self {
        Self {
            name: "auc".to_string(),
            num_thresholds: 200,
            from_logits: false,
            counts: ConfusionCounts::new(200),
        }
    }

    /// The number of thresholds (more than 1).
    pub fn num_thresholds(mut self, num_thresholds: usize) -> Self {
        self.num_thresholds = num_thresholds;
        self.counts = ConfusionCounts::new(num_thresholds);
        self
    }

    /// Whether predictions are logits (a sigmoid is applied first).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// The same metric logged as `name` (Keras's `name=` argument).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Default for AUC {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for AUC {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> Result<()> {
        if self.num_thresholds > 1 {
            return Ok(());
        }
        Err(Error::Config(format!(
            "metric {}: num_thresholds must be > 1, got {}",
            self.name, self.num_thresholds
        )))
    }

    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        self.check()?;
        let probabilities = if self.from_logits {
            (y_pred.neg()?.exp()? + 1.0)?.recip()?
        } else {
            y_pred.clone()
        };
        // Keras's bucket of a prediction p: max(ceil(p·(n-1)) - 1, 0) in f32; it is predicted
        // positive at the thresholds up to its bucket.
        let scale = (self.num_thresholds - 1) as f32;
        self.counts.add(&self.name, y_true, &probabilities, |p| {
            (p.clamp(0.0, 1.0) * scale).ceil().max(1.0) as usize
        })
    }

    /// `sum((fpr[i] - fpr[i+1])·(tpr[i] + tpr[i+1])/2)`.
    fn result(&self) -> f64 {
        let c = &self.counts;
        let rates: Vec<(f64, f64)> = (0..self.num_thresholds)
            .map(|i| {
                let tp = c.true_positives[i];
                let fp = c.false_positives[i];
                let fpr = divide_no_nan(fp, fp + c.true_negatives[i]);
                let tpr = divide_no_nan(tp, tp + c.false_negatives[i]);
                (fpr, tpr)
            })
            .collect();
        rates
            .windows(2)
            .map(|pair| (pair[0].0 - pair[1].0) * (pair[0].1 + pair[1].1) / 2.0)
            .sum()
    }

    fn reset_state(&mut self) {
        self.counts.reset();
    }

    fn config(&self) -> Option<Value> {
        Some(json!({
            "class_name": "AUC",
            "config": {
                "name": self.name,
                "num_thresholds": self.num_thresholds,
                "from_logits": self.from_logits,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_keras_docstring_example() -> Result<()> {
        // keras: AUC(num_thresholds=3) on [0, 0, 1, 1] and [0, 0.5, 0.3, 0.9]: thresholds
        // [-1e-7, 0.5, 1 + 1e-7]; tp [2, 1, 0], fp [2, 0, 0], fn [0, 1, 2], tn [0, 2, 2];
        // tpr [1, 0.5, 0], fpr [1, 0, 0]; heights [0.75, 0.25]; auc 1·0.75 + 0·0.25 = 0.75.
        let cpu = &Device::Cpu;
        let mut auc = AUC::new().num_thresholds(3);
        auc.update_state(
            &Tensor::new(&[0f32, 0., 1., 1.], cpu)?,
            &Tensor::new(&[0f32, 0.5, 0.3, 0.9], cpu)?,
        )?;
        assert_eq!(
            auc.counts.true_positives,
            [2.0, 1.0, 0.0],
            "{:?}",
            auc.counts
        );
        assert_eq!(auc.counts.false_positives, [2.0, 0.0, 0.0]);
        assert_eq!(auc.counts.false_negatives, [0.0, 1.0, 2.0]);
        assert_eq!(auc.counts.true_negatives, [0.0, 2.0, 2.0]);
        assert_eq!(auc.result(), 0.75);
        Ok(())
    }

    #[test]
    fn default_thresholds_give_the_exact_area_for_well_separated_scores() -> Result<()> {
        // Negatives score 0.1 and 0.4, positives 0.35 and 0.8; of the 4 (positive, negative)
        // pairs 3 are ordered right: AUC 0.75. 200 thresholds separate every score, so the
        // trapezoids give it exactly. Two batches, then the same with logits.
        let cpu = &Device::Cpu;
        let mut auc = AUC::new();
        auc.update_state(
            &Tensor::new(&[[0f32], [1.]], cpu)?,
            &Tensor::new(&[[0.1f32], [0.35]], cpu)?,
        )?;
        auc.update_state(
            &Tensor::new(&[[0f32], [1.]], cpu)?,
            &Tensor::new(&[[0.4f32], [0.8]], cpu)?,
        )?;
        assert!((auc.result() - 0.75).abs() < 1e-12, "{}", auc.result());
        let logit = |p: f64| (p / (1.0 - p)).ln() as f32;
        let mut from_logits = AUC::new().from_logits(true);
        from_logits.update_state(
            &Tensor::new(&[0f32, 1., 0., 1.], cpu)?,
            &Tensor::new(&[logit(0.1), logit(0.35), logit(0.4), logit(0.8)], cpu)?,
        )?;
        assert!((from_logits.result() - 0.75).abs() < 1e-12);
        auc.reset_state();
        assert_eq!(auc.result(), 0.0);
        assert_eq!(auc.name(), "auc");
        Ok(())
    }

    #[test]
    fn ties_and_clipping() -> Result<()> {
        // A positive and a negative both at 0.5 share a bucket: half a pair, AUC 0.5; scores
        // outside [0, 1] are clipped.
        let cpu = &Device::Cpu;
        let mut auc = AUC::new();
        auc.update_state(
            &Tensor::new(&[1f32, 0., 1., 0.], cpu)?,
            &Tensor::new(&[0.5f32, 0.5, 1.5, -0.5], cpu)?,
        )?;
        // pairs: (0.5, 0.5) tie 0.5, (0.5, -0.5) 1, (1.5, 0.5) 1, (1.5, -0.5) 1 → 3.5/4
        assert!((auc.result() - 0.875).abs() < 1e-12, "{}", auc.result());
        assert!(AUC::new()
            .num_thresholds(1)
            .update_state(&Tensor::new(&[1f32], cpu)?, &Tensor::new(&[1f32], cpu)?)
            .is_err());
        Ok(())
    }
}
