//! Set the learning rate from a schedule at the start of every epoch.
//!
//! Follows Keras 3's `keras/src/callbacks/learning_rate_scheduler.py`.

use super::{Callback, Logs, TrainingControl};
use crate::format::float_repr;
use crate::Result;

/// A schedule: the epoch (from 0) and the current learning rate give the new learning rate.
type Schedule = Box<dyn Fn(usize, f64) -> f64 + Send>;

/// At the start of every epoch, sets the optimizer's learning rate to
/// `schedule(epoch, current_learning_rate)`; at the end of every epoch, logs it as
/// `learning_rate`.
///
/// ```
/// use rkeras_fit::callbacks::LearningRateScheduler;
/// // Keep the rate for ten epochs, then decay it exponentially.
/// let scheduler = LearningRateScheduler::new(|epoch, lr| {
///     if epoch < 10 { lr } else { lr * (-0.1f64).exp() }
/// });
/// ```
pub struct LearningRateScheduler {
    schedule: Schedule,
    verbose: bool,
}

impl LearningRateScheduler {
    /// A scheduler following `schedule`, quiet.
    pub fn new(schedule: impl Fn(usize, f64) -> f64 + Send + 'static) -> Self {
        Self {
            schedule: Box::new(schedule),
            verbose: false,
        }
    }

    /// Whether to print the new rate at the start of every epoch (default false).
    pub fn verbose(self, verbose: bool) -> Self {
        Self { verbose, ..self }
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, ctl: &mut dyn TrainingControl) -> Result<()> {
        let learning_rate = (self.schedule)(epoch, ctl.learning_rate());
        ctl.set_learning_rate(learning_rate);
        if self.verbose {
            println!(
                "\nEpoch {}: LearningRateScheduler setting learning rate to {}.",
                epoch + 1,
                float_repr(learning_rate)
            );
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &mut Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        logs.insert("learning_rate".to_string(), ctl.learning_rate());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::test_support::FakeControl;

    #[test]
    fn sets_the_rate_from_the_epoch_and_the_current_rate() {
        // Halve the rate every epoch from epoch 2: 0.5, 0.5, 0.25, 0.125 (exact in float32).
        let mut scheduler =
            LearningRateScheduler::new(|epoch, lr| if epoch < 2 { lr } else { lr / 2.0 });
        let mut ctl = FakeControl::new(0.5);
        let mut seen = Vec::new();
        let mut logged = Vec::new();
        for epoch in 0..4 {
            scheduler.on_epoch_begin(epoch, &mut ctl).unwrap();
            seen.push(ctl.lr());
            let mut logs = Logs::new();
            scheduler.on_epoch_end(epoch, &mut logs, &mut ctl).unwrap();
            logged.push(logs["learning_rate"]);
        }
        assert_eq!(seen, vec![0.5, 0.5, 0.25, 0.125]);
        assert_eq!(logged, vec![0.5, 0.5, 0.25, 0.125]);
    }

    #[test]
    fn logs_the_rate_as_the_optimizer_holds_it() {
        // The fake optimizer, like Keras's, stores float32: 0.1 is logged as f32's 0.1.
        let mut scheduler = LearningRateScheduler::new(|_, _| 0.1);
        let mut ctl = FakeControl::new(1.0);
        scheduler.on_epoch_begin(0, &mut ctl).unwrap();
        let mut logs = Logs::new();
        scheduler.on_epoch_end(0, &mut logs, &mut ctl).unwrap();
        assert_eq!(logs["learning_rate"], 0.10000000149011612);
    }
}
