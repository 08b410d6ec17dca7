//! Binary focal cross-entropy, after `keras/src/losses/losses.py` (`BinaryFocalCrossentropy`,
//! `binary_focal_crossentropy`) and `keras/src/backend/tensorflow/nn.py`
//! (`binary_crossentropy`).

use super::reduction::{
    align_targets, check_label_smoothing, mean_over_last_axis, mean_over_last_axis_then_batch,
    require_float,
};
use super::{Loss, EPSILON};
use crate::{Error, Result};
use candle_core::Tensor;
use rkeras_layers::ActivationFn;
use serde_json::json;

/// `mean(w·(1 - p_t)^gamma·bce, axis=-1)`, reduced over the batch, where `bce` is the binary
/// cross-entropy of each element, `p_t = y·p + (1-y)·(1-p)` and, with
/// [`apply_class_balancing`](Self::apply_class_balancing), `w = y·alpha + (1-y)·(1-alpha)`
/// (else 1).
///
/// Probabilities are clipped to `[1e-7, 1 - 1e-7]` in `bce` (not in `p_t`). With
/// [`from_logits`](Self::from_logits), `p = sigmoid(x)` and `bce` takes the stable form of the
/// logits, as Keras on TensorFlow does (its sigmoid output keeps its logits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryFocalCrossentropy {
    apply_class_balancing: bool,
    alpha: f64,
    gamma: f64,
    from_logits: bool,
    label_smoothing: f64,
}

impl Default for BinaryFocalCrossentropy {
    fn default() -> Self {
        Self {
            apply_class_balancing: false,
            alpha: 0.25,
            gamma: 2.0,
            from_logits: false,
            label_smoothing: 0.0,
        }
    }
}

impl BinaryFocalCrossentropy {
    /// Keras's defaults: no class balancing (alpha 0.25 when on), gamma 2, probabilities, no
    /// label smoothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to weigh class 1 by `alpha` and class 0 by `1 - alpha`.
    pub fn apply_class_balancing(mut self, apply: bool) -> Self {
        self.apply_class_balancing = apply;
        self
    }

    /// The weight of class 1 under class balancing.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// The focusing exponent (>= 0; 0 is plain binary cross-entropy).
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
}

binary_crossentropy_builders!(BinaryFocalCrossentropy);

/// Every elementwise quantity of the loss: `1 - p_t`, the cross-entropy, the class weights
/// and the derivatives of `1 - p_t` and of the cross-entropy with respect to the predictions.
struct Terms {
    one_minus_p_t: Tensor,
    bce: Tensor,
    weight: Option<Tensor>,
    d_one_minus_p_t: Tensor,
    d_bce: Tensor,
}

