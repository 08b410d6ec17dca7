//! Binary cross-entropy of `sigmoid(logits)` computed from the logits, with its gradient with
//! respect to the logits, in one pass: what Keras does on TensorFlow when the predictions come
//! from a sigmoid (`keras/src/backend/tensorflow/nn.py`, `binary_crossentropy` reads the
//! sigmoid's `_keras_logits` and calls `tf.nn.sigmoid_cross_entropy_with_logits`).

use candle_core::Tensor;

use super::averaged_loss::{loss_and_gradient, ElementLoss};
use crate::math::{exp, ln_1p_from_sum};

/// Name used in messages.
const OP: &str = "sigmoid_cross_entropy";

/// The mean over every element of `max(z, 0) - z·y + ln(1 + e^-|z|)` (TensorFlow's
/// `sigmoid_cross_entropy_with_logits`: the cross-entropy of `sigmoid(z)` against `y`, without
/// clipping), and its gradient with respect to the logits `z`, `(sigmoid(z) - y) / N`, for
/// callers that run their own backward pass. CPU only.
pub fn sigmoid_cross_entropy_with_gradient(
    y_true: &Tensor,
    logits: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    loss_and_gradient::<FromLogits>(OP, "logits", y_true, logits)
}

/// TensorFlow's cross-entropy of one element from its logit, for the shared averaged-loss
/// passes.
struct FromLogits;

impl ElementLoss for FromLogits {
    #[inline(always)]
    fn element(y: f32, z: f32) -> (f32, f32) {
        element(y, z)
    }
}

/// One element's loss (in f32, as TensorFlow computes it) and its unscaled gradient
/// `sigmoid(z) - y`, sharing `e^-|z|` and one division.
#[inline(always)]
fn element(y: f32, z: f32) -> (f32, f32) {
    let decay = exp(-z.abs());
    let sum = 1.0 + decay;
    let reciprocal = 1.0 / sum;
    let loss = z.max(0.0) - z * y + ln_1p_from_sum(decay, sum, reciprocal);
    // sigmoid(z) = 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) below, both without overflow.
    let sigmoid = if z >= 0.0 {
        reciprocal
    } else {
        decay * reciprocal
    };
    (loss, sigmoid - y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, values, Lcg};
    use candle_core::Device;

    /// The loss and its gradient by naive loops in f64.
    fn naive(y: &[f32], z: &[f32]) -> (f64, Vec<f64>) {
        let n = z.len() as f64;
        let mut loss = 0.0;
        let mut grad = Vec::new();
        for (&y, &z) in y.iter().zip(z) {
            let (y, z) = (y as f64, z as f64);
            let p = 1.0 / (1.0 + (-z).exp());
            // -(y ln p + (1 - y) ln(1 - p)), with ln(1 - p) = ln p - z.
            loss += -(y * p.ln() + (1.0 - y) * (p.ln() - z));
            grad.push((p - y) / n);
        }
        (loss / n, grad)
    }

    #[test]
    fn loss_and_gradient_match_naive_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(31);
        for dims in [vec![1], vec![15], vec![17], vec![3, 1025], vec![256, 784]] {
            let len: usize = dims.iter().product();
            let z: Vec<f32> = (0..len).map(|_| rng.next() * 12.0).collect();
            let y: Vec<f32> = (0..len)
                .map(|_| match rng.next() {
                    v if v < -0.3 => 0.0,
                    v if v > 0.6 => 1.0,
                    v => (v + 0.3) / 0.9,
                })
                .collect();
            let (loss, grad) = sigmoid_cross_entropy_with_gradient(
                &Tensor::from_vec(y.clone(), dims.as_slice(), &Device::Cpu)?,
                &Tensor::from_vec(z.clone(), dims.as_slice(), &Device::Cpu)?,
            )?;
            let (want_loss, want_grad) = naive(&y, &z);
            let what = format!("{dims:?}");
            assert_close(&what, &[loss.to_scalar::<f32>()?], &[want_loss], 1e-6);
            assert_eq!(grad.dims(), dims.as_slice());
            assert_close(&format!("{what} grad"), &values(&grad), &want_grad, 1e-6);
        }
        Ok(())
    }

    #[test]
    fn saturated_logits_stay_exact_where_clipping_would_not() -> candle_core::Result<()> {
        // z = -30 against y = 1: the loss is 30 (a clipped probability would give -ln 1e-7 =
        // 16.1); z = 30 against y = 1 and z = -30 against y = 0 cost e^-30 = 9.36e-14.
        let z = Tensor::new(&[-30f32, 30., -30.], &Device::Cpu)?;
        let y = Tensor::new(&[1f32, 1., 0.], &Device::Cpu)?;
        let (loss, grad) = sigmoid_cross_entropy_with_gradient(&y, &z)?;
        let e = (-30f64).exp();
        assert_close(
            "loss",
            &[loss.to_scalar::<f32>()?],
            &[(30.0 + 3.0 * e) / 3.0],
            1e-7,
        );
        assert_close(
            "grad",
            &values(&grad),
            &[(e - 1.0) / 3.0, -e / 3.0, e / 3.0],
            1e-7,
        );
        Ok(())
    }

    #[test]
    fn by_hand_at_zero_and_nan_propagates() -> candle_core::Result<()> {
        // z = 0: loss ln 2 whatever y; gradient (1/2 - y) / 2.
        let z = Tensor::new(&[0f32, 0.], &Device::Cpu)?;
        let y = Tensor::new(&[0f32, 1.], &Device::Cpu)?;
        let (loss, grad) = sigmoid_cross_entropy_with_gradient(&y, &z)?;
        assert!((loss.to_scalar::<f32>()? - std::f32::consts::LN_2).abs() < 1e-7);
        assert_eq!(values(&grad), vec![0.25, -0.25]);
        let z = Tensor::new(&[f32::NAN, 0.], &Device::Cpu)?;
        let (loss, _) = sigmoid_cross_entropy_with_gradient(&y, &z)?;
        assert!(loss.to_scalar::<f32>()?.is_nan());
        Ok(())
    }

    #[test]
    fn shapes_and_dtypes_are_checked() {
        let a = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((3, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let message = sigmoid_cross_entropy_with_gradient(&a, &b)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[2, 3]") && message.contains("[3, 2]"),
            "{message}"
        );
        let ints = Tensor::zeros((2, 3), candle_core::DType::U32, &Device::Cpu).unwrap();
        assert!(sigmoid_cross_entropy_with_gradient(&a, &ints).is_err());
    }
}
