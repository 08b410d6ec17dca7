//! The running loss and metrics of an epoch, and the order Keras displays them in.

use candle_core::Tensor;

use crate::callbacks::Logs;
use crate::metrics::{Mean, Metric};
use crate::Result;

/// The targets and the prediction of each part a batch ran in, in row order, for the metrics.
pub(crate) type PartOutputs = Vec<(Tensor, Tensor)>;

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

    /// Adds a batch of `batch` samples: its loss, and the targets and prediction of each part
    /// the batch ran in to the metrics.
    pub fn update(&mut self, loss: f64, batch: usize, parts: &[(Tensor, Tensor)]) -> Result<()> {
        self.loss.update_state(loss, batch as f64);
        for (y, y_pred) in parts {
            for m in &mut self.metrics {
                m.update_state(y, y_pred)?;
            }
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

/// Keras's display order (`keras/src/utils/progbar.py` shows keys in the order it first meets
/// them): the training keys sorted (the callback list sorts each batch's logs,
/// `python_utils.pythonify_logs`: `accuracy` before `loss`), then the `val_*` keys sorted (new at
/// the epoch's end), then the learning rate a callback adds to the epoch's logs after they were
/// sorted (`learning_rate_scheduler.py`, `reduce_lr_on_plateau.py`).
pub(crate) fn display_order(logs: &Logs) -> Vec<(String, f64)> {
    let rank = |key: &str| {
        if key == "learning_rate" || key.starts_with("learning_rate_") {
            2
        } else if key.starts_with("val_") {
            1
        } else {
            0
        }
    };
    let mut ordered: Vec<(String, f64)> = logs.iter().map(|(k, v)| (k.clone(), *v)).collect();
    // A stable sort of keys already sorted by name.
    ordered.sort_by_key(|(key, _)| rank(key));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_keys_then_validation_keys_then_the_learning_rate() {
        let logs: Logs = [
            "val_loss",
            "loss",
            "learning_rate",
            "accuracy",
            "val_accuracy",
            "mae",
        ]
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_string(), i as f64))
        .collect();
        let keys: Vec<String> = display_order(&logs).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "accuracy",
                "loss",
                "mae",
                "val_accuracy",
                "val_loss",
                "learning_rate"
            ]
        );
        assert_eq!(
            display_order(&logs)[5].1,
            2.0,
            "values stay with their keys"
        );
    }
}
