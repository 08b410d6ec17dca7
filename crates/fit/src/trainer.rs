//! The training loop: batches, forward, loss plus added losses, backward, optimizer step,
//! callbacks, validation and progress (Keras's `trainers/trainer.py` and `epoch_iterator.py`).

use std::path::Path;

use candle_core::{Tensor, Var};
use rkeras_layers::layer::WeightGrads;
use rkeras_layers::CallContext;
use rkeras_model::Model;

use crate::batches::{batch_count, BatchOrder, Rows};
use crate::callbacks::{Callback, Logs, TrainingControl};
use crate::compile::Compiled;
use crate::fit_options::FitOptions;
use crate::history::History;
use crate::metrics::{Mean, Metric};
use crate::progress::{Progress, ProgressOutput};
use crate::{Error, Result};

/// Keras's default batch size.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// The only output of a single-output model.
pub(crate) fn single_output(model: &Model, mut outputs: Vec<Tensor>) -> Result<Tensor> {
    match outputs.len() {
        1 => Ok(outputs.remove(0)),
        n => Err(Error::Config(format!(
            "model '{}' has {n} outputs; fit, evaluate and predict take single-output models",
            model.name()
        ))),
    }
}

/// The batch size to use: the input's fixed batch size if it has one (then `asked` must
/// match it), else `asked`, else 32.
pub(crate) fn resolve_batch_size(model: &Model, asked: Option<usize>) -> Result<usize> {
    let fixed = model.input_shapes().first().and_then(|s| s.batch());
    match (fixed, asked) {
        (_, Some(0)) => Err(Error::Config("batch_size must be positive".into())),
        (Some(fixed), Some(asked)) if fixed != asked => Err(Error::Config(format!(
            "model '{}' has an input with a fixed batch size of {fixed} ('{}'); batch_size {asked} cannot be used",
            model.name(),
            model.graph().input_layers[0].name()
        ))),
        (Some(fixed), _) => Ok(fixed),
        (None, Some(asked)) => Ok(asked),
        (None, None) => Ok(DEFAULT_BATCH_SIZE),
    }
}

/// Checks that `x` and `y` hold the same, non-zero number of samples.
pub(crate) fn check_samples(x: &Tensor, y: &Tensor, context: &str) -> Result<usize> {
    let (nx, ny) = (x.dims().first().copied(), y.dims().first().copied());
    match (nx, ny) {
        (Some(a), Some(b)) if a == b && a > 0 => Ok(a),
        _ => Err(Error::Shape {
            context: context.to_string(),
            expected: format!(
                "x and y with the same, non-zero number of samples (x has {:?})",
                x.dims()
            ),
            got: format!("y shaped {:?}", y.dims()),
        }),
    }
}

/// The total loss of a batch (compiled loss + losses the call added + weight penalties) and
/// the prediction.
pub(crate) fn batch_loss(
    model: &Model,
    compiled: &Compiled,
    x: &Tensor,
    y: &Tensor,
    training: bool,
) -> Result<(Tensor, Tensor)> {
    let mut ctx = CallContext::new(training);
    let y_pred = single_output(model, model.forward_t(std::slice::from_ref(x), &mut ctx)?)?;
    let mut total = compiled.loss.compute(y, &y_pred)?;
    for added in ctx.take_losses() {
        total = (total + added)?;
    }
    for penalty in model.regularization_losses()? {
        total = (total + penalty)?;
    }
    Ok((total, y_pred))
}

/// How a training step computes its gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepPath {
    /// candle's autograd over the whole step.
    Autograd,
    /// The layers' own backward passes (every layer has one, the model runs on the CPU and no
    /// call adds a loss): candle's autograd only over the loss and the weight penalties.
    LayerBackward,
}

