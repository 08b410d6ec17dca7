//! The training loop: batches, forward, loss plus added losses, backward, optimizer step,
//! callbacks, validation and progress (Keras's `trainers/trainer.py` and `epoch_iterator.py`).

mod batch_parts;
mod evaluation;
mod gradient_sum;
mod head;
mod inputs;
mod step;
mod tracking;

use std::path::Path;

use candle_core::{Tensor, Var};
use rkeras_layers::session::stream_base;
use rkeras_model::Model;

use crate::arrays::Arrays;
use crate::batches::{batch_count, Batch, BatchOrder};
use crate::callbacks::{Callback, Logs, TrainingControl};
use crate::compile::{model_output_shapes, Compiled};
use crate::fit_options::FitOptions;
use crate::history::History;
use crate::progress::{Progress, ProgressOutput};
use crate::sample_weights::Weighting;
use crate::{Error, Result};

pub(crate) use evaluation::{evaluate_arrays, predict};
pub(crate) use head::Head;
use inputs::{check_inputs, check_validation};
pub(crate) use inputs::{check_samples, resolve_batch_size};
pub(crate) use step::train_step;
pub(crate) use tracking::{display_order, Tracker};

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
    x: &Arrays,
    y: &Arrays,
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
        weighting,
        validation_sample_weight,
    } = options;
    let rows = check_samples(x, y, "fit")?;
    check_inputs(model, x, "x")?;
    let output_shapes = model_output_shapes(model);
    let weights = weighting.resolve("fit", y, rows, &output_shapes)?;
    if let Some((vx, vy)) = &validation_data {
        check_validation(model, (vx, vy), y)?;
    }
    let validation_weights = match (&validation_data, validation_sample_weight) {
        (Some((_, vy)), Some(sample_weight)) => {
            let rows = vy.samples("validation_data")?;
            let weighting = Weighting {
                sample_weight: Some(sample_weight),
                class_weight: None,
            };
            weighting.resolve("validation_data", vy, rows, &output_shapes)?
        }
        (None, Some(_)) => {
            return Err(Error::Config(
                "validation_sample_weight needs validation_data".into(),
            ))
        }
        (_, None) => None,
    };
    if steps_per_epoch == Some(0) {
        return Err(Error::Config("steps_per_epoch must be positive".into()));
    }
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
    // The split's sample weights weight `val_loss`; class weights are for training only.
    let split_weights = weights
        .as_ref()
        .filter(|_| weighting.class_weight.is_none());
    let split = (validation_split > 0.0 && train_rows < rows)
        .then(|| {
            let (vx, vy) = rows_of(x, y, train_rows, rows - train_rows)?;
            let vw = weight_rows(split_weights, train_rows, rows - train_rows)?;
            Ok::<_, Error>((vx, vy, vw))
        })
        .transpose()?;
    let (x_train, y_train) = rows_of(x, y, 0, train_rows)?;
    let w_train = weight_rows(weights.as_ref(), 0, train_rows)?;
    let validation: Option<(&Arrays, &Arrays, Option<&Arrays>)> = match (&validation_data, &split) {
        (Some((vx, vy)), _) => Some((vx, vy, validation_weights.as_ref())),
        (None, Some((vx, vy, vw))) => Some((vx, vy, vw.as_ref())),
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
    let device = model.device();
    // Decided once: where the output meets the loss, and the random streams' base.
    let head = Head::new(model, &compiled.outputs);
    let stream = stream_base();
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
        let mut tracker = Tracker::new(ctl.compiled, &output_shapes)?;
        if steps_per_epoch.is_none() || epoch == initial_epoch {
            order.restart(epoch);
        }
        for step in 0..steps {
            each(&mut callbacks, |c| c.on_train_batch_begin(step, &mut ctl))?;
            let batch = Batch::new(&x_train, &y_train, order.next(batch_size), &device)
                .weighted(w_train.as_ref());
            let optimizer = ctl.compiled.optimizer.as_mut();
            let (losses, parts) = train_step(&head, model, optimizer, &trainable, &batch, stream)?;
            tracker.update(&losses, batch.len(), &parts)?;
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
        if let Some(data) = validation {
            logs.extend(evaluate_arrays(
                model,
                ctl.compiled,
                data,
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

/// Rows `start..start + len` of `x` and of `y`, a target that is an input too (an
/// autoencoder's) staying the same tensor, so that each batch is gathered once.
fn rows_of(x: &Arrays, y: &Arrays, start: usize, len: usize) -> Result<(Arrays, Arrays)> {
    let xs = x.rows(start, len)?;
    let ys: Vec<Tensor> = y
        .tensors()
        .iter()
        .map(
            |t| match x.tensors().iter().position(|input| input.id() == t.id()) {
                Some(at) => Ok(xs.tensors()[at].clone()),
                None => Ok(t.narrow(0, start, len)?),
            },
        )
        .collect::<Result<_>>()?;
    Ok((xs, Arrays::from(ys)))
}

/// Rows `start..start + len` of each output's sample weights, if there are any.
fn weight_rows(weights: Option<&Arrays>, start: usize, len: usize) -> Result<Option<Arrays>> {
    weights.map(|w| w.rows(start, len)).transpose()
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
