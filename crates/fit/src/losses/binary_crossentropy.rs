//! Binary cross-entropy, after `keras/src/losses/losses.py` (`BinaryCrossentropy`,
//! `binary_crossentropy`) and `keras/src/backend/numpy/nn.py` (`binary_crossentropy`).

use super::reduction::{
    align_targets, check_label_smoothing, mean_over_last_axis, mean_over_last_axis_then_batch,
    require_float,
};
use super::{Loss, EPSILON};
use crate::Result;
use candle_core::{DType, Tensor};
use rkeras_layers::ActivationFn;
use serde_json::json;

/// `mean(-(y·log p + (1-y)·log(1-p)), axis=-1)`, reduced over the batch.
///
/// Probabilities are clipped to `[1e-7, 1 - 1e-7]` first, as Keras's backends do. With
/// [`from_logits`](Self::from_logits) the predictions are logits `x` and the loss uses the stable
/// form `max(x, 0) - x·y + log(1 + exp(-|x|))`, finite for any logit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BinaryCrossentropy {
    from_logits: bool,
    label_smoothing: f64,
}

impl BinaryCrossentropy {
    /// Keras's defaults: probabilities, no label smoothing.
    pub fn new() -> Self {
        Self::default()
    }
}

binary_crossentropy_builders!(BinaryCrossentropy);

impl BinaryCrossentropy {
    /// Whether a fused kernel computes this loss on `pred`: no smoothing, f32.
    fn has_kernel(&self, pred: &Tensor) -> bool {
        self.label_smoothing == 0.0 && pred.dtype() == DType::F32 && pred.elem_count() > 0
    }

    /// `kernel(y_true, x)` on the aligned, detached operands where a CPU kernel applies, its
    /// gradient in the shape of `x`.
    fn by_kernel(
        &self,
        y_true: &Tensor,
        x: &Tensor,
        kernel: fn(&Tensor, &Tensor) -> candle_core::Result<(Tensor, Tensor)>,
    ) -> Result<Option<(Tensor, Tensor)>> {
        let (y, aligned) = align_targets(self.name(), y_true, x)?;
        if !self.has_kernel(&aligned) || !rkeras_ops::kernels_on(aligned.device()) {
            return Ok(None);
        }
        let (loss, grad) = kernel(&y.detach(), &aligned.detach())?;
        Ok(Some((loss, grad.reshape(x.dims())?)))
    }
}

impl BinaryCrossentropy {
    /// The cross-entropy of each element of the aligned targets `y` and predictions `pred`,
    /// composed of candle ops.
    fn elements(&self, mut y: Tensor, pred: &Tensor) -> Result<Tensor> {
        if self.label_smoothing > 0.0 {
            y = y.affine(1.0 - self.label_smoothing, 0.5 * self.label_smoothing)?;
        }
        let elementwise = if self.from_logits {
            // max(x, 0) - x·y + log(1 + exp(-|x|))
            let softplus_tail = (pred.abs()?.neg()?.exp()? + 1.0)?.log()?;
            ((pred.relu()? - (pred * &y)?)? + softplus_tail)?
        } else {
            let p = pred.clamp(EPSILON, 1.0 - EPSILON)?;
            let log_p = p.log()?;
            let log_not_p = p.affine(-1.0, 1.0)?.log()?;
            let not_y = y.affine(-1.0, 1.0)?;
            ((&y * log_p)? + (not_y * log_not_p)?)?.neg()?
        };
        Ok(elementwise)
    }
}

impl Loss for BinaryCrossentropy {
    fn name(&self) -> &str {
        "binary_crossentropy"
    }

    fn averages_over_samples(&self) -> bool {
        true
    }

    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        require_float(self.name(), y_pred)?;
        check_label_smoothing(self.name(), self.label_smoothing)?;
        let (y, pred) = align_targets(self.name(), y_true, y_pred)?;
        if !self.from_logits && self.has_kernel(&pred) {
            // Clip, both logarithms and the mean in one pass each way.
            return Ok(rkeras_ops::binary_cross_entropy(&y, &pred)?);
        }
        mean_over_last_axis_then_batch(&self.elements(y, &pred)?)
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Option<Tensor>> {
        require_float(self.name(), y_pred)?;
        check_label_smoothing(self.name(), self.label_smoothing)?;
        let (y, pred) = align_targets(self.name(), y_true, y_pred)?;
        mean_over_last_axis(&self.elements(y, &pred)?)
    }

