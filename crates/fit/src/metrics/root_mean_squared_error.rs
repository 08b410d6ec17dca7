//! Root mean squared error, after `keras/src/metrics/regression_metrics.py`
//! (`RootMeanSquaredError`).

use super::mean_metric_wrapper::MeanMetricWrapper;
use super::sample_values::mean_squared_error;
use super::Metric;
use crate::Result;
use candle_core::Tensor;

/// `sqrt` of the running mean squared error (the mean over samples of each sample's mean
/// squared error), logged as `root_mean_squared_error`.
#[derive(Debug, Clone)]
pub struct RootMeanSquaredError {
    squared: MeanMetricWrapper,
}

impl RootMeanSquaredError {
    /// The metric under Keras's default name.
    pub fn new() -> Self {
        Self {
            squared: MeanMetricWrapper::new("root_mean_squared_error", mean_squared_error),
        }
    }

    /// The same metric logged as `name` (Keras's `name=` argument).
    pub fn with_name(self, name: impl Into<String>) -> Self {
        Self {
            squared: self.squared.with_name(name),
        }
    }
}

impl Default for RootMeanSquaredError {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for RootMeanSquaredError {
    fn name(&self) -> &str {
        self.squared.name()
    }

    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        self.squared.update_state(y_true, y_pred)
    }

    fn result(&self) -> f64 {
        self.squared.result().sqrt()
    }

    fn reset_state(&mut self) {
        self.squared.reset_state();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_keras_docstring_example() -> Result<()> {
        let cpu = &Device::Cpu;
        // keras: [[0, 1], [0, 0]] vs [[1, 1], [0, 0]] gives 0.5 (sqrt of (0.5 + 0)/2);
        // then [[0, 1], [0, 0]] vs [[1, 1], [0, 0]] again: still 0.5.
        let mut rmse = RootMeanSquaredError::new();
        for _ in 0..2 {
            rmse.update_state(
                &Tensor::new(&[[0f32, 1.], [0., 0.]], cpu)?,
                &Tensor::new(&[[1f32, 1.], [0., 0.]], cpu)?,
            )?;
            assert_eq!(rmse.result(), 0.5);
        }
        // A batch of one sample with squared errors (4 + 0)/2 = 2: sqrt((0.5 + 0 + 0.5 + 0 + 2)/5)
        rmse.update_state(
            &Tensor::new(&[[0f32, 0.]], cpu)?,
            &Tensor::new(&[[2f32, 0.]], cpu)?,
        )?;
        assert!((rmse.result() - (3.0f64 / 5.0).sqrt()).abs() < 1e-12);
        assert_eq!(rmse.name(), "root_mean_squared_error");
        Ok(())
    }
}
