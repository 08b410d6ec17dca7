//! Loss functions, as Keras 3 defines them (`keras/src/losses/losses.py`).
//!
//! Every loss reduces its per-sample values with Keras's default reduction,
//! `"sum_over_batch_size"` (`keras/src/losses/loss.py`: `reduce_values`), and stays
//! differentiable through candle's autograd.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use rkeras_fit::losses::{self, Loss};
//!
//! let y_true = Tensor::new(&[[0f32, 1.], [1., 0.]], &Device::Cpu)?;
//! let y_pred = Tensor::new(&[[0.5f32, 1.], [1., 0.5]], &Device::Cpu)?;
//! let mse = losses::get("mse")?;
//! // ((0.5² + 0) / 2 + (0 + 0.5²) / 2) / 2 = 0.125
//! assert_eq!(mse.compute(&y_true, &y_pred)?.to_scalar::<f32>()?, 0.125);
//! # Ok::<(), rkeras_fit::Error>(())
//! ```

#[macro_use]
mod binary_builders;
mod binary_crossentropy;
mod binary_focal_crossentropy;
mod categorical_crossentropy;
mod categorical_hinge;
mod cosine_similarity;
mod elementwise;
mod hinge;
mod huber;
pub(crate) mod identifier;
mod kl_divergence;
mod log_cosh;
mod mean_absolute_error;
mod mean_absolute_percentage_error;
mod mean_squared_error;
mod mean_squared_logarithmic_error;
mod poisson;
pub(crate) mod reduction;
pub(crate) mod sparse_categorical_crossentropy;
mod squared_hinge;
#[cfg(test)]
mod test_support;
pub(crate) mod weighted;

pub use binary_crossentropy::BinaryCrossentropy;
pub use binary_focal_crossentropy::BinaryFocalCrossentropy;
pub use categorical_crossentropy::CategoricalCrossentropy;
pub use categorical_hinge::CategoricalHinge;
pub use cosine_similarity::CosineSimilarity;
pub use hinge::Hinge;
pub use huber::Huber;
pub use kl_divergence::KLDivergence;
pub use log_cosh::LogCosh;
pub use mean_absolute_error::MeanAbsoluteError;
pub use mean_absolute_percentage_error::MeanAbsolutePercentageError;
pub use mean_squared_error::MeanSquaredError;
pub use mean_squared_logarithmic_error::MeanSquaredLogarithmicError;
pub use poisson::Poisson;
pub use sparse_categorical_crossentropy::SparseCategoricalCrossentropy;
pub use squared_hinge::SquaredHinge;

use crate::{Error, Result};
use candle_core::Tensor;
use rkeras_layers::ActivationFn;

/// `backend.epsilon()`, the fuzz factor Keras clips probabilities with (`keras/src/backend/config.py`).
pub const EPSILON: f64 = 1e-7;

