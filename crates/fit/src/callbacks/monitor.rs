//! Watching one logged quantity and deciding whether a new value improves on a reference.
//!
//! Follows Keras 3's `keras/src/callbacks/monitor_callback.py` (`MonitorCallback`), shared
//! by `EarlyStopping`, `ModelCheckpoint` and `ReduceLROnPlateau`.

use super::TrainingControl;
use crate::{Error, Result};

/// How a callback decides which way its monitored quantity should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Infer the direction from the monitored name: `loss` and `val_loss` go down, a metric
    /// goes the way [`TrainingControl::metric_direction`] says; anything else is an error.
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// Which way a quantity improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Lower is better (losses, errors).
    Down,
    /// Higher is better (accuracies, AUC, precision, ...).
    Up,
}

/// The direction Keras 3's built-in metric classes declare (their `_direction`), by the
/// names they log under, including the string identifiers `compile(metrics=[...])` accepts.
/// `None` for a name Keras cannot classify.
pub fn keras_metric_direction(metric: &str) -> Option<Direction> {
    const UP: &[&str] = &[
        "accuracy",
        "acc",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
        "auc",
        "precision",
        "recall",
        "precision_at_recall",
        "recall_at_precision",
        "sensitivity_at_specificity",
        "specificity_at_sensitivity",
        "f1_score",
        "fbeta_score",
        "iou",
        "binary_iou",
        "mean_iou",
        "one_hot_iou",
        "one_hot_mean_iou",
        "pearson_correlation",
        "concordance_correlation",
        "cosine_similarity",
        "r2_score",
    ];
    const DOWN: &[&str] = &[
        "mean_squared_error",
        "mse",
        "mean_absolute_error",
        "mae",
        "mean_absolute_percentage_error",
        "mape",
        "mean_squared_logarithmic_error",
        "msle",
        "root_mean_squared_error",
        "logcosh",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "kl_divergence",
        "poisson",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
    ];
    if UP.contains(&metric) {
        Some(Direction::Up)
    } else if DOWN.contains(&metric) {
        Some(Direction::Down)
    } else {
        None
    }
}

/// A monitored log key with its mode and minimum significant change.
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    /// The log key watched.
    pub key: String,
    /// How the direction is chosen.
    pub mode: Mode,
    /// The smallest change that counts; only its absolute value matters, as in Keras.
    pub min_delta: f64,
}

impl Monitor {
    /// Watches `key`.
    pub(crate) fn new(key: impl Into<String>, mode: Mode, min_delta: f64) -> Self {
        Self {
            key: key.into(),
            mode,
            min_delta,
        }
    }

    /// Resolves the mode to a direction (Keras's `_set_monitor_op`): `Auto` strips one `val_`
    /// prefix, sends `loss` down, and otherwise asks the training loop about the metric.
    pub(crate) fn direction(&self, callback: &str, ctl: &dyn TrainingControl) -> Result<Direction> {
        match self.mode {
            Mode::Min => Ok(Direction::Down),
            Mode::Max => Ok(Direction::Up),
            Mode::Auto => {
                let metric = self.key.strip_prefix("val_").unwrap_or(&self.key);
                if metric == "loss" {
                    return Ok(Direction::Down);
                }
                ctl.metric_direction(metric).ok_or_else(|| {
                    Error::Config(format!(
                        "{callback} callback received monitor={:?}, but cannot determine \
                         whether that metric should be maximized or minimized; use \
                         Mode::Max to monitor the highest value or Mode::Min for the lowest",
                        self.key
                    ))
                })
            }
        }
    }

    /// Whether `current` improves on `reference` by more than `min_delta` (Keras's
    /// `_is_improvement`); anything improves on no reference. As in Keras, the shifted value
    /// and the reference are compared as float32, since `ops.less`/`ops.greater` turn Python
    /// floats into float32 tensors. A NaN never improves.
    pub(crate) fn is_improvement(
        &self,
        direction: Direction,
        current: f64,
        reference: Option<f64>,
    ) -> bool {
        let Some(reference) = reference else {
            return true;
        };
        let min_delta = self.min_delta.abs();
        // Narrowing to float32 is the point: it reproduces Keras's comparison.
        match direction {
            Direction::Down => ((current + min_delta) as f32) < reference as f32,
            Direction::Up => ((current - min_delta) as f32) > reference as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::test_support::FakeControl;

    #[test]
    fn auto_mode_minimises_losses_and_asks_about_metrics() {
        let ctl = FakeControl::new(0.1);
        let direction = |key: &str| Monitor::new(key, Mode::Auto, 0.0).direction("Test", &ctl);
        assert_eq!(direction("loss").unwrap(), Direction::Down);
        assert_eq!(direction("val_loss").unwrap(), Direction::Down);
        assert_eq!(direction("val_accuracy").unwrap(), Direction::Up);
        assert_eq!(direction("mae").unwrap(), Direction::Down);
        // Only one `val_` prefix is stripped, as Python's `removeprefix`.
        assert!(direction("val_val_loss").is_err());
        let err = direction("reconstruction_loss").unwrap_err().to_string();
        assert!(err.contains("reconstruction_loss"), "{err}");
        assert!(err.contains("Mode::Max"), "{err}");
    }

    #[test]
    fn explicit_modes_override_the_name() {
        let ctl = FakeControl::new(0.1);
        let max = Monitor::new("val_loss", Mode::Max, 0.0);
        assert_eq!(max.direction("Test", &ctl).unwrap(), Direction::Up);
        let min = Monitor::new("val_accuracy", Mode::Min, 0.0);
        assert_eq!(min.direction("Test", &ctl).unwrap(), Direction::Down);
    }

    #[test]
    fn improvement_needs_more_than_min_delta_in_the_right_direction() {
        // Keras: min mode improves when current + |min_delta| < reference.
        let down = Monitor::new("loss", Mode::Min, -0.25);
        assert!(down.is_improvement(Direction::Down, 5.0, None));
        assert!(down.is_improvement(Direction::Down, 0.5, Some(1.0)));
        assert!(!down.is_improvement(Direction::Down, 0.75, Some(1.0)));
        assert!(!down.is_improvement(Direction::Down, 1.5, Some(1.0)));
        // Max mode improves when current - |min_delta| > reference.
        let up = Monitor::new("acc", Mode::Max, 0.25);
        assert!(up.is_improvement(Direction::Up, 1.5, Some(1.0)));
        assert!(!up.is_improvement(Direction::Up, 1.25, Some(1.0)));
        assert!(!up.is_improvement(Direction::Up, f64::NAN, Some(1.0)));
    }

    #[test]
    fn comparison_happens_in_float32_as_keras_does() {
        // 0.5 + 1e-4 = 0.5001 in float64 is below the float32 value closest to 0.5001
        // (0.500100016...), but both round to that same float32, so Keras sees no improvement.
        let reference = f64::from(0.5001_f32);
        let monitor = Monitor::new("loss", Mode::Min, 1e-4);
        assert!(0.5 + 1e-4 < reference);
        assert!(!monitor.is_improvement(Direction::Down, 0.5, Some(reference)));
    }
}
