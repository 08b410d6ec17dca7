//! Kullback-Leibler divergence, after `keras/src/losses/losses.py` (`KLDivergence`, `kl_divergence`).

use super::reduction::{
    align_targets, require_float, sum_over_last_axis, sum_over_last_axis_then_batch,
};
use super::{Loss, EPSILON};
use crate::Result;
use candle_core::Tensor;
use serde_json::json;

/// `sum(y · log(y / p), axis=-1)` with both clipped to `[1e-7, 1]`, reduced over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KLDivergence;

impl KLDivergence {
    /// The loss (it has no options).
    pub fn new() -> Self {
        Self
    }
}

impl KLDivergence {
    /// `y · log(y / p)`, each element, both clipped.
    fn elements(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        require_float(self.name(), y_pred)?;
        let (y, p) = align_targets(self.name(), y_true, y_pred)?;
        let y = y.clamp(EPSILON, 1.0)?;
        let p = p.clamp(EPSILON, 1.0)?;
        let ratio = (&y / p)?;
        Ok((y * ratio.log()?)?)
    }
}

impl Loss for KLDivergence {
    fn name(&self) -> &str {
        "kl_divergence"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        sum_over_last_axis_then_batch(&self.elements(y_true, y_pred)?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        sum_over_last_axis(&self.elements(y_true, y_pred)?)
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
    fn sums_over_classes_and_averages_over_samples_with_clipping() -> Result<()> {
        let y_true = Tensor::new(&[[0.5f32, 0.5], [1., 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.25f32, 0.75], [0.5, 0.]], &Device::Cpu)?;
        // sample 0: 0.5 ln 2 + 0.5 ln(2/3)
        // sample 1: 1 · ln(1/0.5) + 1e-7 · ln(1e-7/1e-7) = ln 2
        let sample_0 = 0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln();
        let expected = (sample_0 + 2f64.ln()) / 2.0;
        let loss = KLDivergence::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!(
            (loss as f64 - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
        Ok(())
    }
}
