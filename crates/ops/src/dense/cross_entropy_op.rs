//! Keras's binary cross-entropy on probabilities, averaged over every element, in one pass each
//! way.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::averaged_loss::{
    check_operands, loss_and_gradient, mean_loss, scaled_gradient, ElementLoss,
};
use super::parallel::map_pairs;
use crate::math::ln_clipped;
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "binary_cross_entropy";

/// The lower clip bound: Keras's `epsilon()`, 1e-7.
const LOW: f32 = 1e-7;

/// The upper clip bound, `1 - 1e-7` computed in f64 and rounded to f32 (that is `1 - 2^-23`),
/// as Keras's backends compute it.
const HIGH: f32 = (1.0f64 - 1e-7) as f32;

/// Keras's `binary_crossentropy` on probabilities with its default reduction: `y_pred` clipped to
/// `[1e-7, 1 - 1e-7]`, then the mean over every element of `-(y·log p + (1-y)·log(1-p))` (which
/// equals Keras's mean over the last axis followed by the mean over the batch).
///
/// The gradient with respect to `y_pred` is `(-(y/p) + (1-y)/(1-p)) / N` where `y_pred` lies in the
/// clip range (bounds included) and 0 outside it, as the clip's gradient in TensorFlow; the one
/// with respect to `y_true` (when it needs one) is `(log(1-p) - log p) / N`.
pub fn binary_cross_entropy(y_true: &Tensor, y_pred: &Tensor) -> candle_core::Result<Tensor> {
    check_operands(OP, "y_pred", y_true, y_pred)?;
    if !crate::kernels_on(y_pred.device()) {
        return composed(y_true, y_pred);
    }
    y_true.apply_op2(y_pred, BinaryCrossEntropyOp)
}

/// [`binary_cross_entropy`] and its gradient with respect to `y_pred` in one pass, for callers
/// that run their own backward pass (the loss's own gradient taken as 1): the scalar loss and a
/// gradient of `y_pred`'s shape. CPU only.
pub fn binary_cross_entropy_with_gradient(
    y_true: &Tensor,
    y_pred: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    loss_and_gradient::<Clipped>(OP, "y_pred", y_true, y_pred)
}

/// Keras's clipped cross-entropy of one element, for the shared averaged-loss passes.
struct Clipped;

impl ElementLoss for Clipped {
    #[inline(always)]
    fn element(y: f32, p: f32) -> (f32, f32) {
        (element_loss(y, clip(p)), element_grad_pred(y, p))
    }

    const HAS_ZERO_TARGET_FORM: bool = true;

    /// One logarithm instead of two: with `y = 0`, `y·log p` is -0 (`log p` is finite and
    /// negative inside the clip range) and `(1-y)·log(1-p)` is `log(1-p)`, which is negative
    /// too, so their sum is `log(1-p)` exactly.
    #[inline(always)]
    fn element_of_zero_target(p: f32) -> (f32, f32) {
        (-ln_clipped(1.0 - clip(p)), element_grad_pred(0.0, p))
    }
}

/// The same loss from candle ops, for devices without the kernel.
fn composed(y_true: &Tensor, y_pred: &Tensor) -> candle_core::Result<Tensor> {
    let p = y_pred.clamp(LOW, HIGH)?;
    let not_y = y_true.affine(-1.0, 1.0)?;
    let positive = (y_true * p.log()?)?;
    let negative = (not_y * p.affine(-1.0, 1.0)?.log()?)?;
    (positive + negative)?.neg()?.mean_all()
}

/// `p` clipped to `[LOW, HIGH]`; NaN stays NaN.
#[inline(always)]
fn clip(p: f32) -> f32 {
    p.clamp(LOW, HIGH)
}

/// `-(y·log p + (1-y)·log(1-p))` for a clipped `p`. Both logarithms are finite inside the clip
/// range, so a term whose weight is exactly 0 (binary targets, the background of images)
/// contributes exactly 0, as when it is skipped. Both arguments are normal numbers (or NaN):
/// `p >= 1e-7` and `1 - p >= 2^-23`.
#[inline(always)]
fn element_loss(y: f32, p: f32) -> f32 {
    -(y * ln_clipped(p) + (1.0 - y) * ln_clipped(1.0 - p))
}

/// dL/dp of one element, before the 1/N scale: 0 outside the clip range (NaN passes through).
/// `-(y/p) + (1-y)/(1-p)` over one denominator, `(p-y) / (p(1-p))`: one division instead of
/// two (they were a third of the kernel); `p(1-p)` is at least about 1e-7 inside the clip range.
#[inline(always)]
fn element_grad_pred(y: f32, p: f32) -> f32 {
    let inside = p.is_nan() || (LOW..=HIGH).contains(&p);
    let grad = (p - y) / (p * (1.0 - p));
    if inside {
        grad
    } else {
        0.0
    }
}