#[cfg(test)]
thread_local! {
    /// Set by tests to run the autograd path on a model that could take the other one.
    static FORCE_AUTOGRAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The path `train_step` takes for `model`.
pub(crate) fn step_path(model: &Model) -> StepPath {
    #[cfg(test)]
    if FORCE_AUTOGRAD.get() {
        return StepPath::Autograd;
    }
    if model.device().is_cpu() && model.as_layer().has_backward() {
        StepPath::LayerBackward
    } else {
        StepPath::Autograd
    }
}

/// One optimizer step on one batch; returns the batch loss and the (detached) prediction.
pub(crate) fn train_step(
    model: &Model,
    compiled: &mut Compiled,
    trainable: &[Var],
    x: &Tensor,
    y: &Tensor,
) -> Result<(f64, Tensor)> {
    match step_path(model) {
        StepPath::Autograd => autograd_step(model, compiled, trainable, x, y),
        StepPath::LayerBackward => layer_backward_step(model, compiled, trainable, x, y),
    }
}

/// The step through candle's autograd over the whole model.
fn autograd_step(
    model: &Model,
    compiled: &mut Compiled,
    trainable: &[Var],
    x: &Tensor,
    y: &Tensor,
) -> Result<(f64, Tensor)> {
    let (loss, y_pred, grads) = autograd_gradients(model, compiled, x, y)?;
    let pairs: Vec<(&Var, &Tensor)> = trainable
        .iter()
        .filter_map(|v| grads.get(v.as_tensor()).map(|g| (v, g)))
        .collect();
    compiled.optimizer.apply_gradients(&pairs)?;
    Ok((loss.to_scalar::<f32>()? as f64, y_pred.detach()))
}

/// The batch loss, the prediction and the gradients of everything the loss depends on, by
/// candle's autograd over the whole model.
fn autograd_gradients(
    model: &Model,
    compiled: &Compiled,
    x: &Tensor,
    y: &Tensor,
) -> Result<(Tensor, Tensor, candle_core::backprop::GradStore)> {
    let (loss, y_pred) = batch_loss(model, compiled, x, y, true)?;
    let grads = loss.backward()?;
    Ok((loss, y_pred, grads))
}

/// The step through the layers' own backward passes.
fn layer_backward_step(
    model: &Model,
    compiled: &mut Compiled,
    trainable: &[Var],
    x: &Tensor,
    y: &Tensor,
) -> Result<(f64, Tensor)> {
    let (total, y_pred, weight_grads) = layer_gradients(model, compiled, trainable, x, y)?;
    let pairs: Vec<(&Var, &Tensor)> = trainable
        .iter()
        .filter_map(|v| weight_grads.get(v).map(|g| (v, g)))
        .collect();
    compiled.optimizer.apply_gradients(&pairs)?;
    Ok((total.to_scalar::<f32>()? as f64, y_pred))
}

/// The batch loss, the (detached) prediction and the trainable weights' gradients through the
/// layers' own backward passes: a forward that builds no candle graph and records what each
/// layer needs, candle's autograd over the loss (of a variable copy of the prediction) and the
/// weight penalties only, then the model's backward from the prediction's gradient. The loss is
/// the same sum as [`autograd_gradients`]'s.
fn layer_gradients(
    model: &Model,
    compiled: &Compiled,
    trainable: &[Var],
    x: &Tensor,
    y: &Tensor,
) -> Result<(Tensor, Tensor, WeightGrads)> {
    let layer = model.as_layer();
    let mut ctx = CallContext::detached_training();
    let record = layer.call_recorded(std::slice::from_ref(x), &mut ctx)?;
    if !ctx.losses().is_empty() {
        return Err(Error::Config(format!(
            "model '{}': a layer added a loss during a layer-level backward step, which only \
             candle's autograd can follow",
            model.name()
        )));
    }
    let y_pred = single_output(model, record.outputs.clone())?;
    let y_pred_var = Var::from_tensor(&y_pred)?;
    let mut total = compiled.loss.compute(y, y_pred_var.as_tensor())?;
    for penalty in model.regularization_losses()? {
        total = (total + penalty)?;
    }
    let autograd = total.backward()?;
    let mut weight_grads = WeightGrads::new(trainable);
    for var in trainable {
        if let Some(grad) = autograd.get(var.as_tensor()) {
            weight_grads.add(var, grad.clone())?;
        }
    }
    let grad_pred = match autograd.get(y_pred_var.as_tensor()) {
        Some(grad) => grad.clone(),
        None => y_pred.zeros_like()?,
    };
    layer.backward(record, &[grad_pred], &[false], &mut weight_grads)?;
    Ok((total, y_pred, weight_grads))
}

/// Running values of an epoch: the batch-size-weighted mean loss and the metrics.
pub(crate) struct Tracker {
    loss: Mean,
    metrics: Vec<Box<dyn Metric>>,
}

impl Tracker {
    pub fn new(metrics: Vec<Box<dyn Metric>>) -> Self {
        Tracker {
            loss: Mean::new("loss"),
            metrics,
        }
    }

    pub fn update(&mut self, loss: f64, batch: usize, y: &Tensor, y_pred: &Tensor) -> Result<()> {
        self.loss.update_state(loss, batch as f64);
        for m in &mut self.metrics {
            m.update_state(y, y_pred)?;
        }
        Ok(())
    }

    /// The current values, under `prefix` (`""` or `"val_"`).
    pub fn logs(&self, prefix: &str) -> Logs {
        let mut logs = Logs::new();
        logs.insert(format!("{prefix}loss"), self.loss.result());
        for m in &self.metrics {
            logs.insert(format!("{prefix}{}", m.name()), m.result());
        }
        logs
    }
}

/// Keras's display order: training keys sorted, then `val_*` keys sorted.
pub(crate) fn display_order(logs: &Logs) -> Vec<(String, f64)> {
    let (val, train): (Vec<_>, Vec<_>) = logs
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .partition(|(k, _)| k.starts_with("val_"));
    train.into_iter().chain(val).collect()
}

/// Loss and metrics of `model` on `(x, y)`, in batches, without training.
pub(crate) fn evaluate_arrays(
    model: &Model,
    compiled: &Compiled,
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
    prefix: &str,
) -> Result<Logs> {
    let rows = check_samples(x, y, "evaluate")?;
    let output_shape = model.output_shapes()[0]
        .dims()
        .iter()
        .map(|d| d.unwrap_or(1))
        .collect::<Vec<_>>();
    let mut tracker = Tracker::new(compiled.make_metrics(&output_shape)?);
    let device = model.device();
    let mut order = BatchOrder::new(rows, false);
    for _ in 0..batch_count(rows, batch_size) {
        let batch = order.next(batch_size);
        let (xb, yb) = (batch.take(x, &device)?, batch.take(y, &device)?);
        let (loss, y_pred) = batch_loss(model, compiled, &xb, &yb, false)?;
        tracker.update(loss.to_scalar::<f32>()? as f64, batch.len(), &yb, &y_pred)?;
    }
    Ok(tracker.logs(prefix))
}

/// What callbacks reach while `fit` runs.
struct LoopControl<'a> {
    model: &'a Model,
    compiled: &'a mut Compiled,
    epochs_completed: usize,
    stop: bool,
}

