//! Reduce the learning rate when a monitored quantity has stopped improving.
//!
//! Follows Keras 3's `keras/src/callbacks/reduce_lr_on_plateau.py`.

use super::monitor::{Mode, Monitor};
use super::{Callback, Logs, TrainingControl};
use crate::format::float_repr;
use crate::{Error, Result};

/// Multiplies the learning rate by `factor` once the monitored quantity has not improved for
/// `patience` epochs, never going below `min_lr`, then waits `cooldown` epochs before
/// counting again. Logs the learning rate of each epoch as `learning_rate`.
///
/// Keras's defaults: monitor `val_loss`, `factor` 0.1, `patience` 10, [`Mode::Auto`],
/// `min_delta` 1e-4, `cooldown` 0, `min_lr` 0, quiet.
///
/// ```
/// use rkeras_fit::callbacks::ReduceLrOnPlateau;
/// let reduce_lr = ReduceLrOnPlateau::new().factor(0.2).patience(5).min_lr(0.001);
/// ```
pub struct ReduceLrOnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    verbose: bool,
    best: Option<f64>,
    wait: usize,
    cooldown_counter: usize,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        Self::new()
    }
}

impl ReduceLrOnPlateau {
    /// The callback with Keras's defaults.
    pub fn new() -> Self {
        Self {
            monitor: Monitor::new("val_loss", Mode::Auto, 1e-4),
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            verbose: false,
            best: None,
            wait: 0,
            cooldown_counter: 0,
        }
    }

    /// The logged quantity to watch (default `"val_loss"`).
    pub fn monitor(mut self, key: impl Into<String>) -> Self {
        self.monitor.key = key.into();
        self
    }

    /// The multiplier applied to the learning rate, below 1 (default 0.1). Training fails to
    /// start with a factor of 1 or more.
    pub fn factor(self, factor: f64) -> Self {
        Self { factor, ..self }
    }

    /// Epochs without improvement before a reduction (default 10).
    pub fn patience(self, patience: usize) -> Self {
        Self { patience, ..self }
    }

    /// Whether lower or higher values are better (default [`Mode::Auto`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// The smallest change that counts as an improvement; its sign is ignored (default 1e-4).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }

    /// Epochs after a reduction during which no epoch counts as a failure (default 0).
    pub fn cooldown(self, cooldown: usize) -> Self {
        Self { cooldown, ..self }
    }

    /// The lowest learning rate a reduction may set (default 0).
    pub fn min_lr(self, min_lr: f64) -> Self {
        Self { min_lr, ..self }
    }

    /// Whether to print a line at each reduction (default false).
    pub fn verbose(self, verbose: bool) -> Self {
        Self { verbose, ..self }
    }

