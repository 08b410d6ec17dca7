//! A loss function as a metric, after the metric classes of
//! `keras/src/metrics/probabilistic_metrics.py`, `regression_metrics.py` and
//! `hinge_metrics.py` (`BinaryCrossentropy`, `KLDivergence`, `Poisson`, `Hinge`,
//! `MeanAbsolutePercentageError`, `LogCoshError`, `CosineSimilarity`...): each a
//! `MeanMetricWrapper` around the loss function with its default options.

use super::mean_metric_wrapper::{SampleMean, SampleValues};
use crate::losses::Loss;
use crate::Result;
use candle_core::Tensor;

/// A loss's values for the samples of a batch: the loss is the mean of its per-sample values
/// (Keras's "sum_over_batch_size"), so each sample of the batch is given that mean, which adds
/// to the running mean what the per-sample values would.
pub struct LossValues {
    loss: Box<dyn Loss>,
    sign: f64,
}

impl std::fmt::Debug for LossValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LossValues")
            .field("loss", &self.loss.name())
            .field("sign", &self.sign)
            .finish()
    }
}

impl SampleValues for LossValues {
    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let value = self.loss.compute(&y_true.detach(), &y_pred.detach())?;
        let samples = if y_pred.rank() >= 2 {
            y_pred.dim(0)?
        } else {
            1
        };
        Ok(value.affine(self.sign, 0.0)?.broadcast_as(samples)?)
    }
}

/// The running mean over samples of a loss. The loss must be a mean over samples
/// ([`Loss::averages_over_samples`]), as every Keras loss is.
pub type LossMetric = SampleMean<LossValues>;

impl LossMetric {
    /// The mean of `loss` over the samples seen, logged as `name`.
    pub fn new(name: impl Into<String>, loss: Box<dyn Loss>) -> Self {
        Self::with_values(name, LossValues { loss, sign: 1.0 })
    }

    /// The same metric with the loss's sign turned: Keras's `CosineSimilarity` metric is the
    /// cosine, its loss minus the cosine.
    pub(crate) fn negated(mut self) -> Self {
        self.values.sign = -self.values.sign;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metric;
    use super::*;
    use crate::losses::{self, CosineSimilarity};
    use candle_core::Device;

    #[test]
    fn batches_weigh_by_their_samples() -> Result<()> {
        let cpu = &Device::Cpu;
        let mut hinge = LossMetric::new("hinge", losses::get("hinge")?);
        // Batch 1 (2 samples), signed labels: margins [[0, 0.75], [1.5, 1]] → 0.375 and 1.25.
        hinge.update_state(
            &Tensor::new(&[[-1f32, 1.], [1., -1.]], cpu)?,
            &Tensor::new(&[[-2f32, 0.25], [-0.5, 0.]], cpu)?,
        )?;
        // Batch 2 (1 sample): margins [1, 1] → 1.
        hinge.update_state(
            &Tensor::new(&[[1f32, -1.]], cpu)?,
            &Tensor::new(&[[0f32, 0.]], cpu)?,
        )?;
        assert!((hinge.result() - (0.375 + 1.25 + 1.0) / 3.0).abs() < 1e-7);
        assert_eq!(hinge.name(), "hinge");
        hinge.reset_state();
        assert_eq!(hinge.result(), 0.0);
        Ok(())
    }

    #[test]
    fn cosine_similarity_is_the_cosine() -> Result<()> {
        let cpu = &Device::Cpu;
        // keras: CosineSimilarity()([[0, 1], [1, 1]], [[1, 0], [1, 1]]) = (0 + 1)/2 = 0.5
        let mut cosine =
            LossMetric::new("cosine_similarity", Box::new(CosineSimilarity::new())).negated();
        cosine.update_state(
            &Tensor::new(&[[0f32, 1.], [1., 1.]], cpu)?,
            &Tensor::new(&[[1f32, 0.], [1., 1.]], cpu)?,
        )?;
        assert!((cosine.result() - 0.5).abs() < 1e-6, "{}", cosine.result());
        Ok(())
    }
}
