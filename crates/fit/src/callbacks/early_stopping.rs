//! Stop training when a monitored quantity has stopped improving.
//!
//! Follows Keras 3's `keras/src/callbacks/early_stopping.py`.

use candle_core::Tensor;

use super::monitor::{Mode, Monitor};
use super::{Callback, Logs, TrainingControl};
use crate::Result;

/// Stops training once the monitored quantity has not improved for `patience` epochs, and
/// can put back the weights of the best epoch when training ends.
///
/// Keras's defaults: monitor `val_loss`, `min_delta` 0, `patience` 0, [`Mode::Auto`], no
/// baseline, `restore_best_weights` false, `start_from_epoch` 0, quiet.
///
/// ```
/// use rkeras_fit::callbacks::EarlyStopping;
/// let early_stopping = EarlyStopping::new()
///     .monitor("val_loss")
///     .patience(3)
///     .restore_best_weights(true);
/// ```
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    verbose: bool,
    state: State,
}

/// What one training run has seen so far; reset when training begins.
#[derive(Default)]
struct State {
    wait: usize,
    stopped_epoch: Option<usize>,
    best: Option<f64>,
    best_epoch: usize,
    best_weights: Option<Vec<Tensor>>,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self::new()
    }
}

impl EarlyStopping {
    /// Early stopping with Keras's defaults.
    pub fn new() -> Self {
        Self {
            monitor: Monitor::new("val_loss", Mode::Auto, 0.0),
            patience: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            verbose: false,
            state: State::default(),
        }
    }

    /// The logged quantity to watch (default `"val_loss"`).
    pub fn monitor(mut self, key: impl Into<String>) -> Self {
        self.monitor.key = key.into();
        self
    }

    /// The smallest change that counts as an improvement; its sign is ignored (default 0).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }

    /// Epochs without improvement after which training stops (default 0).
    pub fn patience(self, patience: usize) -> Self {
        Self { patience, ..self }
    }

    /// Whether lower or higher values are better (default [`Mode::Auto`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// A value the quantity must improve on: until it does, improvements do not reset the
    /// patience count, so training stops after `patience` epochs (default none).
    pub fn baseline(self, baseline: f64) -> Self {
        Self {
            baseline: Some(baseline),
            ..self
        }
    }

    /// Whether to put back, when training ends, the weights of the epoch with the best
    /// value, even if it never beat the baseline (default false).
    pub fn restore_best_weights(self, restore: bool) -> Self {
        Self {
            restore_best_weights: restore,
            ..self
        }
    }

    /// Epochs of warm-up, counted from 0, before watching starts (default 0).
    pub fn start_from_epoch(self, epoch: usize) -> Self {
        Self {
            start_from_epoch: epoch,
            ..self
        }
    }

    /// Whether to print a line when stopping and when restoring weights (default false).
    pub fn verbose(self, verbose: bool) -> Self {
        Self { verbose, ..self }
    }

