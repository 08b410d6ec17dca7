//! `Training`: Keras's model methods (`compile`, `fit`, `evaluate`, `predict`,
//! `train_on_batch`, `test_on_batch`, `save`, `save_weights`, `load_weights`) on [`Model`]
//! (and on a `Sequential`, which dereferences to one), through one trait in the prelude.

use std::path::Path;

use candle_core::{Tensor, Var};
use rkeras_layers::session::stream_base;
use rkeras_model::Model;

use crate::arrays::Arrays;
use crate::batches::Batch;
use crate::callbacks::Logs;
use crate::compile::{
    attach, busy, detach, model_output_shapes, restore, with_compiled, CompileOptions,
    CompileState, Compiled, IntoLosses, IntoOptimizer,
};
use crate::fit_options::FitOptions;
use crate::history::History;
use crate::run_options::{BatchOptions, EvaluateOptions};
use crate::sample_weights::Weighting;
use crate::trainer::{self, check_samples, resolve_batch_size, train_step, Head, Tracker};
use crate::{Error, Result};

/// Keras's training methods on a model. Data is an array or a list of arrays
/// ([`Arrays`]): `model.fit(&x, &y, ...)`, `model.fit([&x1, &x2], [&y1, &y2], ...)`.
pub trait Training {
    /// Keras's `compile(optimizer, loss)`: `model.compile("adam", "binary_crossentropy")?`; one
    /// loss for every output, or a list or names' map of losses ([`IntoLosses`]).
    fn compile(&self, optimizer: impl IntoOptimizer, loss: impl IntoLosses) -> Result<()>;

    /// `compile` with metrics by Keras name (`"mae"`, `"accuracy"`...).
    fn compile_with_metrics(
        &self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLosses,
        metrics: &[&str],
    ) -> Result<()>;

    /// `compile` with Keras's other arguments: metrics per output, loss weights.
    fn compile_with(
        &self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLosses,
        options: CompileOptions,
    ) -> Result<()>;

    /// Whether the model has been compiled.
    fn is_compiled(&self) -> bool;

    /// Keras's `fit(x, y, ...)`: trains and returns the per-epoch history.
    fn fit(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        options: FitOptions<'_>,
    ) -> Result<History>;

    /// Keras's `evaluate(x, y, batch_size)`: the loss (and metrics) without training.
    fn evaluate(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        batch_size: Option<usize>,
    ) -> Result<Logs>;

    /// Keras's `evaluate(x, y, batch_size=..., sample_weight=...)`: `evaluate` with
    /// [`EvaluateOptions`].
    fn evaluate_with(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        options: EvaluateOptions,
    ) -> Result<Logs>;

    /// Keras's `predict(x, batch_size)` for a model with one output: works on any model,
    /// compiled or not. Runs on the model's device and returns the output on `x`'s.
    fn predict(&self, x: impl Into<Arrays>, batch_size: Option<usize>) -> Result<Tensor>;

    /// Keras's `predict` for a model with several outputs: each output, in order.
    fn predict_many(&self, x: impl Into<Arrays>, batch_size: Option<usize>) -> Result<Vec<Tensor>>;

    /// One optimizer step on one batch; returns its loss and metrics.
    fn train_on_batch(&self, x: impl Into<Arrays>, y: impl Into<Arrays>) -> Result<Logs>;

    /// Keras's `train_on_batch(x, y, sample_weight=..., class_weight=...)`: `train_on_batch`
    /// with [`BatchOptions`].
    fn train_on_batch_with(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        options: BatchOptions,
    ) -> Result<Logs>;

    /// The loss and metrics of one batch, without training.
    fn test_on_batch(&self, x: impl Into<Arrays>, y: impl Into<Arrays>) -> Result<Logs>;

    /// Keras's `test_on_batch(x, y, sample_weight)`: the loss weighted sample by sample (as
    /// [`FitOptions::sample_weight`]) and the metrics, without training.
    fn test_on_batch_with(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        sample_weight: impl Into<Arrays>,
    ) -> Result<Logs>;

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
    fn compile(&self, optimizer: impl IntoOptimizer, loss: impl IntoLosses) -> Result<()> {
        self.compile_with(optimizer, loss, CompileOptions::new())
    }

