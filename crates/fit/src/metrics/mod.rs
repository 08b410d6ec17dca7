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

mod mean;
mod mean_metric_wrapper;
pub mod sample_values;

pub use mean::Mean;
pub use mean_metric_wrapper::MeanMetricWrapper;

use crate::{Error, Result};
use candle_core::Tensor;

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
}

/// The identifiers [`get`] accepts, aliases included.
pub const KNOWN_METRICS: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "mae",
    "mean_absolute_error",
    "mse",
    "mean_squared_error",
];

/// The metric Keras's `compile(metrics=[name])` builds, logged under `name`.
///
/// "accuracy"/"acc" picks the kind as `keras/src/trainers/compile_utils.py` (`get_metric`) does
/// from the shapes of the targets and predictions; the targets' shape is not known before the
/// first batch, so the loss stands in for it: a model output whose last dimension (of
/// `output_shape`, with or without the batch dimension) is 1 gives binary accuracy, a sparse loss
/// (integer labels) gives sparse categorical accuracy, anything else categorical accuracy.
pub fn get(name: &str, loss_name: &str, output_shape: &[usize]) -> Result<Box<dyn Metric>> {
    use sample_values::*;
    let values: SampleValuesFn = match name {
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
        other => {
            return Err(Error::Config(format!(
                "unknown metric {other:?}; expected one of: {}",
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
        let message = get("auc", "mse", &[1])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("sparse_categorical_accuracy"), "{message}");
    }
}
