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

mod binary_crossentropy;
mod categorical_crossentropy;
mod huber;
mod kl_divergence;
mod mean_absolute_error;
mod mean_squared_error;
pub(crate) mod reduction;
pub(crate) mod sparse_categorical_crossentropy;

pub use binary_crossentropy::BinaryCrossentropy;
pub use categorical_crossentropy::CategoricalCrossentropy;
pub use huber::Huber;
pub use kl_divergence::KLDivergence;
pub use mean_absolute_error::MeanAbsoluteError;
pub use mean_squared_error::MeanSquaredError;
pub use sparse_categorical_crossentropy::SparseCategoricalCrossentropy;

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

/// The identifiers [`get`] accepts, aliases included.
pub const KNOWN_LOSSES: &[&str] = &[
    "binary_crossentropy",
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
];

/// The loss Keras's `losses.get(name)` returns, with its default options.
pub fn get(name: &str) -> Result<Box<dyn Loss>> {
    Ok(match name {
        "binary_crossentropy" => Box::new(BinaryCrossentropy::new()),
        "mse" | "mean_squared_error" => Box::new(MeanSquaredError::new()),
        "mae" | "mean_absolute_error" => Box::new(MeanAbsoluteError::new()),
        "categorical_crossentropy" => Box::new(CategoricalCrossentropy::new()),
        "sparse_categorical_crossentropy" => Box::new(SparseCategoricalCrossentropy::new()),
        "huber" | "huber_loss" => Box::new(Huber::new()),
        "kl_divergence" | "kld" => Box::new(KLDivergence::new()),
        other => {
            return Err(Error::Config(format!(
                "unknown loss {other:?}; expected one of: {}",
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
    fn get_rejects_unknown_names_and_lists_the_known_ones() {
        let message = get("hinge")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("\"hinge\""), "{message}");
        assert!(
            message.contains("sparse_categorical_crossentropy"),
            "{message}"
        );
    }
}