impl TrainingControl for LoopControl<'_> {
    fn stop_training(&mut self) {
        self.stop = true;
    }

    fn learning_rate(&self) -> f64 {
        self.compiled.optimizer.learning_rate()
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.compiled.optimizer.set_learning_rate(learning_rate)
    }

    fn get_weights(&self) -> Result<Vec<Tensor>> {
        self.model
            .weights()
            .iter()
            .map(|w| Ok(w.var.as_tensor().copy()?))
            .collect()
    }

    fn set_weights(&mut self, weights: &[Tensor]) -> Result<()> {
        let vars = self.model.weights();
        if vars.len() != weights.len() {
            return Err(Error::Config(format!(
                "set_weights: model '{}' has {} weights, got {}",
                self.model.name(),
                vars.len(),
                weights.len()
            )));
        }
        for (w, value) in vars.iter().zip(weights) {
            w.var.set(value)?;
        }
        Ok(())
    }

    fn save_model(&self, path: &Path) -> Result<()> {
        crate::saving::save_checkpoint(
            self.model,
            Some(self.compiled),
            Some(self.epochs_completed),
            path,
        )
    }

    fn save_weights(&self, path: &Path) -> Result<()> {
        crate::saving::save_weights(self.model, path)
    }
}

/// Keras's `fit` on arrays.
pub(crate) fn fit(
    model: &Model,
    compiled: &mut Compiled,
    x: &Tensor,
    y: &Tensor,
    options: FitOptions<'_>,
) -> Result<History> {
    let FitOptions {
        epochs,
        batch_size,
        shuffle,
        validation_data,
        validation_split,
        steps_per_epoch,
        initial_epoch,
        verbose,
        mut callbacks,
    } = options;
    let rows = check_samples(x, y, "fit")?;
    let batch_size = resolve_batch_size(model, batch_size)?;
    if !(0.0..1.0).contains(&validation_split) {
        return Err(Error::Config(format!(
            "validation_split must be in [0, 1), got {validation_split}"
        )));
    }
    // Keras takes the validation split from the end of the data, before shuffling.
    let train_rows = (rows as f64 * (1.0 - validation_split)).floor() as usize;
    if train_rows == 0 {
        return Err(Error::Config(
            "validation_split leaves no training samples".into(),
        ));
    }
    let split =
        (validation_split > 0.0 && train_rows < rows).then(|| -> Result<(Tensor, Tensor)> {
            Ok((
                x.narrow(0, train_rows, rows - train_rows)?,
                y.narrow(0, train_rows, rows - train_rows)?,
            ))
        });
    let split = split.transpose()?;
    let (x_train, y_train) = if train_rows < rows {
        (x.narrow(0, 0, train_rows)?, y.narrow(0, 0, train_rows)?)
    } else {
        (x.clone(), y.clone())
    };
    let validation: Option<(&Tensor, &Tensor)> = match (&validation_data, &split) {
        (Some((vx, vy)), _) => Some((vx, vy)),
        (None, Some((vx, vy))) => Some((vx, vy)),
        (None, None) => None,
    };
    let steps = steps_per_epoch.unwrap_or_else(|| batch_count(train_rows, batch_size));
    let verbose = verbose.unwrap_or(1);
    let mut progress = Progress::new(verbose, Some(steps), ProgressOutput::Stdout);
    let mut history = History::new(epochs, steps, verbose);
    let trainable: Vec<Var> = model
        .trainable_weights()
        .into_iter()
        .map(|w| w.var)
        .collect();
    let output_shape: Vec<usize> = model.output_shapes()[0]
        .dims()
        .iter()
        .map(|d| d.unwrap_or(1))
        .collect();
    let device = model.device();
    let mut order = BatchOrder::new(train_rows, shuffle);
    let mut ctl = LoopControl {
        model,
        compiled,
        epochs_completed: initial_epoch,
        stop: false,
    };
    let mut last_logs = Logs::new();
    each(&mut callbacks, |c| c.on_train_begin(&mut ctl))?;
    for epoch in initial_epoch..epochs {
        each(&mut callbacks, |c| c.on_epoch_begin(epoch, &mut ctl))?;
        progress.epoch_begin(epoch, epochs).map_err(io_error)?;
        let mut tracker = Tracker::new(ctl.compiled.make_metrics(&output_shape)?);
        if steps_per_epoch.is_none() || epoch == initial_epoch {
            order.restart(epoch);
        }
        for step in 0..steps {
            each(&mut callbacks, |c| c.on_train_batch_begin(step, &mut ctl))?;
            let batch = order.next(batch_size);
            let (xb, yb) = (
                batch.take(&x_train, &device)?,
                batch.take(&y_train, &device)?,
            );
            let (loss, y_pred) = train_step(model, ctl.compiled, &trainable, &xb, &yb)?;
            tracker.update(loss, batch.len(), &yb, &y_pred)?;
            let logs = tracker.logs("");
            progress
                .update(step + 1, &display_order(&logs))
                .map_err(io_error)?;
            each(&mut callbacks, |c| {
                c.on_train_batch_end(step, &logs, &mut ctl)
            })?;
            if ctl.stop {
                break;
            }
        }
        let mut logs = tracker.logs("");
        if let Some((vx, vy)) = validation {
            logs.extend(evaluate_arrays(
                model,
                ctl.compiled,
                vx,
                vy,
                batch_size,
                "val_",
            )?);
        }
        ctl.epochs_completed = epoch + 1;
        each(&mut callbacks, |c| {
            c.on_epoch_end(epoch, &mut logs, &mut ctl)
        })?;
        history.record_epoch(epoch, &logs);
        progress.finish(&display_order(&logs)).map_err(io_error)?;
        last_logs = logs;
        if ctl.stop {
            break;
        }
    }
    each(&mut callbacks, |c| c.on_train_end(&last_logs, &mut ctl))?;
    Ok(history)
}

