//! The running loss and metrics of an epoch, and the order Keras displays them in.

use candle_core::Tensor;

use crate::callbacks::Logs;
use crate::metrics::{Mean, Metric};
use crate::Result;

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

    /// Adds a batch of `batch` samples: its loss, and its prediction in the parts the batch ran
    /// in (consecutive rows, in order) with its `targets` (gathered only when a metric needs
    /// them) to the metrics.
    pub fn update(
        &mut self,
        loss: f64,
        batch: usize,
        y_pred_parts: &[Tensor],
        targets: impl FnOnce() -> Result<Tensor>,
    ) -> Result<()> {
        self.loss.update_state(loss, batch as f64);
        if self.metrics.is_empty() {
            return Ok(());
        }
        let y = targets()?;
        let mut start = 0;
        for y_pred in y_pred_parts {
            let rows = y_pred.dim(0)?;
            let y_part = y.narrow(0, start, rows)?;
            for m in &mut self.metrics {
                m.update_state(&y_part, y_pred)?;
            }
            start += rows;
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