    /// The epoch (from 0) in which training was stopped, or `None` if it ran to the end.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.state.stopped_epoch
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _ctl: &mut dyn TrainingControl) -> Result<()> {
        // Allows one instance to serve several `fit` calls, as in Keras.
        self.state = State::default();
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        let direction = self.monitor.direction("EarlyStopping", ctl)?;
        let Some(&current) = logs.get(&self.monitor.key) else {
            eprintln!(
                "Warning: Early stopping conditioned on metric `{}` which is not available. \
                 Available metrics are: {}",
                &self.monitor.key,
                logs.keys().cloned().collect::<Vec<_>>().join(",")
            );
            return Ok(());
        };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        let state = &mut self.state;
        if self.restore_best_weights && state.best_weights.is_none() {
            // Until something improves, the current weights are the best.
            state.best_weights = Some(ctl.get_weights()?);
            state.best_epoch = epoch;
        }
        state.wait += 1;
        if self.monitor.is_improvement(direction, current, state.best) {
            state.best = Some(current);
            state.best_epoch = epoch;
            if self.restore_best_weights {
                state.best_weights = Some(ctl.get_weights()?);
            }
            // Only restart the count when beating both the baseline and the previous best.
            let beats_baseline = self.baseline.is_none()
                || self
                    .monitor
                    .is_improvement(direction, current, self.baseline);
            if beats_baseline {
                state.wait = 0;
            }
            return Ok(());
        }
        // (Keras also checks `epoch > 0`, which always holds here: the first watched value
        // improves on no best.)
        if state.wait >= self.patience {
            state.stopped_epoch = Some(epoch);
            ctl.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, ctl: &mut dyn TrainingControl) -> Result<()> {
        let state = &self.state;
        if let (Some(stopped), true) = (state.stopped_epoch, self.verbose) {
            println!("Epoch {}: early stopping", stopped + 1);
        }
        if self.restore_best_weights {
            if let Some(weights) = &state.best_weights {
                if self.verbose {
                    println!(
                        "Restoring model weights from the end of the best epoch: {}.",
                        state.best_epoch + 1
                    );
                }
                ctl.set_weights(weights)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::test_support::{logs, run_epochs, FakeControl};

    fn val_losses(values: &[f64]) -> Vec<Logs> {
        values.iter().map(|&v| logs(&[("val_loss", v)])).collect()
    }

    /// Weights that record the epoch they come from: epoch i ends with weight 10 + i.
    fn epoch_weights(n: usize) -> Vec<f32> {
        (0..n).map(|i| 10.0 + i as f32).collect()
    }

    #[test]
    fn stops_when_patience_runs_out() {
        // Keras: wait counts epochs since the last improvement; stop when wait >= patience.
        // Losses 1.0, 0.9 (best), 0.95 (wait 1), 0.91 (wait 2 = patience) -> stop at epoch 3.
        let mut es = EarlyStopping::new().patience(2);
        let mut ctl = FakeControl::new(0.1);
        let script = val_losses(&[1.0, 0.9, 0.95, 0.91, 0.5, 0.4]);
        let run = run_epochs(&mut es, &mut ctl, &script, &epoch_weights(6));
        assert_eq!(run, 4);
        assert_eq!(es.stopped_epoch(), Some(3));
        assert!(ctl.restored.is_empty());
        assert_eq!(ctl.weight(), 13.0);
    }

    #[test]
    fn patience_zero_stops_at_the_first_non_improvement() {
        let mut es = EarlyStopping::new();
        let mut ctl = FakeControl::new(0.1);
        let run = run_epochs(
            &mut es,
            &mut ctl,
            &val_losses(&[3.0, 2.0, 2.0, 1.0]),
            &[0.0; 4],
        );
        assert_eq!(run, 3, "an equal value is not an improvement");
    }

    #[test]
    fn min_delta_demands_a_real_improvement() {
        // Improvements of 0.05 < min_delta 0.1 do not count: 1.0 best, 0.95 and 0.9 wait 1, 2.
        let mut es = EarlyStopping::new().min_delta(0.1).patience(2);
        let mut ctl = FakeControl::new(0.1);
        let run = run_epochs(
            &mut es,
            &mut ctl,
            &val_losses(&[1.0, 0.95, 0.9, 0.5]),
            &[0.0; 4],
        );
        assert_eq!(run, 3);
    }

    #[test]
    fn max_mode_and_auto_accuracy_watch_for_increases() {
        let script: Vec<Logs> = [0.5, 0.6, 0.6, 0.7]
            .iter()
            .map(|&a| logs(&[("val_accuracy", a), ("val_loss", 1.0)]))
            .collect();
        for es in [
            EarlyStopping::new().monitor("val_accuracy"),
            EarlyStopping::new().monitor("val_accuracy").mode(Mode::Max),
        ] {
            let mut es = es;
            let mut ctl = FakeControl::new(0.1);
            assert_eq!(run_epochs(&mut es, &mut ctl, &script, &[0.0; 4]), 3);
        }
    }

    #[test]
    fn restores_the_best_weights_when_stopped_early() {
        // Best at epoch 1 (0.5); epochs 2 and 3 do not improve; stop at 3; weights of epoch 1.
        let mut es = EarlyStopping::new().patience(2).restore_best_weights(true);
        let mut ctl = FakeControl::new(0.1);
        let script = val_losses(&[1.0, 0.5, 0.6, 0.7, 0.1]);
        let run = run_epochs(&mut es, &mut ctl, &script, &epoch_weights(5));
        assert_eq!(run, 4);
        assert_eq!(ctl.restored, vec![11.0]);
        assert_eq!(ctl.weight(), 11.0);
    }

    #[test]
    fn restores_the_best_weights_when_training_runs_to_the_end() {
        // Keras 3 restores in on_train_end whether or not training stopped early.
        let mut es = EarlyStopping::new().patience(5).restore_best_weights(true);
        let mut ctl = FakeControl::new(0.1);
        let script = val_losses(&[1.0, 0.3, 0.6, 0.7]);
        assert_eq!(run_epochs(&mut es, &mut ctl, &script, &epoch_weights(4)), 4);
        assert_eq!(es.stopped_epoch(), None);
        assert_eq!(ctl.restored, vec![11.0]);
    }

    #[test]
    fn baseline_keeps_the_count_running_until_beaten() {
        // Baseline 0.5, patience 2. Epoch 0 (0.9) and 1 (0.8) improve on the best but not on
        // the baseline, so wait is not reset: 1, 2. Epoch 2 (0.85) does not improve: wait 3
        // >= 2, stop. Restoring still picks the best epoch, 1.
        let mut es = EarlyStopping::new()
            .patience(2)
            .baseline(0.5)
            .restore_best_weights(true);
        let mut ctl = FakeControl::new(0.1);
        let script = val_losses(&[0.9, 0.8, 0.85, 0.1]);
        assert_eq!(run_epochs(&mut es, &mut ctl, &script, &epoch_weights(4)), 3);
        assert_eq!(es.stopped_epoch(), Some(2));
        assert_eq!(ctl.restored, vec![11.0]);

        // Beating the baseline resets the count as usual: 0.4 (wait 0), 0.45 (1), 0.3 (0),
        // 0.35 (1), 0.36 (2 = patience) -> stop at epoch 4.
        let mut es = EarlyStopping::new().patience(2).baseline(0.5);
        let mut ctl = FakeControl::new(0.1);
        let script = val_losses(&[0.4, 0.45, 0.3, 0.35, 0.36, 0.1]);
        assert_eq!(run_epochs(&mut es, &mut ctl, &script, &[0.0; 6]), 5);
        assert_eq!(es.stopped_epoch(), Some(4));
    }

    #[test]
    fn start_from_epoch_ignores_the_warm_up() {
        // Epochs 0 and 1 are ignored; watching starts at 2 (best 2.0), 3 waits -> stop.
        let mut es = EarlyStopping::new().start_from_epoch(2);
        let mut ctl = FakeControl::new(0.1);
        let script = val_losses(&[1.0, 5.0, 2.0, 2.5, 0.1]);
        assert_eq!(run_epochs(&mut es, &mut ctl, &script, &[0.0; 5]), 4);
        assert_eq!(es.stopped_epoch(), Some(3));
    }

    #[test]
    fn a_missing_key_is_skipped_not_an_error() {
        let mut es = EarlyStopping::new();
        let mut ctl = FakeControl::new(0.1);
        let script = vec![logs(&[("loss", 1.0)]), logs(&[("loss", 2.0)])];
        assert_eq!(run_epochs(&mut es, &mut ctl, &script, &[0.0; 2]), 2);
        assert_eq!(es.stopped_epoch(), None);
    }

    #[test]
    fn an_unclassifiable_monitor_in_auto_mode_is_an_error() {
        let mut es = EarlyStopping::new().monitor("val_reconstruction");
        let mut ctl = FakeControl::new(0.1);
        es.on_train_begin(&mut ctl).unwrap();
        let mut epoch_logs = logs(&[("val_reconstruction", 1.0)]);
        assert!(es.on_epoch_end(0, &mut epoch_logs, &mut ctl).is_err());
    }

    #[test]
    fn reuse_across_fits_starts_afresh() {
        let mut es = EarlyStopping::new().patience(1);
        let mut ctl = FakeControl::new(0.1);
        assert_eq!(
            run_epochs(&mut es, &mut ctl, &val_losses(&[0.1, 0.2]), &[0.0; 2]),
            2
        );
        assert_eq!(es.stopped_epoch(), Some(1));
        // A second fit with higher losses is judged on its own: 5.0 is its first best.
        let mut ctl = FakeControl::new(0.1);
        assert_eq!(
            run_epochs(&mut es, &mut ctl, &val_losses(&[5.0, 4.0, 3.0]), &[0.0; 3]),
            3
        );
        assert_eq!(es.stopped_epoch(), None);
    }
}
