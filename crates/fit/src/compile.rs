//! `compile`: the optimizer, loss and metrics a model trains with, kept with the model.

use std::sync::Arc;

use rkeras_model::Model;
use serde_json::json;

use crate::losses::{self, Loss};
use crate::metrics::Metric;
use crate::optimizers::{self, Optimizer};
use crate::{Error, Result};

/// An optimizer given to `compile`: a Keras name (`"adam"`) or a configured value
/// (`Adam::new().learning_rate(1e-4)`).
pub trait IntoOptimizer {
    /// The optimizer, or an error for an unknown name.
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>>;
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        optimizers::get(self)
    }
}

impl<O: Optimizer + 'static> IntoOptimizer for O {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        Ok(Box::new(self))
    }
}

/// A loss given to `compile`: a Keras name (`"binary_crossentropy"`) or a configured value.
pub trait IntoLoss {
    /// The loss, or an error for an unknown name.
    fn into_loss(self) -> Result<Box<dyn Loss>>;
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Box<dyn Loss>> {
        losses::get(self)
    }
}

impl<L: Loss + 'static> IntoLoss for L {
    fn into_loss(self) -> Result<Box<dyn Loss>> {
        Ok(Box::new(self))
    }
}

/// What `compile` leaves on a model: everything `fit` and `evaluate` need.
pub(crate) struct Compiled {
    /// The optimizer, with its state (moments, iteration count).
    pub optimizer: Box<dyn Optimizer>,
    /// The loss (shared with the runs that use it).
    pub loss: Arc<dyn Loss>,
    /// The metric names asked for, resolved into metrics when training starts.
    pub metric_names: Vec<String>,
}

impl Compiled {
    /// The compile configuration as JSON (Keras's `compile_config`), for saving.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "optimizer": self.optimizer.config(),
            "loss": self.loss.config(),
            "metrics": self.metric_names,
        })
    }

    /// Fresh metrics for a model whose output has `output_shape` (batch included).
    pub fn make_metrics(&self, output_shape: &[usize]) -> Result<Vec<Box<dyn Metric>>> {
        self.metric_names
            .iter()
            .map(|name| crate::metrics::get(name, self.loss.name(), output_shape))
            .collect()
    }
}

/// Stores `compiled` on `model`, replacing any earlier compile (and its optimizer state).
pub(crate) fn attach(model: &Model, compiled: Compiled) {
    *model.extension() = Some(Box::new(compiled));
}

/// Takes the compile state off `model` for the length of a training run, or says the model
/// must be compiled first.
pub(crate) fn detach(model: &Model, action: &str) -> Result<Compiled> {
    let taken = model.extension().take();
    match taken.map(|b| b.downcast::<Compiled>()) {
        Some(Ok(compiled)) => Ok(*compiled),
        Some(Err(other)) => {
            *model.extension() = Some(other);
            Err(not_compiled(model, action))
        }
        None => Err(not_compiled(model, action)),
    }
}

/// Runs `f` with a reference to the model's compile state, if it has one.
pub(crate) fn with_compiled<R>(model: &Model, f: impl FnOnce(Option<&Compiled>) -> R) -> R {
    let guard = model.extension();
    f(guard.as_ref().and_then(|b| b.downcast_ref::<Compiled>()))
}

fn not_compiled(model: &Model, action: &str) -> Error {
    Error::Config(format!(
        "model '{}' must be compiled before {action}: call model.compile(optimizer, loss) first",
        model.name()
    ))
}
