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

/// What a model's extension slot holds: its compile state, or the mark of the run (`fit`,
/// `evaluate`...) that has taken it, so that another thread's `save` or `fit` can say so.
enum CompileSlot {
    Ready(Compiled),
    Busy(&'static str),
}

/// Stores `compiled` on `model`, replacing any earlier compile (and its optimizer state);
/// refused while a run has the compile state.
pub(crate) fn attach(model: &Model, compiled: Compiled) -> Result<()> {
    let mut slot = model.extension();
    if let Some(action) = busy_with(slot.as_deref()) {
        return Err(busy(model, "compile", action));
    }
    *slot = Some(Box::new(CompileSlot::Ready(compiled)));
    Ok(())
}

/// Takes the compile state off `model` for the length of a run (`action`: `fit`, `evaluate`...),
/// leaving a mark that the run holds it; an error if the model is not compiled or another run
/// holds it. [`restore`] puts it back.
pub(crate) fn detach(model: &Model, action: &'static str) -> Result<Compiled> {
    let mut slot = model.extension();
    if let Some(other) = busy_with(slot.as_deref()) {
        return Err(busy(model, action, other));
    }
    match slot.take().map(|b| b.downcast::<CompileSlot>()) {
        Some(Ok(state)) => match *state {
            CompileSlot::Ready(compiled) => {
                *slot = Some(Box::new(CompileSlot::Busy(action)));
                Ok(compiled)
            }
            CompileSlot::Busy(other) => Err(busy(model, action, other)),
        },
        Some(Err(other)) => {
            *slot = Some(other);
            Err(not_compiled(model, action))
        }
        None => Err(not_compiled(model, action)),
    }
}

/// Puts back the compile state a run took with [`detach`].
pub(crate) fn restore(model: &Model, compiled: Compiled) {
    *model.extension() = Some(Box::new(CompileSlot::Ready(compiled)));
}

/// What a model's compile state is now.
pub(crate) enum CompileState<'a> {
    /// Not compiled.
    None,
    /// Compiled, and free.
    Ready(&'a Compiled),
    /// Compiled, and held by a run (`fit`...) on some thread.
    Busy(&'static str),
}

/// Runs `f` with the model's compile state.
pub(crate) fn with_compiled<R>(model: &Model, f: impl FnOnce(CompileState<'_>) -> R) -> R {
    let slot = model.extension();
    let state = match slot.as_ref().and_then(|b| b.downcast_ref::<CompileSlot>()) {
        Some(CompileSlot::Ready(compiled)) => CompileState::Ready(compiled),
        Some(CompileSlot::Busy(action)) => CompileState::Busy(action),
        None => CompileState::None,
    };
    f(state)
}

/// The run holding the slot's compile state, if one does.
fn busy_with(slot: Option<&(dyn std::any::Any + Send)>) -> Option<&'static str> {
    match slot?.downcast_ref::<CompileSlot>()? {
        CompileSlot::Busy(action) => Some(action),
        CompileSlot::Ready(_) => None,
    }
}

/// The error for `action` asked while `running` holds the model.
pub(crate) fn busy(model: &Model, action: &str, running: &str) -> Error {
    Error::Config(format!(
        "model '{}': cannot {action} while a {running} of it is in progress (on another thread); \
         wait for it to end",
        model.name()
    ))
}

fn not_compiled(model: &Model, action: &str) -> Error {
    Error::Config(format!(
        "model '{}' must be compiled before {action}: call model.compile(optimizer, loss) first",
        model.name()
    ))
}
