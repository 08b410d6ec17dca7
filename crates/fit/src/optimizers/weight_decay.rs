//! Keras's decoupled weight decay (`BaseOptimizer._apply_weight_decay`), applied before each
//! update: `variable - variable · weight_decay · learning_rate`.

use super::operand::Operand;
use candle_core::Result;

/// The weight decay of one update, in `f32` as Keras computes it in the variable's dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WeightDecay {
    rate: f32,
    learning_rate: f32,
}

impl WeightDecay {
    /// The decay by `rate` in an update at `learning_rate`.
    pub(crate) fn new(rate: f64, learning_rate: f64) -> Self {
        Self {
            rate: rate as f32,
            learning_rate: learning_rate as f32,
        }
    }

    /// The decayed weight: one element on the host, a whole variable elsewhere.
    #[inline(always)]
    pub(crate) fn apply<T: Operand>(&self, weight: &T) -> Result<T> {
        weight.sub(&weight.scale(self.rate)?.scale(self.learning_rate)?)
    }
}
