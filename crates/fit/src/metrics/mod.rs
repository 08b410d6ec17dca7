//! Metrics, as Keras 3 defines them (`keras/src/metrics/`): running averages over an epoch.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use rkeras_fit::metrics::{self, Metric};
//!
//! let mut accuracy = metrics::get("accuracy", "sparse_categorical_crossentropy", &[10])?;
//! let labels = Tensor::new(&[2u32, 0], &Device::Cpu)?;
//! let scores = Tensor::new(&[[0f32, 0., 1., 0., 0., 0., 0., 0., 0., 0.],
//!                            [0., 1., 0., 0., 0., 0., 0., 0., 0., 0.]], &Device::Cpu)?;
//! accuracy.update_state(&labels, &scores)?;
//! assert_eq!(accuracy.result(), 0.5);
//! # Ok::<(), rkeras_fit::Error>(())
//! ```

mod auc;
mod condition_counts;
mod confusion_counts;
mod loss_metric;
mod mean;
mod mean_metric_wrapper;
mod precision_recall;
mod root_mean_squared_error;
pub mod sample_values;
mod top_k_accuracy;

pub use auc::AUC;
pub use condition_counts::{
    FalseNegativeCount, FalseNegatives, FalsePositiveCount, FalsePositives, TrueNegativeCount,
    TrueNegatives, TruePositiveCount, TruePositives,
};
pub use loss_metric::{LossMetric, LossValues};
pub use mean::Mean;
pub use mean_metric_wrapper::{MeanMetricWrapper, SampleMean, SampleValues};
pub use precision_recall::{
    ConfusionRatio, Counts, Precision, PrecisionRatio, Recall, RecallRatio, ThresholdMetric,
};
pub use root_mean_squared_error::RootMeanSquaredError;
pub use top_k_accuracy::{
    SparseTopK, SparseTopKCategoricalAccuracy, TopK, TopKCategoricalAccuracy,
};

use crate::losses::identifier::snake_case_identifier;
use crate::losses::{self, CosineSimilarity};
use crate::{Error, Result};
use candle_core::Tensor;
use serde_json::Value;

/// A metric accumulated over batches and reported in the logs.
pub trait Metric: Send {
    /// The log key, e.g. "accuracy", "mae".
    fn name(&self) -> &str;
    /// Accumulates one batch; batches weigh by their number of samples.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()>;
    /// The value over everything accumulated since the last reset (0 before any update).
    fn result(&self) -> f64;
    /// Forgets everything accumulated.
    fn reset_state(&mut self);
    /// Refuses options the metric cannot run with (checked by `compile`); fine by default.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Keras's `{"class_name": ..., "config": {...}}`, which a saved model's compile config
    /// keeps and loading rebuilds; `None` (the default): saved by its name alone, which loading
    /// resolves with [`get`] (so options other than the defaults are not restored).
    fn config(&self) -> Option<Value> {
        None
    }
}

/// The identifiers [`get`] accepts, aliases included; Keras's class names (`"AUC"`,
/// `"TopKCategoricalAccuracy"`) and the upper-case aliases (`"MSE"`) are accepted too, as
/// their snake-case forms (`keras/src/metrics/__init__.py`).
pub const KNOWN_METRICS: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mae",
    "mean_absolute_error",
    "mse",
    "mean_squared_error",
    "root_mean_squared_error",
    "mape",
    "mean_absolute_percentage_error",
    "msle",
    "mean_squared_logarithmic_error",
    "log_cosh_error",
    "cosine_similarity",
    "bce",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "kl_divergence",
    "poisson",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "precision",
    "recall",
    "auc",
    "true_positives",
    "false_positives",
    "true_negatives",
    "false_negatives",
];

/// Whether [`get`] knows `name`.
pub fn is_known(name: &str) -> bool {
    KNOWN_METRICS.contains(&snake_case_identifier(name).as_str())
}

