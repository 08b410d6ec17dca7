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

/// Keras's display order: training keys sorted, then `val_*` keys sorted.
pub(crate) fn display_order(logs: &Logs) -> Vec<(String, f64)> {
    let (val, train): (Vec<_>, Vec<_>) = logs
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .partition(|(k, _)| k.starts_with("val_"));
    train.into_iter().chain(val).collect()
}