    /// Multiplies the rate by the factor, clipped at `min_lr`, unless it is already there.
    /// Returns whether it changed the rate.
    fn reduce(&self, epoch: usize, ctl: &mut dyn TrainingControl) -> bool {
        let old_lr = ctl.learning_rate();
        // Keras compares the (float32) optimizer rate with `np.float32(min_lr)`, so a rate
        // already clipped to `min_lr` is never "reduced" again.
        if old_lr <= f64::from(self.min_lr as f32) {
            return false;
        }
        let new_lr = (old_lr * self.factor).max(self.min_lr);
        ctl.set_learning_rate(new_lr);
        if self.verbose {
            println!(
                "\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.",
                epoch + 1,
                float_repr(new_lr)
            );
        }
        true
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_train_begin(&mut self, _ctl: &mut dyn TrainingControl) -> Result<()> {
        if self.factor >= 1.0 {
            return Err(Error::Config(format!(
                "ReduceLROnPlateau does not support a factor >= 1.0, got factor={}",
                self.factor
            )));
        }
        self.best = None;
        self.wait = 0;
        self.cooldown_counter = 0;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        let direction = self.monitor.direction("ReduceLROnPlateau", ctl)?;
        logs.insert("learning_rate".to_string(), ctl.learning_rate());
        let Some(&current) = logs.get(&self.monitor.key) else {
            eprintln!(
                "Warning: Learning rate reduction is conditioned on metric `{}` which is not \
                 available. Available metrics are: {}.",
                self.monitor.key,
                logs.keys().cloned().collect::<Vec<_>>().join(",")
            );
            return Ok(());
        };
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.is_improvement(direction, current, self.best) {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience && self.reduce(epoch, ctl) {
                self.cooldown_counter = self.cooldown;
                self.wait = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::test_support::{logs, FakeControl};

    /// Runs the callback over scripted `val_loss` values; returns the learning rate after
    /// each epoch and the `learning_rate` each epoch logged.
    fn rates(callback: &mut ReduceLrOnPlateau, lr: f32, losses: &[f64]) -> (Vec<f32>, Vec<f64>) {
        let mut ctl = FakeControl::new(lr);
        callback.on_train_begin(&mut ctl).unwrap();
        let mut after = Vec::new();
        let mut logged = Vec::new();
        for (epoch, &loss) in losses.iter().enumerate() {
            let mut epoch_logs = logs(&[("val_loss", loss)]);
            callback
                .on_epoch_end(epoch, &mut epoch_logs, &mut ctl)
                .unwrap();
            after.push(ctl.lr());
            logged.push(epoch_logs["learning_rate"]);
        }
        (after, logged)
    }

    #[test]
    fn reduces_after_patience_epochs_without_improvement() {
        // patience 2: best 1.0 at epoch 0; epochs 1, 2 fail (wait 1, 2) -> x0.5 at epoch 2;
        // wait restarts: epochs 3, 4 fail -> x0.5 at epoch 4. Powers of two are exact in f32.
        let mut callback = ReduceLrOnPlateau::new().factor(0.5).patience(2);
        let (after, logged) = rates(&mut callback, 1.0, &[1.0, 1.0, 1.1, 1.2, 1.0, 1.0]);
        assert_eq!(after, vec![1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
        // The logged rate is the one in force during the epoch, before any reduction.
        assert_eq!(logged, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn improvements_smaller_than_min_delta_do_not_count() {
        // Default min_delta 1e-4: 0.99995 is not below 1.0 - 1e-4, so it is a failure.
        let mut callback = ReduceLrOnPlateau::new().factor(0.5).patience(1);
        let (after, _) = rates(&mut callback, 1.0, &[1.0, 0.99995, 0.5]);
        assert_eq!(after, vec![1.0, 0.5, 0.5]);
    }

    #[test]
    fn cooldown_suspends_counting_after_a_reduction() {
        // patience 1, cooldown 2. Epoch 1 fails -> reduce, counter 2. Epoch 2: counter -> 1,
        // still cooling, fails silently. Epoch 3: counter -> 0, fails -> wait 1 -> reduce.
        let mut callback = ReduceLrOnPlateau::new().factor(0.5).patience(1).cooldown(2);
        let (after, _) = rates(&mut callback, 1.0, &[1.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(after, vec![1.0, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn never_goes_below_min_lr_and_stops_there() {
        // 1.0 -> 0.1 -> clipped to min_lr 0.05; then f32(0.05) is not > f32(0.05): no change.
        let mut callback = ReduceLrOnPlateau::new().patience(1).min_lr(0.05);
        let (after, _) = rates(&mut callback, 1.0, &[1.0, 2.0, 2.0, 2.0]);
        assert_eq!(after, vec![1.0, 0.1, 0.05, 0.05]);
        // float32's 0.05 is 0.0500000007..., above 0.05 as float64: only the float32
        // comparison sees that the rate is already at its floor.
        let mut ctl = FakeControl::new(0.05);
        assert!(f64::from(ctl.lr()) > 0.05);
        assert!(!callback.reduce(3, &mut ctl));
    }

    #[test]
    fn a_factor_of_one_or_more_is_rejected() {
        let mut ctl = FakeControl::new(0.1);
        let err = ReduceLrOnPlateau::new()
            .factor(1.0)
            .on_train_begin(&mut ctl)
            .unwrap_err();
        assert!(err.to_string().contains("factor"), "{err}");
    }

    #[test]
    fn a_missing_key_still_logs_the_rate_and_changes_nothing() {
        let mut callback = ReduceLrOnPlateau::new().patience(0);
        let mut ctl = FakeControl::new(0.5);
        callback.on_train_begin(&mut ctl).unwrap();
        let mut epoch_logs = logs(&[("loss", 1.0)]);
        callback.on_epoch_end(0, &mut epoch_logs, &mut ctl).unwrap();
        assert_eq!(epoch_logs["learning_rate"], 0.5);
        assert_eq!(ctl.lr(), 0.5);
    }
}
