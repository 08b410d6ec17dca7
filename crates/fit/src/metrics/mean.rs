//! The weighted running mean, after `keras/src/metrics/reduction_metrics.py` (`Mean`).

/// `total / count` over everything seen since the last reset, each value weighted (by its batch
/// size in the training loop, as `keras/src/backend/torch/trainer.py` weights the loss tracker).
#[derive(Debug, Clone, PartialEq)]
pub struct Mean {
    name: String,
    total: f64,
    count: f64,
}

impl Mean {
    /// An empty mean with the given log key, e.g. "loss".
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            total: 0.0,
            count: 0.0,
        }
    }

    /// The log key.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `value` with weight `weight` (e.g. a batch's mean loss and its batch size).
    pub fn update_state(&mut self, value: f64, weight: f64) {
        self.total += value * weight;
        self.count += weight;
    }

    /// Adds `count` samples whose values sum to `sum`.
    pub fn add_sum(&mut self, sum: f64, count: f64) {
        self.total += sum;
        self.count += count;
    }

    /// The weighted mean, or 0 before any update (Keras's `divide_no_nan`).
    pub fn result(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }

    /// Forgets everything seen.
    pub fn reset_state(&mut self) {
        self.total = 0.0;
        self.count = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_batches_by_their_size() {
        let mut loss = Mean::new("loss");
        assert_eq!(loss.result(), 0.0);
        loss.update_state(0.5, 4.0); // batch of 4 with mean 0.5
        loss.update_state(2.0, 1.0); // batch of 1 with mean 2
        assert_eq!(loss.result(), (0.5 * 4.0 + 2.0) / 5.0); // 0.8
        loss.add_sum(3.0, 5.0);
        assert_eq!(loss.result(), (2.0 + 2.0 + 3.0) / 10.0);
        loss.reset_state();
        assert_eq!(loss.result(), 0.0);
        assert_eq!(loss.name(), "loss");
    }
}
