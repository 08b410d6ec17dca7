//! The confusion counts as metrics, after `keras/src/metrics/confusion_metrics.py`
//! (`_ConfusionMatrixConditionCount`: `TruePositives`, `FalsePositives`, `TrueNegatives`,
//! `FalseNegatives`): the number of elements of each kind over the epoch (a sum, not a mean),
//! an element predicted positive when strictly above the threshold (default 0.5, as
//! `metrics_utils.update_confusion_matrix_variables` compares) and positive when its target is
//! not 0.

use super::precision_recall::{ConfusionRatio, Counts, ThresholdMetric};

/// Which count a [`ThresholdMetric`] reports: one marker type per Keras class.
macro_rules! condition_counts {
    ($($(#[$doc:meta])* $metric:ident, $marker:ident, $name:literal, $field:ident;)*) => {$(
        #[doc = concat!("The `", $name, "` count of a [`", stringify!($metric), "`].")]
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $marker;

        impl ConfusionRatio for $marker {
            const CLASS_NAME: &'static str = stringify!($metric);
            const NAME: &'static str = $name;
            fn ratio(counts: &Counts) -> f64 {
                counts.$field
            }
        }

        $(#[$doc])*
        pub type $metric = ThresholdMetric<$marker>;
    )*};
}

condition_counts! {
    /// The number of positives predicted positive (Keras defaults: threshold 0.5, logged as
    /// `true_positives`).
    TruePositives, TruePositiveCount, "true_positives", true_positives;
    /// The number of negatives predicted positive (Keras defaults: threshold 0.5, logged as
    /// `false_positives`).
    FalsePositives, FalsePositiveCount, "false_positives", false_positives;
    /// The number of negatives predicted negative (Keras defaults: threshold 0.5, logged as
    /// `true_negatives`).
    TrueNegatives, TrueNegativeCount, "true_negatives", true_negatives;
    /// The number of positives predicted negative (Keras defaults: threshold 0.5, logged as
    /// `false_negatives`).
    FalseNegatives, FalseNegativeCount, "false_negatives", false_negatives;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metric;
    use crate::Result;
    use candle_core::{Device, Tensor};

    fn counts_of(metric: &mut dyn Metric, batches: &[(&[f32], &[f32])]) -> Result<f64> {
        for (y_true, y_pred) in batches {
            let cpu = &Device::Cpu;
            metric.update_state(&Tensor::new(*y_true, cpu)?, &Tensor::new(*y_pred, cpu)?)?;
        }
        Ok(metric.result())
    }

    #[test]
    fn match_the_keras_docstring_examples() -> Result<()> {
        // keras: FalsePositives()([0, 1, 0, 0], [0, 0, 1, 1]) = 2, FalseNegatives()([0, 1, 1, 1],
        // [0, 1, 0, 0]) = 2, TrueNegatives()([0, 1, 0, 0], [1, 1, 0, 0]) = 2,
        // TruePositives()([0, 1, 1, 1], [1, 0, 1, 1]) = 2.
        let batch = |t: &'static [f32], p: &'static [f32]| [(t, p)];
        let fp = counts_of(
            &mut FalsePositives::new(),
            &batch(&[0., 1., 0., 0.], &[0., 0., 1., 1.]),
        )?;
        let fn_ = counts_of(
            &mut FalseNegatives::new(),
            &batch(&[0., 1., 1., 1.], &[0., 1., 0., 0.]),
        )?;
        let tn = counts_of(
            &mut TrueNegatives::new(),
            &batch(&[0., 1., 0., 0.], &[1., 1., 0., 0.]),
        )?;
        let tp = counts_of(
            &mut TruePositives::new(),
            &batch(&[0., 1., 1., 1.], &[1., 0., 1., 1.]),
        )?;
        assert_eq!((fp, fn_, tn, tp), (2.0, 2.0, 2.0, 2.0));
        Ok(())
    }

    #[test]
    fn counts_sum_over_batches_and_a_prediction_at_the_threshold_is_negative() -> Result<()> {
        // Batch 1, threshold 0.5:
        //   target 1, 0.9 → positive: tp        target 0, 0.7 → positive: fp
        //   target 1, 0.5 → not above 0.5: fn   target 0, 0.5 → not above: tn
        //   target 1, 0.2 → fn                  target 0, 0.1 → tn
        // Batch 2: target 1, 0.6 → tp; target 0, 0.51 → fp; target 2 (not 0: positive), 0.8 → tp.
        // Totals: tp 3, fp 2, tn 2, fn 2 (sums, not means).
        let batches: [(&[f32], &[f32]); 2] = [
            (&[1., 0., 1., 0., 1., 0.], &[0.9, 0.7, 0.5, 0.5, 0.2, 0.1]),
            (&[1., 0., 2.], &[0.6, 0.51, 0.8]),
        ];
        let mut metrics: [(Box<dyn Metric>, f64, &str); 4] = [
            (Box::new(TruePositives::new()), 3.0, "true_positives"),
            (Box::new(FalsePositives::new()), 2.0, "false_positives"),
            (Box::new(TrueNegatives::new()), 2.0, "true_negatives"),
            (Box::new(FalseNegatives::new()), 2.0, "false_negatives"),
        ];
        for (metric, expected, name) in &mut metrics {
            assert_eq!(counts_of(metric.as_mut(), &batches)?, *expected, "{name}");
            assert_eq!(metric.name(), *name);
            metric.reset_state();
            assert_eq!(metric.result(), 0.0);
        }
        // Threshold 0.2, batch 1 only: above 0.2 are 0.9, 0.7, 0.5, 0.5 (0.2 itself is not):
        // tp 2 (0.9, 0.5), fp 2 (0.7, 0.5), tn 1 (0.1), fn 1 (0.2).
        let first = &batches[..1];
        let at = 0.2;
        assert_eq!(
            counts_of(&mut TruePositives::new().thresholds(at), first)?,
            2.0
        );
        assert_eq!(
            counts_of(&mut FalsePositives::new().thresholds(at), first)?,
            2.0
        );
        assert_eq!(
            counts_of(&mut TrueNegatives::new().thresholds(at), first)?,
            1.0
        );
        assert_eq!(
            counts_of(&mut FalseNegatives::new().thresholds(at), first)?,
            1.0
        );
        Ok(())
    }

    #[test]
    fn thresholds_outside_zero_one_are_refused() {
        let cpu = &Device::Cpu;
        let y = Tensor::new(&[1f32, 0.], cpu).unwrap();
        for threshold in [-0.1, 1.5, f64::NAN] {
            let mut tp = TruePositives::new().thresholds(threshold).with_name("tp");
            let message = tp.check().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains("tp: thresholds must be in [0, 1]"),
                "{message}"
            );
            assert!(tp.update_state(&y, &y).is_err());
        }
        for threshold in [0.0, 1.0] {
            assert!(FalseNegatives::new().thresholds(threshold).check().is_ok());
        }
    }
}
