//! Mean squared error, after `keras/src/losses/losses.py` (`MeanSquaredError`, `mean_squared_error`).

use super::reduction::{
    align_targets, mean_over_last_axis, mean_over_last_axis_then_batch, require_float,
};
use super::Loss;
use crate::Result;
use candle_core::Tensor;
use serde_json::json;

/// `mean(square(y_true - y_pred), axis=-1)`, reduced over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeanSquaredError;

impl MeanSquaredError {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

impl MeanSquaredError {
    /// `square(y_true - y_pred)`, each element.
    fn squared_errors(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        require_float(self.name(), y_pred)?;
        let (y, p) = align_targets(self.name(), y_true, y_pred)?;
        Ok((y - p)?.sqr()?)
    }
}

impl Loss for MeanSquaredError {
    fn name(&self) -> &str {
        "mean_squared_error"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        mean_over_last_axis_then_batch(&self.squared_errors(y_true, y_pred)?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        mean_over_last_axis(&self.squared_errors(y_true, y_pred)?)
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "reduction": "sum_over_batch_size" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn averages_squared_errors_over_samples_and_features() -> Result<()> {
        let y_true = Tensor::new(&[[1f32, 2., 3.], [0., 0., 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[1f32, 0., 4.], [0.5, -0.5, 2.]], &Device::Cpu)?;
        // sample 0: (0 + 4 + 1) / 3 = 5/3; sample 1: (0.25 + 0.25 + 4) / 3 = 1.5; mean: 19/12
        let loss = MeanSquaredError::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!((loss as f64 - 19.0 / 12.0).abs() < 1e-6, "{loss}");
        Ok(())
    }

    #[test]
    fn integer_targets_are_cast_to_the_prediction_dtype() -> Result<()> {
        let y_true = Tensor::new(&[[1u8, 0]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.5f32, 0.5]], &Device::Cpu)?;
        let loss = MeanSquaredError::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert_eq!(loss, 0.25);
        Ok(())
    }

    #[test]
    fn gradient_is_two_errors_over_the_element_count() -> Result<()> {
        // d/dp mean((y - p)²) = 2 (p - y) / N, N = 4.
        let y = [1f32, -2., 0.5, 3.];
        let p = [0f32, 1., 0.5, 2.5];
        let y_true = Tensor::new(&y, &Device::Cpu)?.reshape((2, 2))?;
        let y_pred = Var::from_tensor(&Tensor::new(&p, &Device::Cpu)?.reshape((2, 2))?)?;
        let grads = MeanSquaredError::new()
            .compute(&y_true, y_pred.as_tensor())?
            .backward()?;
        let grad = grads.get(&y_pred).map(|g| g.flatten_all()).transpose()?;
        let grad = grad
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        let expected: Vec<f32> = (0..4).map(|i| 2.0 * (p[i] - y[i]) / 4.0).collect();
        assert_eq!(grad, expected); // [-0.5, 1.5, 0, -0.25]: exact in binary
        Ok(())
    }
}