/// A loss function: targets and predictions in, one differentiable scalar out.
pub trait Loss: Send + Sync {
    /// Keras name, e.g. "binary_crossentropy".
    fn name(&self) -> &str;
    /// Scalar loss with Keras's default reduction ("sum_over_batch_size"), differentiable through candle autograd.
    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor>;
    /// JSON config (name + options), for saving the compile config.
    fn config(&self) -> serde_json::Value;
    /// Whether the loss is the mean over the batch's samples of one value per sample (what
    /// Keras's `"sum_over_batch_size"` reduction gives), so that a batch's loss is the
    /// size-weighted mean of the losses of its parts. Training may then run the parts of a
    /// batch on separate threads. False unless a loss says so.
    fn averages_over_samples(&self) -> bool {
        false
    }
    /// Keras's `call`: the values the reduction averages, before it (one per sample, or per
    /// sample and timestep for predictions of rank 3 or more: the shape of `y_pred` without its
    /// last axis), when the loss averages over samples. Sample weights multiply these
    /// (`keras/src/losses/loss.py`, `reduce_weighted_values`). A loss that returns them
    /// promises that `compute` is their mean and that each value depends on its own sample's
    /// row only; `None` (the default) refuses sample weights.
    fn per_sample(&self, _y_true: &Tensor, _y_pred: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// The loss and its gradient with respect to `y_pred` computed directly, without candle's
    /// autograd, when the loss has such a kernel for these tensors (`None`: use `compute`).
    fn value_and_gradient(
        &self,
        _y_true: &Tensor,
        _y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        Ok(None)
    }
    /// The same loss computed from the logits of predictions that come from `activation` (a
    /// sigmoid for binary cross-entropy, a softmax for the categorical ones), when it has such a
    /// form: what Keras does on TensorFlow (`keras/src/backend/tensorflow/nn.py`, the
    /// activation's `_keras_logits`). Training and evaluation then run the model to the logits.
    fn on_logits_of(&self, activation: ActivationFn) -> Option<Box<dyn Loss>> {
        let _ = activation;
        None
    }
}

/// The identifiers [`get`] accepts, aliases included; Keras's class names
/// (`"MeanSquaredError"`, `"BinaryFocalCrossentropy"`) and the upper-case aliases (`"MSE"`)
/// are accepted too, as their snake-case forms.
pub const KNOWN_LOSSES: &[&str] = &[
    "binary_crossentropy",
    "bce",
    "mse",
    "mean_squared_error",
    "mae",
    "mean_absolute_error",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "huber",
    "huber_loss",
    "kl_divergence",
    "kld",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity",
    "log_cosh",
    "logcosh",
    "mean_absolute_percentage_error",
    "mape",
    "mean_squared_logarithmic_error",
    "msle",
    "poisson",
    "binary_focal_crossentropy",
];

/// The loss Keras's `losses.get(name)` returns, with its default options (`keras/src/losses/__init__.py`:
/// the function names, the class names, and the aliases `bce`, `kld`, `mae`, `mse`, `mape`,
/// `msle`; `logcosh` is Keras's legacy alias).
pub fn get(name: &str) -> Result<Box<dyn Loss>> {
    Ok(match identifier::snake_case_identifier(name).as_str() {
        "binary_crossentropy" | "bce" => Box::new(BinaryCrossentropy::new()),
        "mse" | "mean_squared_error" => Box::new(MeanSquaredError::new()),
        "mae" | "mean_absolute_error" => Box::new(MeanAbsoluteError::new()),
        "categorical_crossentropy" => Box::new(CategoricalCrossentropy::new()),
        "sparse_categorical_crossentropy" => Box::new(SparseCategoricalCrossentropy::new()),
        "huber" | "huber_loss" => Box::new(Huber::new()),
        "kl_divergence" | "kld" => Box::new(KLDivergence::new()),
        "hinge" => Box::new(Hinge::new()),
        "squared_hinge" => Box::new(SquaredHinge::new()),
        "categorical_hinge" => Box::new(CategoricalHinge::new()),
        "cosine_similarity" => Box::new(CosineSimilarity::new()),
        "log_cosh" | "logcosh" => Box::new(LogCosh::new()),
        "mean_absolute_percentage_error" | "mape" => Box::new(MeanAbsolutePercentageError::new()),
        "mean_squared_logarithmic_error" | "msle" => Box::new(MeanSquaredLogarithmicError::new()),
        "poisson" => Box::new(Poisson::new()),
        "binary_focal_crossentropy" => Box::new(BinaryFocalCrossentropy::new()),
        _ => {
            return Err(Error::Config(format!(
                "unknown loss {name:?}; expected one of: {}",
                KNOWN_LOSSES.join(", ")
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_resolves_every_known_name_and_alias() -> Result<()> {
        let expected = [
            ("binary_crossentropy", "binary_crossentropy"),
            ("bce", "binary_crossentropy"),
            ("mse", "mean_squared_error"),
            ("mean_squared_error", "mean_squared_error"),
            ("mae", "mean_absolute_error"),
            ("mean_absolute_error", "mean_absolute_error"),
            ("categorical_crossentropy", "categorical_crossentropy"),
            (
                "sparse_categorical_crossentropy",
                "sparse_categorical_crossentropy",
            ),
            ("huber", "huber_loss"),
            ("huber_loss", "huber_loss"),
            ("kl_divergence", "kl_divergence"),
            ("kld", "kl_divergence"),
            ("hinge", "hinge"),
            ("squared_hinge", "squared_hinge"),
            ("categorical_hinge", "categorical_hinge"),
            ("cosine_similarity", "cosine_similarity"),
            ("log_cosh", "log_cosh"),
            ("logcosh", "log_cosh"),
            (
                "mean_absolute_percentage_error",
                "mean_absolute_percentage_error",
            ),
            ("mape", "mean_absolute_percentage_error"),
            (
                "mean_squared_logarithmic_error",
                "mean_squared_logarithmic_error",
            ),
            ("msle", "mean_squared_logarithmic_error"),
            ("poisson", "poisson"),
            ("binary_focal_crossentropy", "binary_focal_crossentropy"),
        ];
        assert_eq!(expected.len(), KNOWN_LOSSES.len());
        for (identifier, name) in expected {
            let loss = get(identifier)?;
            assert_eq!(loss.name(), name);
            assert_eq!(loss.config()["name"], name);
        }
        Ok(())
    }

    #[test]
    fn get_resolves_keras_class_names() -> Result<()> {
        for (class, name) in [
            ("MeanSquaredError", "mean_squared_error"),
            ("MSE", "mean_squared_error"),
            ("LogCosh", "log_cosh"),
            ("KLDivergence", "kl_divergence"),
            ("BinaryFocalCrossentropy", "binary_focal_crossentropy"),
            (
                "MeanAbsolutePercentageError",
                "mean_absolute_percentage_error",
            ),
        ] {
            assert_eq!(get(class)?.name(), name, "{class}");
        }
        Ok(())
    }

    #[test]
    fn get_rejects_unknown_names_and_lists_the_known_ones() {
        let message = get("dice").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("\"dice\""), "{message}");
        assert!(
            message.contains("sparse_categorical_crossentropy"),
            "{message}"
        );
    }
}