fn each<'c>(
    callbacks: &mut [Box<dyn Callback + 'c>],
    mut hook: impl FnMut(&mut dyn Callback) -> Result<()>,
) -> Result<()> {
    for c in callbacks.iter_mut() {
        hook(c.as_mut())?;
    }
    Ok(())
}

fn io_error(source: std::io::Error) -> Error {
    Error::Io {
        path: "<stdout>".into(),
        source,
    }
}

/// Keras's `predict`: the model's output on `x`, computed in batches.
pub(crate) fn predict(model: &Model, x: &Tensor, batch_size: Option<usize>) -> Result<Tensor> {
    let batch_size = resolve_batch_size(model, batch_size)?;
    let rows = x.dims().first().copied().unwrap_or(0);
    if rows == 0 {
        return Err(Error::Shape {
            context: "predict".into(),
            expected: "at least one sample".into(),
            got: format!("{:?}", x.dims()),
        });
    }
    let device = model.device();
    let mut outputs = Vec::with_capacity(batch_count(rows, batch_size));
    let mut order = BatchOrder::new(rows, false);
    for _ in 0..batch_count(rows, batch_size) {
        let batch: Rows<'_> = order.next(batch_size);
        let xb = batch.take(x, &device)?;
        // Detached: a kept output must not keep its batch's whole forward graph alive.
        outputs.push(single_output(model, model.forward(&[xb])?)?.detach());
    }
    Ok(Tensor::cat(&outputs, 0)?)
}

#[cfg(test)]
mod layer_backward_tests;
