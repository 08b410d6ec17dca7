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

/// Keras's display order: training keys sorted, then `val_*` keys sorted.
pub(crate) fn display_order(logs: &Logs) -> Vec<(String, f64)> {
    let (val, train): (Vec<_>, Vec<_>) = logs
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .partition(|(k, _)| k.starts_with("val_"));
    train.into_iter().chain(val).collect()
}
