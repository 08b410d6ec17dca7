//! Categorical cross-entropy, after `keras/src/losses/losses.py` (`CategoricalCrossentropy`,
//! `categorical_crossentropy`) and `keras/src/backend/numpy/nn.py` (`categorical_crossentropy`).

use super::reduction::{
    align_targets, check_label_smoothing, fused_on, require_float, sum_over_last_axis,
    sum_over_last_axis_then_batch,
};
use super::{Loss, EPSILON};
use crate::Result;
use candle_core::{Tensor, D};
use rkeras_layers::ActivationFn;
use serde_json::json;

/// `-sum(y_true · log p, axis=-1)`, reduced over the batch, for one-hot (or soft) targets.
///
/// Probabilities are first normalised by their sum over the last axis and clipped to
/// `[1e-7, 1 - 1e-7]`; with [`from_logits`](Self::from_logits), `log p` is a stable log-softmax.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CategoricalCrossentropy {
    from_logits: bool,
    label_smoothing: f64,
}

impl CategoricalCrossentropy {
    /// Keras's defaults: probabilities, no label smoothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `y_pred` holds logits rather than probabilities.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Smooths one-hot targets: `y·(1 - s) + s / num_classes`, with `s` in `[0, 1]`.
    pub fn label_smoothing(mut self, smoothing: f64) -> Self {
        self.label_smoothing = smoothing;
        self
    }
}

/// `log p` over the last axis, as Keras's backends compute it: log-softmax of logits, or the log
/// of probabilities normalised by their sum and clipped to `[1e-7, 1 - 1e-7]`.
pub(crate) fn log_probabilities(y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    if from_logits {
        // The shift cancels out of log-softmax, so it needs no gradient.
        let max = y_pred.max_keepdim(D::Minus1)?.detach();
        let shifted = y_pred.broadcast_sub(&max)?;
        let log_sum_exp = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        Ok(shifted.broadcast_sub(&log_sum_exp)?)
    } else {
        let normalised = y_pred.broadcast_div(&y_pred.sum_keepdim(D::Minus1)?)?;
        Ok(normalised.clamp(EPSILON, 1.0 - EPSILON)?.log()?)
    }
}

impl CategoricalCrossentropy {
    /// `-y·log p`, each element (the targets smoothed).
    fn elements(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        require_float(self.name(), y_pred)?;
        check_label_smoothing(self.name(), self.label_smoothing)?;
        let (mut y, pred) = align_targets(self.name(), y_true, y_pred)?;
        if self.label_smoothing > 0.0 {
            let classes = pred.dims().last().copied().unwrap_or(1) as f64;
            y = y.affine(1.0 - self.label_smoothing, self.label_smoothing / classes)?;
        }
        let log_p = log_probabilities(&pred, self.from_logits)?;
        Ok((y * log_p)?.neg()?)
    }
}

impl Loss for CategoricalCrossentropy {
    fn name(&self) -> &str {
        "categorical_crossentropy"
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

    /// From logits without label smoothing, on f32 CPU tensors: the fused kernel.
    fn value_and_gradient(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        if self.label_smoothing != 0.0 || !fused_on(self.from_logits, y_pred) {
            return Ok(None);
        }
        let (y, pred) = align_targets(self.name(), y_true, y_pred)?;
        let (loss, grad) =
            rkeras_ops::softmax_cross_entropy_with_gradient(&y.detach(), &pred.detach())?;
        Ok(Some((loss, grad.reshape(y_pred.dims())?)))
    }

    fn on_logits_of(&self, activation: ActivationFn) -> Option<Box<dyn Loss>> {
        (activation == ActivationFn::Softmax && !self.from_logits)
            .then(|| Box::new(self.from_logits(true)) as Box<dyn Loss>)
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "name": self.name(),
            "reduction": "sum_over_batch_size",
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": -1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn matches_the_keras_docstring_example() -> Result<()> {
        // keras: categorical_crossentropy([[0,1,0],[0,0,1]], [[.05,.95,0],[.1,.8,.1]]) = [0.0513, 2.303]
        let y_true = Tensor::new(&[[0f32, 1., 0.], [0., 0., 1.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.05f32, 0.95, 0.], [0.1, 0.8, 0.1]], &Device::Cpu)?;
        let expected = (-(0.95f64).ln() + -(0.1f64).ln()) / 2.0; // (0.0513 + 2.3026) / 2
        let loss = CategoricalCrossentropy::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!(close(loss as f64, expected, 1e-6), "{loss} vs {expected}");
        Ok(())
    }

    #[test]
    fn probabilities_are_normalised_and_zero_is_clipped() -> Result<()> {
        let y_true = Tensor::new(&[[1f32, 0.]], &Device::Cpu)?;
        let unnormalised = Tensor::new(&[[1f32, 3.]], &Device::Cpu)?;
        // p = [0.25, 0.75]: -ln 0.25
        let loss = CategoricalCrossentropy::new().compute(&y_true, &unnormalised)?;
        assert!(close(
            loss.to_scalar::<f32>()? as f64,
            -(0.25f64).ln(),
            1e-6
        ));
        let certain_and_wrong = Tensor::new(&[[0f32, 1.]], &Device::Cpu)?;
        let loss = CategoricalCrossentropy::new().compute(&y_true, &certain_and_wrong)?;
        assert!(close(
            loss.to_scalar::<f32>()? as f64,
            -(1e-7f64).ln(),
            1e-5
        ));
        Ok(())
    }

    #[test]
    fn logits_use_a_stable_log_softmax() -> Result<()> {
        let y_true = Tensor::new(&[[0f32, 1., 0.], [1., 0., 0.]], &Device::Cpu)?;
        let logits = Tensor::new(&[[1f32, 2., 3.], [1000., -1000., 0.]], &Device::Cpu)?;
        // sample 0: -(2 - ln(e + e² + e³)); sample 1: -(1000 - 1000 - ln(1 + e^-2000 + e^-1000)) = 0
        let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        let expected = ((lse - 2.0) + 0.0) / 2.0;
        let loss = CategoricalCrossentropy::new()
            .from_logits(true)
            .compute(&y_true, &logits)?;
        let loss = loss.to_scalar::<f32>()? as f64;
        assert!(close(loss, expected, 1e-6), "{loss} vs {expected}");
        Ok(())
    }

    #[test]
    fn label_smoothing_spreads_mass_over_the_classes() -> Result<()> {
        let y_true = Tensor::new(&[[0f32, 1.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.2f32, 0.8]], &Device::Cpu)?;
        // s = 0.1, 2 classes: targets [0.05, 0.95]
        let expected = -(0.05 * 0.2f64.ln() + 0.95 * 0.8f64.ln());
        let loss = CategoricalCrossentropy::new()
            .label_smoothing(0.1)
            .compute(&y_true, &y_pred)?;
        assert!(close(loss.to_scalar::<f32>()? as f64, expected, 1e-6));
        Ok(())
    }
}