    fn compile_with_metrics(
        &self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLosses,
        metrics: &[&str],
    ) -> Result<()> {
        self.compile_with(optimizer, loss, CompileOptions::new().metrics(metrics))
    }

    fn compile_with(
        &self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLosses,
        options: CompileOptions,
    ) -> Result<()> {
        let compiled = Compiled::new(
            self,
            optimizer.into_optimizer()?,
            loss.into_losses()?,
            options,
        )?;
        attach(self, compiled)
    }

    fn is_compiled(&self) -> bool {
        with_compiled(self, |state| !matches!(state, CompileState::None))
    }

    fn fit(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        options: FitOptions<'_>,
    ) -> Result<History> {
        let (x, y) = (x.into(), y.into());
        with_detached(self, "fit", |compiled| {
            trainer::fit(self, compiled, &x, &y, options)
        })
    }

    fn evaluate(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        batch_size: Option<usize>,
    ) -> Result<Logs> {
        let options = EvaluateOptions {
            batch_size,
            sample_weight: None,
        };
        self.evaluate_with(x, y, options)
    }

    fn evaluate_with(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        options: EvaluateOptions,
    ) -> Result<Logs> {
        let (x, y) = (x.into(), y.into());
        let rows = check_samples(&x, &y, "evaluate")?;
        let batch_size = resolve_batch_size(self, options.batch_size)?;
        let weighting = Weighting {
            sample_weight: options.sample_weight,
            class_weight: None,
        };
        let weights = weighting.resolve("evaluate", &y, rows, &model_output_shapes(self))?;
        with_detached(self, "evaluate", |compiled| {
            let data = (&x, &y, weights.as_ref());
            trainer::evaluate_arrays(self, compiled, data, batch_size, "")
        })
    }

    fn predict(&self, x: impl Into<Arrays>, batch_size: Option<usize>) -> Result<Tensor> {
        match &mut self.predict_many(x, batch_size)?[..] {
            [only] => Ok(only.clone()),
            several => Err(Error::Config(format!(
                "model '{}' has {} outputs: use predict_many",
                self.name(),
                several.len()
            ))),
        }
    }

    fn predict_many(&self, x: impl Into<Arrays>, batch_size: Option<usize>) -> Result<Vec<Tensor>> {
        trainer::predict(self, &x.into(), batch_size)
    }

    fn train_on_batch(&self, x: impl Into<Arrays>, y: impl Into<Arrays>) -> Result<Logs> {
        self.train_on_batch_with(x, y, BatchOptions::new())
    }

    fn train_on_batch_with(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        options: BatchOptions,
    ) -> Result<Logs> {
        let (x, y) = (x.into(), y.into());
        let rows = check_samples(&x, &y, "train_on_batch")?;
        let output_shapes = model_output_shapes(self);
        let weights = options
            .weighting
            .resolve("train_on_batch", &y, rows, &output_shapes)?;
        with_detached(self, "train_on_batch", |compiled| {
            let trainable: Vec<Var> = self
                .trainable_weights()
                .into_iter()
                .map(|w| w.var)
                .collect();
            let batch = Batch::whole(&x, &y, &self.device()).weighted(weights.as_ref());
            let head = Head::new(self, &compiled.outputs);
            let optimizer = compiled.optimizer.as_mut();
            let (losses, parts) =
                train_step(&head, self, optimizer, &trainable, &batch, stream_base())?;
            let mut tracker = Tracker::new(compiled, &output_shapes)?;
            tracker.update(&losses, rows, &parts)?;
            Ok(tracker.logs(""))
        })
    }

    fn test_on_batch(&self, x: impl Into<Arrays>, y: impl Into<Arrays>) -> Result<Logs> {
        let (x, y) = (x.into(), y.into());
        let rows = check_samples(&x, &y, "test_on_batch")?;
        self.evaluate(x, y, Some(rows))
    }

    fn test_on_batch_with(
        &self,
        x: impl Into<Arrays>,
        y: impl Into<Arrays>,
        sample_weight: impl Into<Arrays>,
    ) -> Result<Logs> {
        let (x, y) = (x.into(), y.into());
        let rows = check_samples(&x, &y, "test_on_batch")?;
        let options = EvaluateOptions::new()
            .batch_size(rows)
            .sample_weight(sample_weight);
        self.evaluate_with(x, y, options)
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
