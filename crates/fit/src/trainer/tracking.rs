//! The running loss and metrics of an epoch, and the order Keras displays them in.

use candle_core::Tensor;

use super::step::BatchLosses;
use crate::callbacks::Logs;
use crate::compile::{Compiled, OutputMetrics};
use crate::metrics::Mean;
use crate::Result;

/// The targets and the predictions (one per model output) of each part a batch ran in, in row
/// order, for the metrics.
pub(crate) type PartOutputs = Vec<(Vec<Tensor>, Vec<Tensor>)>;

/// Running values of an epoch: the batch-size-weighted mean loss, each output's when there are
/// several (Keras's `<output>_loss`), and the metrics.
pub(crate) struct Tracker {
    loss: Mean,
    output_losses: Vec<(String, Mean)>,
    metrics: Vec<OutputMetrics>,
}

impl Tracker {
    /// A tracker for `compiled`'s outputs (shaped `output_shapes`, batch included).
    pub fn new(compiled: &Compiled, output_shapes: &[Vec<usize>]) -> Result<Self> {
        let output_losses = match &compiled.outputs[..] {
            [_] => Vec::new(),
            outputs => outputs
                .iter()
                .map(|o| (format!("{}_loss", o.name), Mean::new("loss")))
                .collect(),
        };
        Ok(Tracker {
            loss: Mean::new("loss"),
            output_losses,
            metrics: compiled.make_metrics(output_shapes)?,
        })
    }

    /// Adds a batch of `batch` samples: its losses, and the targets and predictions of each
    /// part the batch ran in to the metrics.
    pub fn update(
        &mut self,
        losses: &BatchLosses,
        batch: usize,
        parts: &[(Vec<Tensor>, Vec<Tensor>)],
    ) -> Result<()> {
        self.loss
            .update_state(losses.total.to_scalar::<f32>()? as f64, batch as f64);
        for ((_, mean), value) in self.output_losses.iter_mut().zip(&losses.outputs) {
            mean.update_state(*value, batch as f64);
        }
        for (ys, y_preds) in parts {
            for ((output, y), y_pred) in self.metrics.iter_mut().zip(ys).zip(y_preds) {
                for m in &mut output.metrics {
                    m.update_state(y, y_pred)?;
                }
            }
        }
        Ok(())
    }

    /// The current values, under `prefix` (`""` or `"val_"`).
    pub fn logs(&self, prefix: &str) -> Logs {
        let mut logs = Logs::new();
        logs.insert(format!("{prefix}loss"), self.loss.result());
        for (name, mean) in &self.output_losses {
            logs.insert(format!("{prefix}{name}"), mean.result());
        }
        for output in &self.metrics {
            for m in &output.metrics {
                logs.insert(format!("{prefix}{}{}", output.prefix, m.name()), m.result());
            }
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
