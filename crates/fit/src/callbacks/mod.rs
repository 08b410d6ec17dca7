//! Callbacks: code that runs at fixed points of training and may watch the logs, stop
//! training, change the learning rate, restore weights or save the model.
//!
//! Follows Keras 3's `keras/src/callbacks/callback.py` (the hooks) and
//! `keras/src/callbacks/callback_list.py` (the order the training loop calls them in: the
//! user's callbacks first, in the order given, then `History`, then the progress bar, so
//! that keys a callback adds to the epoch logs, such as `learning_rate`, reach the history
//! and the progress line).
//!
//! A callback reaches the model and the optimizer only through [`TrainingControl`], which
//! the training loop implements.

mod csv_logger;
mod early_stopping;
mod learning_rate_scheduler;
mod model_checkpoint;
mod monitor;
mod reduce_lr_on_plateau;
mod terminate_on_nan;

#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Tensor;

use crate::Result;

pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use learning_rate_scheduler::LearningRateScheduler;
pub use model_checkpoint::{ModelCheckpoint, SaveFreq};
pub use monitor::{keras_metric_direction, Direction, Mode};
pub use reduce_lr_on_plateau::ReduceLrOnPlateau;
pub use terminate_on_nan::TerminateOnNan;

/// Per-epoch or per-batch values (`"loss"`, `"val_loss"`, metric names), ordered by name.
pub type Logs = BTreeMap<String, f64>;

/// What a callback may read and change while training runs. Implemented by the training loop.
pub trait TrainingControl {
    /// Asks the loop to stop after the current batch or epoch (Keras's
    /// `model.stop_training = True`).
    fn stop_training(&mut self);

    /// The optimizer's current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the optimizer's learning rate.
    fn set_learning_rate(&mut self, learning_rate: f64);

    /// Copies of all the model's weights, in the model's order. They must not change when
    /// training goes on (copy the variables, do not alias them).
    fn get_weights(&self) -> Result<Vec<Tensor>>;

    /// Overwrites all the model's weights, given in the order [`Self::get_weights`] returns.
    fn set_weights(&mut self, weights: &[Tensor]) -> Result<()>;

    /// Saves the whole model (configuration and weights) to `path`, overwriting it.
    fn save_model(&self, path: &Path) -> Result<()>;

    /// Saves the model's weights to `path`, overwriting it.
    fn save_weights(&self, path: &Path) -> Result<()>;

    /// Whether the compiled metric named `metric` (without any `val_` prefix) improves by
    /// going down or up, for callbacks in [`Mode::Auto`]. Keras asks each compiled metric
    /// for its `_direction`; the default answers for Keras's built-in metric names.
    fn metric_direction(&self, metric: &str) -> Option<Direction> {
        keras_metric_direction(metric)
    }
}

/// A hook into training. Every method has an empty default, so a callback implements only
/// the stages it cares about. An error returned from any hook ends training with that error.
pub trait Callback: Send {
    /// Called once before the first epoch.
    fn on_train_begin(&mut self, ctl: &mut dyn TrainingControl) -> Result<()> {
        let _ = ctl;
        Ok(())
    }

    /// Called once after the last epoch, also when training was stopped early; `logs` are the
    /// logs of the last epoch.
    fn on_train_end(&mut self, logs: &Logs, ctl: &mut dyn TrainingControl) -> Result<()> {
        let _ = (logs, ctl);
        Ok(())
    }

    /// Called at the start of epoch `epoch` (counted from 0).
    fn on_epoch_begin(&mut self, epoch: usize, ctl: &mut dyn TrainingControl) -> Result<()> {
        let _ = (epoch, ctl);
        Ok(())
    }

    /// Called at the end of epoch `epoch` (counted from 0) with the epoch's training and
    /// validation values. A callback may add keys (Keras's learning-rate callbacks add
    /// `learning_rate`); the callbacks after it see them.
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        let _ = (epoch, logs, ctl);
        Ok(())
    }

    /// Called before training batch `batch` (counted from 0 in each epoch).
    fn on_train_batch_begin(&mut self, batch: usize, ctl: &mut dyn TrainingControl) -> Result<()> {
        let _ = (batch, ctl);
        Ok(())
    }

    /// Called after training batch `batch` (counted from 0 in each epoch) with the values
    /// aggregated over the epoch so far.
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        let _ = (batch, logs, ctl);
        Ok(())
    }
}