/// The CPU kernel on `(y_true, y_pred)`.
pub(crate) struct BinaryCrossEntropyOp;

impl CustomOp2 for BinaryCrossEntropyOp {
    fn name(&self) -> &'static str {
        "rkeras-binary-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        y_true: &CpuStorage,
        y_true_layout: &Layout,
        y_pred: &CpuStorage,
        y_pred_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = cpu_f32(OP, "y_true", y_true, y_true_layout)?;
        let p = cpu_f32(OP, "y_pred", y_pred, y_pred_layout)?;
        let mean = mean_loss::<Clipped>(&y, &p);
        Ok((CpuStorage::F32(vec![mean]), Shape::from(())))
    }

    fn bwd(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
        _loss: &Tensor,
        grad_loss: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = grad_loss.to_scalar::<f32>()? / y_pred.elem_count() as f32;
        let (y_view, p_view) = (
            CpuView::of(OP, "y_true", y_true)?,
            CpuView::of(OP, "y_pred", y_pred)?,
        );
        let (y, p) = (y_view.f32()?, p_view.f32()?);
        let grad_true = y_true
            .track_op()
            .then(|| {
                let grad = map_pairs(&y, &p, |_, p| {
                    let p = clip(p);
                    (ln_clipped(1.0 - p) - ln_clipped(p)) * scale
                });
                Tensor::from_vec(grad, y_true.shape(), y_true.device())
            })
            .transpose()?;
        let grad_pred = y_pred
            .track_op()
            .then(|| {
                let grad = scaled_gradient::<Clipped>(&y, &p, scale);
                Tensor::from_vec(grad, y_pred.shape(), y_pred.device())
            })
            .transpose()?;
        Ok((grad_true, grad_pred))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, values, Lcg};
    use candle_core::{DType, Device, Var};

    /// Keras's loss and both gradients by naive loops in f64 (clip bounds as f32 rounds them).
    fn naive(y: &[f32], p: &[f32]) -> (f64, Vec<f64>, Vec<f64>) {
        let n = p.len() as f64;
        let (low, high) = (1e-7f32 as f64, (1.0f64 - 1e-7) as f32 as f64);
        let (mut loss, mut grad_pred, mut grad_true) = (0.0, vec![], vec![]);
        for (&y, &p) in y.iter().zip(p) {
            let (y, p) = (y as f64, p as f64);
            let c = p.clamp(low, high);
            loss += -(y * c.ln() + (1.0 - y) * (1.0 - c).ln());
            let inside = (low..=high).contains(&p);
            grad_pred.push(if inside {
                (-(y / c) + (1.0 - y) / (1.0 - c)) / n
            } else {
                0.0
            });
            grad_true.push(((1.0 - c).ln() - c.ln()) / n);
        }
        (loss / n, grad_pred, grad_true)
    }

    /// Probabilities in (0, 1) and targets that are mostly exactly 0 or 1, as images are.
    fn data(rng: &mut Lcg, len: usize) -> (Vec<f32>, Vec<f32>) {
        let p = (0..len).map(|_| rng.next() * 0.499 + 0.5).collect();
        let y = (0..len)
            .map(|_| match rng.next() {
                v if v < -0.2 => 0.0,
                v if v > 0.6 => 1.0,
                v => (v + 0.2) / 0.8,
            })
            .collect();
        (y, p)
    }

    #[test]
    fn loss_and_gradients_match_naive_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(17);
        for dims in [
            vec![1],
            vec![2, 3],
            vec![5],
            vec![2, 3, 4],
            vec![256, 784],
            vec![3, 1025],
        ] {
            let len: usize = dims.iter().product();
            let (y, p) = data(&mut rng, len);
            let y_true = Var::from_vec(y.clone(), dims.as_slice(), &Device::Cpu)?;
            let y_pred = Var::from_vec(p.clone(), dims.as_slice(), &Device::Cpu)?;
            let loss = binary_cross_entropy(y_true.as_tensor(), y_pred.as_tensor())?;
            let (want_loss, want_gp, want_gt) = naive(&y, &p);
            let what = format!("{dims:?}");
            assert_close(&what, &[loss.to_scalar::<f32>()?], &[want_loss], 1e-6);
            let grads = loss.backward()?;
            let gp = grads.get(y_pred.as_tensor()).expect("y_pred gradient");
            assert_eq!(gp.dims(), dims.as_slice());
            assert_close(&format!("{what} grad y_pred"), &values(gp), &want_gp, 1e-5);
            let gt = grads.get(y_true.as_tensor()).expect("y_true gradient");
            assert_close(&format!("{what} grad y_true"), &values(gt), &want_gt, 1e-5);
        }
        Ok(())
    }

    #[test]
    fn predictions_anywhere_in_f32_are_clipped_before_the_logarithms() -> candle_core::Result<()> {
        // Out of range, at the bounds, subnormal, infinite: the loss and gradient are Keras's
        // (the clipped logarithms are of normal numbers, so the shortcut logarithm applies).
        let predictions = [
            0.0f32,
            -1.0,
            2.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
            1e-45,
            f32::MIN_POSITIVE / 2.0,
            LOW,
            HIGH,
            1.0,
            0.5,
        ];
        for y in [0.0f32, 0.3, 1.0] {
            let targets = vec![y; predictions.len()];
            let cpu = &Device::Cpu;
            let (loss, grad) = binary_cross_entropy_with_gradient(
                &Tensor::new(targets.as_slice(), cpu)?,
                &Tensor::new(&predictions, cpu)?,
            )?;
            let (want_loss, want_grad, _) = naive(&targets, &predictions);
            let what = format!("y {y}");
            assert_close(&what, &[loss.to_scalar::<f32>()?], &[want_loss], 1e-6);
            assert_close(&what, &values(&grad), &want_grad, 1e-5);
        }
        let nan = Tensor::new(&[0.5f32, f32::NAN], &Device::Cpu)?;
        let (loss, _) = binary_cross_entropy_with_gradient(&nan.ones_like()?, &nan)?;
        assert!(
            loss.to_scalar::<f32>()?.is_nan(),
            "a NaN prediction gives a NaN loss"
        );
        Ok(())
    }

    #[test]
    fn a_zero_target_gives_the_same_bits_with_one_logarithm() {
        let mut rng = Lcg::new(31);
        let special = [
            0.0f32,
            -0.0,
            -1.0,
            2.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-45,
            LOW,
            HIGH,
            1.0,
            0.5,
            f32::NAN,
        ];
        let spread = (1..2000).map(|i| i as f32 / 2000.0);
        let random = rng.vec(2000).into_iter().map(|v| v.abs().fract());
        for p in special.into_iter().chain(spread).chain(random) {
            let (loss, grad) = Clipped::element_of_zero_target(p);
            for y in [0.0, -0.0] {
                let (want_loss, want_grad) = Clipped::element(y, p);
                if p.is_nan() {
                    assert!(loss.is_nan() && want_loss.is_nan() && grad.is_nan());
                } else {
                    assert_eq!(
                        loss.to_bits(),
                        want_loss.to_bits(),
                        "loss at p = {p}, y = {y}"
                    );
                    assert_eq!(
                        grad.to_bits(),
                        want_grad.to_bits(),
                        "grad at p = {p}, y = {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn image_like_targets_with_zero_runs_match_naive_loops() -> candle_core::Result<()> {
        // Runs of zero targets (and -0) long enough to fill whole vectors, as an image's
        // background, between runs of non-zero ones; the loss alone and with its gradient.
        let mut rng = Lcg::new(37);
        let len = 3 * 1025;
        let p: Vec<f32> = rng.vec(len).into_iter().map(|v| v.abs().fract()).collect();
        let y: Vec<f32> = (0..len)
            .map(|i| match (i / 40) % 3 {
                0 => 0.0,
                1 if i % 7 == 0 => -0.0,
                1 => ((i % 11) as f32) / 10.0,
                _ => {
                    if i % 53 == 0 {
                        1.0
                    } else {
                        0.0
                    }
                }
            })
            .collect();
        let (want_loss, want_grad, _) = naive(&y, &p);
        let cpu = &Device::Cpu;
        let (y, p) = (
            Tensor::new(y.as_slice(), cpu)?,
            Tensor::new(p.as_slice(), cpu)?,
        );
        let (loss, grad) = binary_cross_entropy_with_gradient(&y, &p)?;
        assert_close("loss", &[loss.to_scalar::<f32>()?], &[want_loss], 1e-6);
        assert_close("grad", &values(&grad), &want_grad, 1e-5);
        let alone = binary_cross_entropy(&y, &p)?;
        assert_eq!(alone.to_scalar::<f32>()?, loss.to_scalar::<f32>()?);
        Ok(())
    }

    #[test]
    fn the_one_pass_loss_and_gradient_match_naive_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(29);
        for dims in [
            vec![1],
            vec![17],
            vec![3, 1025],
            vec![256, 784],
            vec![70, 1000],
        ] {
            let len: usize = dims.iter().product();
            let (mut y, mut p) = data(&mut rng, len);
            // Clipped predictions among them: their gradient is 0.
            (y[0], p[0]) = (1.0, 0.0);
            let (loss, grad) = binary_cross_entropy_with_gradient(
                &Tensor::from_vec(y.clone(), dims.as_slice(), &Device::Cpu)?,
                &Tensor::from_vec(p.clone(), dims.as_slice(), &Device::Cpu)?,
            )?;
            let (want_loss, want_grad, _) = naive(&y, &p);
            let what = format!("{dims:?}");
            assert_close(&what, &[loss.to_scalar::<f32>()?], &[want_loss], 1e-6);
            assert_eq!(grad.dims(), dims.as_slice());
            let grad = values(&grad);
            assert_eq!(grad[0], 0.0, "{what}");
            assert_close(&format!("{what} grad"), &grad, &want_grad, 1e-5);
        }
        Ok(())
    }

    #[test]
    fn clipping_bounds_the_loss_and_stops_the_gradient_outside_the_range() -> candle_core::Result<()>
    {
        // p = 0, 1, 1e-9 and -1 lie outside [1e-7, 1 - 2^-23]; 1e-7 and 1 - 2^-23 are the bounds.
        let p = [0.0f32, 1.0, 1e-9, -1.0, 1e-7, HIGH, 0.5];
        let y = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0, 0.25];
        let y_pred = Var::new(&p, &Device::Cpu)?;
        let y_true = Tensor::new(&y, &Device::Cpu)?;
        let loss = binary_cross_entropy(&y_true, y_pred.as_tensor())?;
        let (want_loss, want_gp, _) = naive(&y, &p);
        assert!(loss.to_scalar::<f32>()?.is_finite());
        assert_close("loss", &[loss.to_scalar::<f32>()?], &[want_loss], 1e-6);
        let grads = loss.backward()?;
        let gp = values(grads.get(y_pred.as_tensor()).unwrap());
        assert_eq!(&gp[..4], &[0.0; 4]);
        // At the bounds the gradient passes: -1/(7·1e-7) and 1/(7·2^-23), both large.
        assert!(gp[4] < -1e5 && gp[5] > 1e5, "{gp:?}");
        assert_close("grad y_pred", &gp, &want_gp, 1e-5);
        assert!(grads.get(&y_true).is_none());
        Ok(())
    }

    #[test]
    fn value_by_hand_and_upstream_gradient_scales() -> candle_core::Result<()> {
        // y = [0, 1], p = [0.6, 0.4]: (-ln 0.4 - ln 0.4) / 2 = 0.916291.
        let y_pred = Var::new(&[[0.6f32, 0.4]], &Device::Cpu)?;
        let y_true = Tensor::new(&[[0f32, 1.]], &Device::Cpu)?;
        let loss = binary_cross_entropy(&y_true, y_pred.as_tensor())?;
        assert!((loss.to_scalar::<f32>()? - 0.916_291).abs() < 1e-6);
        // d(3·loss)/dp = 3·[1/0.4, -1/0.4] / 2 = [3.75, -3.75].
        let grads = (loss * 3.0)?.backward()?;
        assert_close(
            "scaled",
            &values(grads.get(y_pred.as_tensor()).unwrap()),
            &[3.75, -3.75],
            1e-6,
        );
        Ok(())
    }

    #[test]
    fn nan_predictions_give_a_nan_loss() -> candle_core::Result<()> {
        let y_pred = Tensor::new(&[f32::NAN, 0.5], &Device::Cpu)?;
        let y_true = Tensor::new(&[0f32, 1.], &Device::Cpu)?;
        assert!(binary_cross_entropy(&y_true, &y_pred)?
            .to_scalar::<f32>()?
            .is_nan());
        Ok(())
    }

    #[test]
    fn composed_fallback_agrees_with_the_kernel() -> candle_core::Result<()> {
        let mut rng = Lcg::new(23);
        let (y, p) = data(&mut rng, 40);
        let (y, p) = (
            Tensor::from_vec(y, (4, 10), &Device::Cpu)?,
            Tensor::from_vec(p, (4, 10), &Device::Cpu)?,
        );
        let fused = binary_cross_entropy(&y, &p)?.to_scalar::<f32>()?;
        let composed = composed(&y, &p)?.to_scalar::<f32>()? as f64;
        assert_close("composed", &[fused], &[composed], 1e-6);
        Ok(())
    }

    #[test]
    fn shapes_and_dtypes_are_checked() {
        let a = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((3, 2), DType::F32, &Device::Cpu).unwrap();
        let m = binary_cross_entropy(&a, &b).unwrap_err().to_string();
        assert!(m.contains("[2, 3]") && m.contains("[3, 2]"), "{m}");
        let empty = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(binary_cross_entropy(&empty, &empty).is_err());
        let ints = Tensor::zeros((2, 3), DType::U32, &Device::Cpu).unwrap();
        let m = binary_cross_entropy(&a, &ints).unwrap_err().to_string();
        assert!(m.contains("f32"), "{m}");
    }
}
