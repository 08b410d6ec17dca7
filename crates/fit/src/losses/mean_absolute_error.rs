//! Mean absolute error, after `keras/src/losses/losses.py` (`MeanAbsoluteError`, `mean_absolute_error`).

use super::reduction::{
    align_targets, mean_over_last_axis, mean_over_last_axis_then_batch, require_float,
};
use super::Loss;
use crate::Result;
use candle_core::Tensor;
use serde_json::json;

/// `mean(abs(y_true - y_pred), axis=-1)`, reduced over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeanAbsoluteError;

impl MeanAbsoluteError {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

impl MeanAbsoluteError {
    /// `abs(y_true - y_pred)`, each element.
    fn absolute_errors(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        require_float(self.name(), y_pred)?;
        let (y, p) = align_targets(self.name(), y_true, y_pred)?;
        Ok((y - p)?.abs()?)
    }
}

impl Loss for MeanAbsoluteError {
    fn name(&self) -> &str {
        "mean_absolute_error"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        mean_over_last_axis_then_batch(&self.absolute_errors(y_true, y_pred)?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        mean_over_last_axis(&self.absolute_errors(y_true, y_pred)?)
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "reduction": "sum_over_batch_size" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn averages_absolute_errors_over_samples_and_features() -> Result<()> {
        let y_true = Tensor::new(&[[1f32, 2.], [0., 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[1.5f32, 0.], [-0.25, 1.]], &Device::Cpu)?;
        // sample 0: (0.5 + 2) / 2 = 1.25; sample 1: (0.25 + 1) / 2 = 0.625; mean: 0.9375
        let loss = MeanAbsoluteError::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert_eq!(loss, 0.9375);
        Ok(())
    }

    #[test]
    fn rank_one_tensors_are_one_sample() -> Result<()> {
        let y_true = Tensor::new(&[1f32, 2., 3.], &Device::Cpu)?;
        let y_pred = Tensor::new(&[2f32, 2., 1.], &Device::Cpu)?;
        // (1 + 0 + 2) / 3 = 1
        let loss = MeanAbsoluteError::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert_eq!(loss, 1.0);
        Ok(())
    }
}
