//! A metric that averages per-sample values, after `keras/src/metrics/reduction_metrics.py`
//! (`MeanMetricWrapper`, `reduce_to_samplewise_values`).

use super::sample_values::SampleValuesFn;
use super::{Mean, Metric};
use crate::Result;
use candle_core::{DType, Device, Tensor};

/// What a [`SampleMean`] averages: values for each sample of a batch (Keras's metric
/// function, with its options).
pub trait SampleValues: Send {
    /// The values of a batch: one per sample, or more (averaged per sample).
    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor>;
}

impl SampleValues for SampleValuesFn {
    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        self(y_true, y_pred)
    }
}

/// Averages the values of `V`: each sample's values are first averaged over their trailing
/// axes, then samples count one each, so batches weigh by their size.
#[derive(Debug, Clone)]
pub struct SampleMean<V> {
    mean: Mean,
    pub(crate) values: V,
}

/// Averages a function's values (Keras's `MeanMetricWrapper`).
pub type MeanMetricWrapper = SampleMean<SampleValuesFn>;

impl MeanMetricWrapper {
    /// A metric logged as `name` that averages `values`.
    pub fn new(name: impl Into<String>, values: SampleValuesFn) -> Self {
        Self::with_values(name, values)
    }
}

impl<V: SampleValues> SampleMean<V> {
    /// A metric logged as `name` that averages what `values` gives.
    pub fn with_values(name: impl Into<String>, values: V) -> Self {
        Self {
            mean: Mean::new(name),
            values,
        }
    }

    /// The same metric logged as `name` (Keras's `name=` argument).
    pub fn with_name(self, name: impl Into<String>) -> Self {
        Self::with_values(name, self.values)
    }
}

impl<V: SampleValues> Metric for SampleMean<V> {
    fn name(&self) -> &str {
        self.mean.name()
    }

    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let values = self.values.values(y_true, y_pred)?;
        let (per_sample, samples) = match values.rank() {
            0 => (values.reshape(1)?, 1),
            1 => (values.clone(), values.dim(0)?),
            _ => (values.flatten_from(1)?.mean(1)?, values.dim(0)?),
        };
        let per_sample = per_sample
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        self.mean.add_sum(per_sample.iter().sum(), samples as f64);
        Ok(())
    }

    fn result(&self) -> f64 {
        self.mean.result()
    }

    fn reset_state(&mut self) {
        self.mean.reset_state();
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample_values::{binary_accuracy, mean_absolute_error};
    use super::*;

    #[test]
    fn two_batches_of_different_sizes_weigh_by_sample() -> Result<()> {
        let cpu = &Device::Cpu;
        let mut mae = MeanMetricWrapper::new("mae", mean_absolute_error);
        // batch 1, 2 samples: per-sample means (1 + 0)/2 = 0.5 and (2 + 2)/2 = 2
        mae.update_state(
            &Tensor::new(&[[1f32, 0.], [0., 0.]], cpu)?,
            &Tensor::new(&[[0f32, 0.], [2., -2.]], cpu)?,
        )?;
        // batch 2, 1 sample: (0.5 + 0.5)/2 = 0.5
        mae.update_state(
            &Tensor::new(&[[1f32, 1.]], cpu)?,
            &Tensor::new(&[[0.5f32, 1.5]], cpu)?,
        )?;
        assert_eq!(mae.result(), (0.5 + 2.0 + 0.5) / 3.0);
        assert_eq!(mae.name(), "mae");
        mae.reset_state();
        assert_eq!(mae.result(), 0.0);

        let mut accuracy = MeanMetricWrapper::new("accuracy", binary_accuracy);
        // 3 samples, 2 right; then 1 sample, right: 3/4
        accuracy.update_state(
            &Tensor::new(&[1f32, 0., 1.], cpu)?,
            &Tensor::new(&[[0.9f32], [0.1], [0.4]], cpu)?,
        )?;
        accuracy.update_state(&Tensor::new(&[0f32], cpu)?, &Tensor::new(&[[0.2f32]], cpu)?)?;
        assert_eq!(accuracy.result(), 0.75);
        Ok(())
    }
}
