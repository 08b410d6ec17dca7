//! `Training`: Keras's model methods (`compile`, `fit`, `evaluate`, `predict`,
//! `train_on_batch`, `test_on_batch`, `save`, `save_weights`, `load_weights`) on [`Model`]
//! (and on a `Sequential`, which dereferences to one), through one trait in the prelude.

use std::path::Path;
use std::sync::Arc;

use candle_core::{Tensor, Var};
use rkeras_layers::session::stream_base;
use rkeras_model::Model;

use crate::batches::Batch;
use crate::callbacks::Logs;
use crate::compile::{
    attach, busy, detach, restore, with_compiled, CompileState, Compiled, IntoLoss, IntoOptimizer,
};
use crate::fit_options::FitOptions;
use crate::history::History;
use crate::trainer::{self, check_samples, resolve_batch_size, train_step, Head, Tracker};
use crate::Result;

/// Keras's training methods on a model.
pub trait Training {
    /// Keras's `compile(optimizer, loss)`: `model.compile("adam", "binary_crossentropy")?`.
    fn compile(&self, optimizer: impl IntoOptimizer, loss: impl IntoLoss) -> Result<()>;

    /// `compile` with metrics by Keras name (`"mae"`, `"accuracy"`...).
    fn compile_with_metrics(
        &self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLoss,
        metrics: &[&str],
    ) -> Result<()>;

    /// Whether the model has been compiled.
    fn is_compiled(&self) -> bool;

    /// Keras's `fit(x, y, ...)`: trains and returns the per-epoch history.
    fn fit(&self, x: &Tensor, y: &Tensor, options: FitOptions<'_>) -> Result<History>;

    /// Keras's `evaluate(x, y, batch_size)`: the loss (and metrics) without training.
    fn evaluate(&self, x: &Tensor, y: &Tensor, batch_size: Option<usize>) -> Result<Logs>;

    /// Keras's `predict(x, batch_size)`: works on any model, compiled or not. Runs on the
    /// model's device and returns the output on `x`'s.
    fn predict(&self, x: &Tensor, batch_size: Option<usize>) -> Result<Tensor>;

    /// One optimizer step on one batch; returns its loss and metrics.
    fn train_on_batch(&self, x: &Tensor, y: &Tensor) -> Result<Logs>;

    /// The loss and metrics of one batch, without training.
    fn test_on_batch(&self, x: &Tensor, y: &Tensor) -> Result<Logs>;

    /// The number of optimizer steps taken so far (0 for a model not compiled).
    fn optimizer_iterations(&self) -> u64;

    /// Saves the model (graph, weights, compile config and optimizer state) to one
    /// `.safetensors` file.
    fn save(&self, path: impl AsRef<Path>) -> Result<()>;

    /// Saves the weights only, to a `.safetensors` file.
    fn save_weights(&self, path: impl AsRef<Path>) -> Result<()>;

    /// Keras's `load_weights(path)`: loads weights saved by `save_weights` or `save`, matched
    /// by the model's structure (its layers in order, each layer's weights in order) as Keras
    /// matches them, so that a second model built alike, whose layers have other names, loads
    /// them. A structure that differs is an error naming each weight and both shapes, and
    /// nothing is loaded.
    fn load_weights(&self, path: impl AsRef<Path>) -> Result<()>;
}

/// An error while a run (`fit`...) holds `model`, whose weights it is changing: `action` (save
/// or load weights) would see or leave half-updated weights.
fn refuse_while_running(model: &Model, action: &str) -> Result<()> {
    match with_compiled(model, |state| match state {
        CompileState::Busy(running) => Some(running),
        CompileState::None | CompileState::Ready(_) => None,
    }) {
        Some(running) => Err(busy(model, action, running)),
        None => Ok(()),
    }
}

/// Puts the compile state back on the model whatever `run` returns.
fn with_detached<R>(
    model: &Model,
    action: &'static str,
    run: impl FnOnce(&mut Compiled) -> Result<R>,
) -> Result<R> {
    let mut compiled = detach(model, action)?;
    let result = run(&mut compiled);
    restore(model, compiled);
    result
}

impl Training for Model {
    fn compile(&self, optimizer: impl IntoOptimizer, loss: impl IntoLoss) -> Result<()> {
        self.compile_with_metrics(optimizer, loss, &[])
    }

    fn compile_with_metrics(
        &self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLoss,
        metrics: &[&str],
    ) -> Result<()> {
        let compiled = Compiled {
            optimizer: optimizer.into_optimizer()?,
            loss: Arc::from(loss.into_loss()?),
            metric_names: metrics.iter().map(|m| m.to_string()).collect(),
        };
        let output_shape: Vec<usize> = self.output_shapes()[0]
            .dims()
            .iter()
            .map(|d| d.unwrap_or(1))
            .collect();
        compiled.make_metrics(&output_shape)?;
        attach(self, compiled)
    }

    fn is_compiled(&self) -> bool {
        with_compiled(self, |state| !matches!(state, CompileState::None))
    }

    fn fit(&self, x: &Tensor, y: &Tensor, options: FitOptions<'_>) -> Result<History> {
        with_detached(self, "fit", |compiled| {
            trainer::fit(self, compiled, x, y, options)
        })
    }

    fn evaluate(&self, x: &Tensor, y: &Tensor, batch_size: Option<usize>) -> Result<Logs> {
        let batch_size = resolve_batch_size(self, batch_size)?;
        with_detached(self, "evaluate", |compiled| {
            trainer::evaluate_arrays(self, compiled, x, y, batch_size, "")
        })
    }

    fn predict(&self, x: &Tensor, batch_size: Option<usize>) -> Result<Tensor> {
        trainer::predict(self, x, batch_size)
    }

    fn train_on_batch(&self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        let rows = check_samples(x, y, "train_on_batch")?;
        with_detached(self, "train_on_batch", |compiled| {
            let trainable: Vec<Var> = self
                .trainable_weights()
                .into_iter()
                .map(|w| w.var)
                .collect();
            let batch = Batch::whole(x, y, &self.device());
            let head = Head::new(self, &compiled.loss);
            let optimizer = compiled.optimizer.as_mut();
            let (loss, parts) =
                train_step(&head, self, optimizer, &trainable, &batch, stream_base())?;
            let mut tracker = Tracker::new(compiled.make_metrics(y.dims())?);
            tracker.update(loss, rows, &parts)?;
            Ok(tracker.logs(""))
        })
    }

    fn test_on_batch(&self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        let rows = check_samples(x, y, "test_on_batch")?;
        self.evaluate(x, y, Some(rows))
    }

    fn optimizer_iterations(&self) -> u64 {
        with_compiled(self, |state| match state {
            CompileState::Ready(compiled) => compiled.optimizer.iterations(),
            CompileState::None | CompileState::Busy(_) => 0,
        })
    }

    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        with_compiled(self, |state| match state {
            CompileState::Ready(compiled) => {
                crate::saving::save_model(self, Some(compiled), path.as_ref())
            }
            CompileState::None => crate::saving::save_model(self, None, path.as_ref()),
            CompileState::Busy(running) => Err(busy(self, "save", running)),
        })
    }

    fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        refuse_while_running(self, "save weights")?;
        crate::saving::save_weights(self, path.as_ref())
    }

    fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        refuse_while_running(self, "load weights")?;
        rkeras_model::saving::load_weights_by_structure(self, path)?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "training_tests.rs"]
mod tests;
