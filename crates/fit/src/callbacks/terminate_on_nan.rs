//! Stop training when the loss becomes NaN or infinite.
//!
//! Follows Keras 3's `keras/src/callbacks/terminate_on_nan.py` (its default,
//! `raise_error=False`: a graceful stop that still runs every `on_train_end`).

use super::{Callback, Logs, TrainingControl};
use crate::Result;

/// Stops training after the first batch whose logged `loss` is NaN or infinite, printing
/// `Batch {batch}: Invalid loss, terminating training` as Keras does.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminateOnNan;

impl TerminateOnNan {
    /// The callback.
    pub fn new() -> Self {
        Self
    }
}

impl Callback for TerminateOnNan {
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &Logs,
        ctl: &mut dyn TrainingControl,
    ) -> Result<()> {
        if logs.get("loss").is_some_and(|loss| !loss.is_finite()) {
            println!("Batch {batch}: Invalid loss, terminating training");
            ctl.stop_training();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::test_support::{logs, FakeControl};

    /// Feeds batch losses until the callback asks to stop; returns the batches run.
    fn batches_until_stop(losses: &[f64]) -> usize {
        let mut callback = TerminateOnNan::new();
        let mut ctl = FakeControl::new(0.1);
        for (batch, &loss) in losses.iter().enumerate() {
            let batch_logs = logs(&[("loss", loss), ("accuracy", 0.5)]);
            callback
                .on_train_batch_end(batch, &batch_logs, &mut ctl)
                .unwrap();
            if ctl.stop_requested {
                return batch + 1;
            }
        }
        losses.len()
    }

    #[test]
    fn stops_at_the_first_nan_or_infinite_loss() {
        assert_eq!(batches_until_stop(&[1.0, 0.5, f64::NAN, 0.4]), 3);
        assert_eq!(batches_until_stop(&[1.0, f64::INFINITY, 0.4]), 2);
        assert_eq!(batches_until_stop(&[f64::NEG_INFINITY]), 1);
    }

    #[test]
    fn finite_losses_and_missing_losses_do_not_stop() {
        assert_eq!(batches_until_stop(&[1.0, 1e300, -3.0, 0.0]), 4);
        let mut ctl = FakeControl::new(0.1);
        let no_loss = logs(&[("accuracy", f64::NAN)]);
        TerminateOnNan::new()
            .on_train_batch_end(0, &no_loss, &mut ctl)
            .unwrap();
        assert!(!ctl.stop_requested);
    }
}