    fn value_and_gradient(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<Option<(Tensor, Tensor)>> {
        let kernel = if self.from_logits {
            rkeras_ops::sigmoid_cross_entropy_with_gradient
        } else {
            rkeras_ops::binary_cross_entropy_with_gradient
        };
        self.by_kernel(y_true, y_pred, kernel)
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use candle_core::{Device, Var};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    fn bce(y: f64, p: f64) -> f64 {
        -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
    }

    #[test]
    fn matches_the_keras_docstring_example() -> Result<()> {
        // keras: binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) = [0.916, 0.714]
        let y_true = Tensor::new(&[[0f32, 1.], [0., 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.6f32, 0.4], [0.4, 0.6]], &Device::Cpu)?;
        let sample_0 = (bce(0.0, 0.6) + bce(1.0, 0.4)) / 2.0; // (-ln 0.4 - ln 0.4)/2 = 0.9163
        let sample_1 = (bce(0.0, 0.4) + bce(0.0, 0.6)) / 2.0; // (-ln 0.6 - ln 0.4)/2 = 0.7136
        assert!(close(sample_0, 0.916, 1e-3) && close(sample_1, 0.714, 1e-3));
        let loss = BinaryCrossentropy::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!(
            close(loss as f64, (sample_0 + sample_1) / 2.0, 1e-6),
            "{loss}"
        );
        Ok(())
    }

    #[test]
    fn probabilities_of_zero_and_one_are_clipped() -> Result<()> {
        let y_true = Tensor::new(&[[1f32, 0., 1., 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0f32, 1., 1., 0.]], &Device::Cpu)?;
        // p = 0 is clipped to 1e-7 and p = 1 to 1 - 1e-7, which f32 rounds to 1 - 2^-23, so the
        // complement 1 - p of the clipped 1 is 2^-23 = f32::EPSILON.
        // Wrong answers: -ln(1e-7) = 16.12 and -ln(2^-23) = 15.94; right ones: ~1e-7 each.
        let low = f32::EPSILON as f64;
        let expected =
            (-(1e-7f64).ln() + -(low).ln() + -(1.0 - low).ln() + -(1.0 - 1e-7f64).ln()) / 4.0;
        let loss = BinaryCrossentropy::new()
            .compute(&y_true, &y_pred)?
            .to_scalar::<f32>()?;
        assert!(loss.is_finite());
        assert!(close(loss as f64, expected, 1e-5), "{loss} vs {expected}");
        Ok(())
    }

    #[test]
    fn large_logits_stay_finite_and_exact() -> Result<()> {
        let y_true = Tensor::new(&[[1f32, 0., 0., 1.]], &Device::Cpu)?;
        let logits = Tensor::new(&[[100f32, 100., -100., 0.]], &Device::Cpu)?;
        // x=100,y=1: 100 - 100 + ln(1+e^-100) ≈ 0;  x=100,y=0: 100 + ≈0 = 100;
        // x=-100,y=0: 0 - 0 + ≈0 = 0;               x=0,y=1: ln 2.
        let expected = (0.0 + 100.0 + 0.0 + 2f64.ln()) / 4.0;
        let loss = BinaryCrossentropy::new()
            .from_logits(true)
            .compute(&y_true, &logits)?;
        let loss = loss.to_scalar::<f32>()? as f64;
        assert!(close(loss, expected, 1e-6), "{loss} vs {expected}");
        Ok(())
    }

    #[test]
    fn label_smoothing_moves_targets_towards_one_half() -> Result<()> {
        let y_true = Tensor::new(&[[1f32, 0.]], &Device::Cpu)?;
        let y_pred = Tensor::new(&[[0.7f32, 0.2]], &Device::Cpu)?;
        // s = 0.2: targets 1 → 0.9, 0 → 0.1.
        let expected = (bce(0.9, 0.7) + bce(0.1, 0.2)) / 2.0;
        let loss = BinaryCrossentropy::new()
            .label_smoothing(0.2)
            .compute(&y_true, &y_pred)?;
        assert!(close(loss.to_scalar::<f32>()? as f64, expected, 1e-6));
        let bad = BinaryCrossentropy::new()
            .label_smoothing(1.5)
            .compute(&y_true, &y_pred);
        assert!(matches!(bad, Err(Error::Config(_))));
        Ok(())
    }

    #[test]
    fn gradient_with_respect_to_probabilities() -> Result<()> {
        // d/dp mean(bce) = (p - y) / (p (1 - p)) / N, N = 4.
        let y = [1f32, 0., 1., 0.];
        let p = [0.9f32, 0.2, 0.3, 0.6];
        let y_true = Tensor::new(&y, &Device::Cpu)?.reshape((2, 2))?;
        let y_pred = Var::from_tensor(&Tensor::new(&p, &Device::Cpu)?.reshape((2, 2))?)?;
        let loss = BinaryCrossentropy::new().compute(&y_true, y_pred.as_tensor())?;
        let grads = loss.backward()?;
        let grad = grads.get(&y_pred).map(|g| g.flatten_all()).transpose()?;
        let grad = grad
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert_eq!(grad.len(), 4);
        for i in 0..4 {
            let (yi, pi) = (y[i] as f64, p[i] as f64);
            let expected = (pi - yi) / (pi * (1.0 - pi)) / 4.0;
            assert!(
                close(grad[i] as f64, expected, 1e-5),
                "{i}: {} vs {expected}",
                grad[i]
            );
        }
        Ok(())
    }

    #[test]
    fn gradient_with_respect_to_logits_including_zero() -> Result<()> {
        // d/dx mean(bce_logits) = (sigmoid(x) - y) / N, N = 4; at x = 0 that is 0.5 - y.
        let y = [1f32, 0., 1., 0.];
        let x = [2f32, -1., 0., 0.];
        let y_true = Tensor::new(&y, &Device::Cpu)?.reshape((2, 2))?;
        let logits = Var::from_tensor(&Tensor::new(&x, &Device::Cpu)?.reshape((2, 2))?)?;
        let loss = BinaryCrossentropy::new()
            .from_logits(true)
            .compute(&y_true, logits.as_tensor())?;
        let grads = loss.backward()?;
        let grad = grads.get(&logits).map(|g| g.flatten_all()).transpose()?;
        let grad = grad
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert_eq!(grad.len(), 4);
        for i in 0..4 {
            let sigmoid = 1.0 / (1.0 + (-(x[i] as f64)).exp());
            let expected = (sigmoid - y[i] as f64) / 4.0;
            assert!(
                close(grad[i] as f64, expected, 1e-6),
                "{i}: {} vs {expected}",
                grad[i]
            );
        }
        Ok(())
    }

    #[test]
    fn fused_and_composed_paths_agree_in_value_and_gradient() -> Result<()> {
        // f32 predictions take the fused kernel, f64 ones the composed candle ops.
        let y = [0f32, 1., 0.25, 1., 0., 0.75];
        let p = [0.3f32, 0.8, 0.5, 1.0, 0.0, 0.6];
        let loss_and_grad = |dtype: DType| -> Result<(f64, Vec<f64>)> {
            let y_true = Tensor::new(&y, &Device::Cpu)?.reshape((2, 3))?;
            let pred = Var::from_tensor(
                &Tensor::new(&p, &Device::Cpu)?
                    .reshape((2, 3))?
                    .to_dtype(dtype)?,
            )?;
            let loss = BinaryCrossentropy::new().compute(&y_true, pred.as_tensor())?;
            let grads = loss.backward()?;
            let grad = grads
                .get(pred.as_tensor())
                .map(|g| g.flatten_all())
                .transpose()?;
            let grad = grad
                .map(|g| g.to_dtype(DType::F64)?.to_vec1::<f64>())
                .transpose()?
                .unwrap_or_default();
            Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, grad))
        };
        let (fused, fused_grad) = loss_and_grad(DType::F32)?;
        let (composed, composed_grad) = loss_and_grad(DType::F64)?;
        assert!(close(fused, composed, 1e-6), "{fused} vs {composed}");
        assert_eq!(fused_grad.len(), 6);
        // p = 1 and p = 0 lie outside the clip range: no gradient.
        assert_eq!((fused_grad[3], fused_grad[4]), (0.0, 0.0));
        for (f, c) in fused_grad.iter().zip(&composed_grad) {
            assert!(close(*f, *c, 1e-5), "{fused_grad:?} vs {composed_grad:?}");
        }
        Ok(())
    }

    #[test]
    fn config_names_every_option() {
        let config = BinaryCrossentropy::new().from_logits(true).config();
        assert_eq!(config["name"], "binary_crossentropy");
        assert_eq!(config["from_logits"], true);
        assert_eq!(config["label_smoothing"], 0.0);
        assert_eq!(config["reduction"], "sum_over_batch_size");
    }
}