impl BinaryFocalCrossentropy {
    fn terms(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Terms> {
        require_float(self.name(), y_pred)?;
        check_label_smoothing(self.name(), self.label_smoothing)?;
        if !(self.gamma >= 0.0 && self.gamma.is_finite()) {
            return Err(Error::Config(format!(
                "binary_focal_crossentropy: gamma must be a number >= 0, got {}",
                self.gamma
            )));
        }
        let (y, x) = align_targets(self.name(), y_true, y_pred)?;
        let y = y.affine(1.0 - self.label_smoothing, 0.5 * self.label_smoothing)?;
        let not_y = y.affine(-1.0, 1.0)?;
        let (p, bce, d_bce, d_p) = if self.from_logits {
            // p = sigmoid(x); bce = max(x, 0) - x·y + log(1 + exp(-|x|)), d/dx = p - y.
            let p = (x.neg()?.exp()? + 1.0)?.recip()?;
            let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
            let bce = ((x.relu()? - (&x * &y)?)? + tail)?;
            let d_p = (&p * p.affine(-1.0, 1.0)?)?;
            let d_bce = (&p - &y)?;
            (p, bce, d_bce, d_p)
        } else {
            // bce of the clipped p; d/dp = (p - y) / (p (1 - p)) inside the clip range, else 0.
            let clipped = x.clamp(EPSILON, 1.0 - EPSILON)?;
            let not_clipped = clipped.affine(-1.0, 1.0)?;
            let bce = ((&y * clipped.log()?)? + (&not_y * not_clipped.log()?)?)?.neg()?;
            let inside = (x.ge(EPSILON)?.to_dtype(x.dtype())?
                * x.le(1.0 - EPSILON)?.to_dtype(x.dtype())?)?;
            let d_bce = (((&clipped - &y)? / (clipped * not_clipped)?)? * inside)?;
            let d_p = x.ones_like()?;
            (x, bce, d_bce, d_p)
        };
        // 1 - p_t = y + p - 2yp, of derivative (1 - 2y)·∂p/∂x
        let one_minus_p_t = ((&y + &p)? - (&y * &p)?.affine(2.0, 0.0)?)?;
        let d_one_minus_p_t = (y.affine(-2.0, 1.0)? * d_p)?;
        let weight = if self.apply_class_balancing {
            Some((y.affine(self.alpha, 0.0)? + not_y.affine(1.0 - self.alpha, 0.0)?)?)
        } else {
            None
        };
        Ok(Terms {
            one_minus_p_t,
            bce,
            weight,
            d_one_minus_p_t,
            d_bce,
        })
    }

    /// `w·(1 - p_t)^gamma·bce`, each element.
    fn elements(&self, terms: &Terms) -> Result<Tensor> {
        let focal = (terms.one_minus_p_t.powf(self.gamma)? * &terms.bce)?;
        Ok(match &terms.weight {
            Some(weight) => (focal * weight)?,
            None => focal,
        })
    }
}

impl Loss for BinaryFocalCrossentropy {
    fn name(&self) -> &str {
        "binary_focal_crossentropy"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let terms = self.terms(y_true, y_pred)?;
        mean_over_last_axis_then_batch(&self.elements(&terms)?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        let terms = self.terms(y_true, y_pred)?;
        mean_over_last_axis(&self.elements(&terms)?)
    }

    /// `w·(gamma·(1-p_t)^(gamma-1)·(1-2y)·∂p/∂x·bce + (1-p_t)^gamma·∂bce/∂x) / N` for `N`
    /// elements, with `∂p/∂x = p(1-p)` for logits, 1 for probabilities.
    fn value_and_gradient(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        let count = y_pred.elem_count();
        if count == 0 {
            return Ok(None);
        }
        let terms = self.terms(&y_true.detach(), &y_pred.detach())?;
        let loss = self.elements(&terms)?.mean_all()?;
        let q = &terms.one_minus_p_t;
        let mut grad = (q.powf(self.gamma)? * &terms.d_bce)?;
        if self.gamma != 0.0 {
            let focal_slope = q.powf(self.gamma - 1.0)?.affine(self.gamma, 0.0)?;
            grad = (grad + ((focal_slope * &terms.d_one_minus_p_t)? * &terms.bce)?)?;
        }
        if let Some(weight) = &terms.weight {
            grad = (grad * weight)?;
        }
        let grad = (grad / count as f64)?;
        Ok(Some((loss, grad.reshape(y_pred.dims())?)))
    }

    fn on_logits_of(&self, activation: ActivationFn) -> Option<Box<dyn Loss>> {
        (activation == ActivationFn::Sigmoid && !self.from_logits)
            .then(|| Box::new(self.from_logits(true)) as Box<dyn Loss>)
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "name": self.name(),
            "reduction": "sum_over_batch_size",
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": -1,
            "apply_class_balancing": self.apply_class_balancing,
            "alpha": self.alpha,
            "gamma": self.gamma,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_gradient_matches;
    use super::*;
    use candle_core::Device;

    fn bce(y: f64, p: f64) -> f64 {
        -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
    }

    #[test]
    fn matches_the_keras_docstring_example() -> Result<()> {
        // keras: binary_focal_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], gamma=2)
        // = [0.330, 0.206]: (1 - p_t)² = 0.36 for the three elements with p_t = 0.4 and 0.16
        // for the one with p_t = 0.6.
        let sample_0 = (0.36 * bce(0.0, 0.6) + 0.36 * bce(1.0, 0.4)) / 2.0;
        let sample_1 = (0.16 * bce(0.0, 0.4) + 0.36 * bce(0.0, 0.6)) / 2.0;
        assert!((sample_0 - 0.330).abs() < 1e-3 && (sample_1 - 0.206).abs() < 1e-3);
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[0f32, 1.], [0., 0.]], cpu)?;
        let y_pred = Tensor::new(&[[0.6f32, 0.4], [0.4, 0.6]], cpu)?;
        let loss = BinaryFocalCrossentropy::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        let expected = (sample_0 + sample_1) / 2.0;
        assert!(
            (loss as f64 - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
        // With class balancing: class 1 weighs 0.25, class 0 0.75.
        let balanced = BinaryFocalCrossentropy::new()
            .apply_class_balancing(true)
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        let expected = ((0.75 * 0.36 * bce(0.0, 0.6) + 0.25 * 0.36 * bce(1.0, 0.4)) / 2.0
            + 0.75 * sample_1)
            / 2.0;
        assert!(
            (balanced as f64 - expected).abs() < 1e-6,
            "{balanced} vs {expected}"
        );
        Ok(())
    }

    #[test]
    fn logits_give_the_loss_of_their_sigmoid() -> Result<()> {
        let cpu = &Device::Cpu;
        let y_true = Tensor::new(&[[0f32, 1., 1.]], cpu)?;
        let logits = [0.5f64, -1.0, 2.0];
        let probabilities: Vec<f32> = logits
            .iter()
            .map(|x| (1.0 / (1.0 + (-x).exp())) as f32)
            .collect();
        let from_logits = BinaryFocalCrossentropy::new()
            .from_logits(true)
            .compute(&y_true, &Tensor::new(&[logits.map(|x| x as f32)], cpu)?)?
            .to_scalar::<f32>()?;
        let from_probabilities = BinaryFocalCrossentropy::new()
            .compute(
                &y_true,
                &Tensor::new(probabilities.as_slice(), cpu)?.unsqueeze(0)?,
            )?
            .to_scalar::<f32>()?;
        assert!((from_logits - from_probabilities).abs() < 1e-6);
        // A logit of 100 for class 0 stays finite: p_t ≈ 0, (1 - p_t)² ≈ 1, bce = 100.
        let far = BinaryFocalCrossentropy::new()
            .from_logits(true)
            .compute(
                &Tensor::new(&[[0f32]], cpu)?,
                &Tensor::new(&[[100f32]], cpu)?,
            )?
            .to_scalar::<f32>()?;
        assert!((far - 100.0).abs() < 1e-3, "{far}");
        Ok(())
    }

    #[test]
    fn closed_form_gradients() -> Result<()> {
        let y = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
        let p = [0.3, 0.2, 0.9, 0.6, 0.5, 0.05];
        let x = [0.7, -1.2, 2.0, 0.1, -0.4, 3.0];
        for focal in [
            BinaryFocalCrossentropy::new(),
            BinaryFocalCrossentropy::new()
                .apply_class_balancing(true)
                .alpha(0.4)
                .gamma(1.5)
                .label_smoothing(0.1),
            BinaryFocalCrossentropy::new().gamma(0.0),
        ] {
            assert_gradient_matches(&focal, &y, &p, &[2, 3])?;
            assert_gradient_matches(&focal.from_logits(true), &y, &x, &[3, 2])?;
        }
        Ok(())
    }

    #[test]
    fn bad_options_are_errors() -> Result<()> {
        let cpu = &Device::Cpu;
        let y = Tensor::new(&[[1f32]], cpu)?;
        for focal in [
            BinaryFocalCrossentropy::new().label_smoothing(2.0),
            BinaryFocalCrossentropy::new().gamma(-1.0),
        ] {
            assert!(matches!(focal.compute(&y, &y), Err(Error::Config(_))));
        }
        Ok(())
    }
}
