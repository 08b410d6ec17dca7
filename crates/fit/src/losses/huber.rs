//! Huber loss, after `keras/src/losses/losses.py` (`Huber`, `huber`).

use super::reduction::{
    align_targets, mean_over_last_axis, mean_over_last_axis_then_batch, require_float,
};
use super::Loss;
use crate::{Error, Result};
use candle_core::Tensor;
use serde_json::json;

/// With `e = y_pred - y_true`: `0.5·e²` where `|e| <= delta`, else `delta·|e| - 0.5·delta²`;
/// averaged over the last axis, then reduced over the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Huber {
    delta: f64,
}

impl Default for Huber {
    fn default() -> Self {
        Self { delta: 1.0 }
    }
}

impl Huber {
    /// Keras's default: `delta = 1.0`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the loss turns from quadratic to linear; must be positive.
    pub fn delta(mut self, delta: f64) -> Self {
        self.delta = delta;
        self
    }
}

impl Huber {
    /// The quadratic or linear piece, each element.
    fn elements(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        require_float(self.name(), y_pred)?;
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            return Err(Error::Config(format!(
                "huber_loss: delta must be a positive number, got {}",
                self.delta
            )));
        }
        let (y, p) = align_targets(self.name(), y_true, y_pred)?;
        let error = (p - y)?;
        let abs_error = error.abs()?;
        let quadratic = error.sqr()?.affine(0.5, 0.0)?;
        let linear = abs_error.affine(self.delta, -0.5 * self.delta * self.delta)?;
        let small = abs_error.le(self.delta)?;
        Ok(small.where_cond(&quadratic, &linear)?)
    }
}

impl Loss for Huber {
    fn name(&self) -> &str {
        "huber_loss"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        mean_over_last_axis_then_batch(&self.elements(y_true, y_pred)?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        mean_over_last_axis(&self.elements(y_true, y_pred)?)
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "reduction": "sum_over_batch_size", "delta": self.delta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_keras_docstring_example() -> Result<()> {
        // keras: huber([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) = 0.155 (both samples)
        // every |e| <= 1: sample 0 (0.18 + 0.18) / 2 = 0.18; sample 1 (0.08 + 0.18) / 2 = 0.13
        let y_true = Tensor::new(&[[0f32, 1.], [0., 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.6f32, 0.4], [0.4, 0.6]], &Device::Cpu)?;
        let loss = Huber::new().compute(&y_true, &y_pred)?.to_scalar::<f32>()?;
        assert!((loss as f64 - 0.155).abs() < 1e-6, "{loss}");
        Ok(())
    }

    #[test]
    fn large_errors_are_linear_in_delta() -> Result<()> {
        let y_true = Tensor::new(&[[0f32, 0., 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[3f32, -0.5, 2.]], &Device::Cpu)?;
        // delta 2: 2·3 - 2 = 4; 0.5·0.25 = 0.125; |2| <= 2 so 0.5·4 = 2; mean 6.125/3
        let loss = Huber::new()
            .delta(2.0)
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!((loss as f64 - 6.125 / 3.0).abs() < 1e-6, "{loss}");
        assert!(matches!(
            Huber::new().delta(0.0).compute(&y_true, &y_pred),
            Err(Error::Config(_))
        ));
        Ok(())
    }
}