/// The metric Keras's `compile(metrics=[name])` builds, logged under `name` as given, with its
/// default options (`top_k_categorical_accuracy` with k = 5, `precision` at 0.5, `auc` with 200
/// thresholds...). A loss's name gives the mean of that loss over samples, as Keras's metric
/// classes of the same names do; `cosine_similarity` is the cosine (the loss is minus it).
///
/// "accuracy"/"acc" picks the kind as `keras/src/trainers/compile_utils.py` (`get_metric`) does
/// from the shapes of the targets and predictions; the targets' shape is not known before the
/// first batch, so the loss stands in for it: a model output whose last dimension (of
/// `output_shape`, with or without the batch dimension) is 1 gives binary accuracy, a sparse loss
/// (integer labels) gives sparse categorical accuracy, anything else categorical accuracy.
pub fn get(name: &str, loss_name: &str, output_shape: &[usize]) -> Result<Box<dyn Metric>> {
    use sample_values::*;
    let identifier = snake_case_identifier(name);
    let loss_metric = |loss: &str| -> Result<Box<dyn Metric>> {
        Ok(Box::new(LossMetric::new(name, losses::get(loss)?)))
    };
    let values: SampleValuesFn = match identifier.as_str() {
        "accuracy" | "acc" => match output_shape.last() {
            None => {
                return Err(Error::Config(format!(
                    "metric {name:?}: the model output shape must have at least one dimension"
                )))
            }
            Some(1) => binary_accuracy,
            Some(_) if loss_name == "sparse_categorical_crossentropy" => {
                sparse_categorical_accuracy
            }
            Some(_) => categorical_accuracy,
        },
        "binary_accuracy" => binary_accuracy,
        "categorical_accuracy" => categorical_accuracy,
        "sparse_categorical_accuracy" => sparse_categorical_accuracy,
        "mae" | "mean_absolute_error" => mean_absolute_error,
        "mse" | "mean_squared_error" => mean_squared_error,
        "top_k_categorical_accuracy" => {
            return Ok(Box::new(TopKCategoricalAccuracy::new().with_name(name)))
        }
        "sparse_top_k_categorical_accuracy" => {
            return Ok(Box::new(
                SparseTopKCategoricalAccuracy::new().with_name(name),
            ))
        }
        "root_mean_squared_error" => {
            return Ok(Box::new(RootMeanSquaredError::new().with_name(name)))
        }
        "precision" => return Ok(Box::new(Precision::new().with_name(name))),
        "true_positives" => return Ok(Box::new(TruePositives::new().with_name(name))),
        "false_positives" => return Ok(Box::new(FalsePositives::new().with_name(name))),
        "true_negatives" => return Ok(Box::new(TrueNegatives::new().with_name(name))),
        "false_negatives" => return Ok(Box::new(FalseNegatives::new().with_name(name))),
        "recall" => return Ok(Box::new(Recall::new().with_name(name))),
        "auc" => return Ok(Box::new(AUC::new().with_name(name))),
        "cosine_similarity" => {
            let cosine = LossMetric::new(name, Box::new(CosineSimilarity::new()));
            return Ok(Box::new(cosine.negated()));
        }
        "log_cosh_error" => return loss_metric("log_cosh"),
        loss @ ("mape"
        | "mean_absolute_percentage_error"
        | "msle"
        | "mean_squared_logarithmic_error"
        | "bce"
        | "binary_crossentropy"
        | "categorical_crossentropy"
        | "sparse_categorical_crossentropy"
        | "kl_divergence"
        | "poisson"
        | "hinge"
        | "squared_hinge"
        | "categorical_hinge") => return loss_metric(loss),
        _ => {
            return Err(Error::Config(format!(
                "unknown metric {name:?}; expected one of: {}",
                KNOWN_METRICS.join(", ")
            )))
        }
    };
    Ok(Box::new(MeanMetricWrapper::new(name, values)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn accuracy_after(metric: &mut dyn Metric, y_true: &Tensor, y_pred: &Tensor) -> Result<f64> {
        metric.update_state(y_true, y_pred)?;
        Ok(metric.result())
    }

    #[test]
    fn accuracy_picks_its_kind_like_keras() -> Result<()> {
        let cpu = &Device::Cpu;
        // One output unit: binary. 0.6 > 0.5 → 1 (right), 0.4 → 0 (wrong).
        let mut binary = get("accuracy", "binary_crossentropy", &[1])?;
        let acc = accuracy_after(
            binary.as_mut(),
            &Tensor::new(&[[1f32], [1.]], cpu)?,
            &Tensor::new(&[[0.6f32], [0.4]], cpu)?,
        )?;
        assert_eq!((binary.name(), acc), ("accuracy", 0.5));
        // Sparse loss: integer labels against argmax.
        let mut sparse = get("acc", "sparse_categorical_crossentropy", &[3])?;
        let scores = Tensor::new(&[[0.1f32, 0.7, 0.2], [0.5, 0.4, 0.1]], cpu)?;
        let acc = accuracy_after(sparse.as_mut(), &Tensor::new(&[1u32, 1], cpu)?, &scores)?;
        assert_eq!((sparse.name(), acc), ("acc", 0.5));
        // Otherwise categorical: one-hot targets against argmax (also Keras's pick for a
        // 784-wide autoencoder compiled with binary cross-entropy).
        let mut categorical = get("accuracy", "categorical_crossentropy", &[3])?;
        let onehot = Tensor::new(&[[0f32, 1., 0.], [1., 0., 0.]], cpu)?;
        assert_eq!(accuracy_after(categorical.as_mut(), &onehot, &scores)?, 1.0);
        assert!(get("accuracy", "mse", &[]).is_err());
        Ok(())
    }

    #[test]
    fn two_batches_of_different_sizes() -> Result<()> {
        let cpu = &Device::Cpu;
        let mut mse = get("mse", "mse", &[2])?;
        // batch 1 (1 sample): (1 + 4)/2 = 2.5; batch 2 (3 samples): 0, 1, 0.25
        mse.update_state(
            &Tensor::new(&[[0f32, 0.]], cpu)?,
            &Tensor::new(&[[1f32, 2.]], cpu)?,
        )?;
        mse.update_state(
            &Tensor::new(&[[0f32, 0.], [1., 1.], [0., 0.]], cpu)?,
            &Tensor::new(&[[0f32, 0.], [2., 0.], [0.5, 0.5]], cpu)?,
        )?;
        assert_eq!(mse.result(), (2.5 + 0.0 + 1.0 + 0.25) / 4.0);
        assert_eq!(mse.name(), "mse");
        Ok(())
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let message = get("iou", "mse", &[1])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("sparse_categorical_accuracy"), "{message}");
    }

    #[test]
    fn every_known_name_and_class_name_gives_a_metric_logged_as_given() -> Result<()> {
        for name in KNOWN_METRICS.iter().chain(&[
            "AUC",
            "TopKCategoricalAccuracy",
            "RootMeanSquaredError",
            "MSE",
            "LogCoshError",
            "BinaryCrossentropy",
            "Precision",
            "TruePositives",
            "FalseNegatives",
        ]) {
            let metric = get(name, "categorical_crossentropy", &[4, 3])?;
            assert_eq!(metric.name(), *name);
            assert!(is_known(name), "{name}");
        }
        assert!(!is_known("huber"));
        Ok(())
    }

    #[test]
    fn loss_names_give_the_mean_of_the_loss() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[0f32, 1.], [0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[0.6f32, 0.4], [0.4, 0.6]], cpu)?;
        for name in [
            "binary_crossentropy",
            "hinge",
            "mape",
            "msle",
            "poisson",
            "kl_divergence",
        ] {
            let mut metric = get(name, "mse", &[2])?;
            metric.update_state(&y_true, &y_pred)?;
            let loss = losses::get(name)?
                .compute(&y_true, &y_pred)?
                .to_scalar::<f32>()?;
            assert!((metric.result() - loss as f64).abs() < 1e-6, "{name}");
        }
        // keras: LogCoshError()([[0, 1], [0, 0]], [[1, 1], [0, 0]]) = 0.108
        let mut log_cosh = get("log_cosh_error", "mse", &[2])?;
        log_cosh.update_state(&y_true, &Tensor::new(&[[1f32, 1.], [0., 0.]], cpu)?)?;
        assert!((log_cosh.result() - 0.1084).abs() < 1e-4);
        Ok(())
    }
}
