//! Binary cross-entropy computed from logits, averaged over every element, as a candle custom op
//! over the vectorised kernel of `dense::sigmoid_cross_entropy`.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::dense::{check_operands, mean_loss, scaled_gradient, FromLogits};
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "binary_cross_entropy_with_logits";

/// Mean over all elements of the numerically stable binary cross-entropy computed from logits:
/// max(z,0) - z*y + log(1+exp(-|z|)); gradient wrt z is (sigmoid(z) - y) / numel (also gradient wrt y if y needs one: -z/numel).
pub fn binary_cross_entropy_with_logits(
    logits: &Tensor,
    targets: &Tensor,
) -> candle_core::Result<Tensor> {
    check_operands(OP, "logits", targets, logits)?;
    if !logits.device().is_cpu() {
        let z = logits;
        let softplus = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
        return (z.relu()? - (z * targets)? + softplus)?.mean_all();
    }
    logits.apply_op2(targets, BceWithLogitsOp)
}

/// The CPU loss as a candle custom op on (logits, targets).
pub(crate) struct BceWithLogitsOp;

impl CustomOp2 for BceWithLogitsOp {
    fn name(&self) -> &'static str {
        "rkeras-bce-with-logits"
    }

    fn cpu_fwd(
        &self,
        logits: &CpuStorage,
        logits_layout: &Layout,
        targets: &CpuStorage,
        targets_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let z = cpu_f32(OP, "logits", logits, logits_layout)?;
        let y = cpu_f32(OP, "targets", targets, targets_layout)?;
        let mean = mean_loss::<FromLogits>(&y, &z);
        Ok((CpuStorage::F32(vec![mean]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = grad_res.to_scalar::<f32>()? / logits.elem_count() as f32;
        let z_view = CpuView::of(OP, "logits", logits)?;
        let z = z_view.f32()?;
        let logits_grad = if logits.track_op() {
            let y_view = CpuView::of(OP, "targets", targets)?;
            let y = y_view.f32()?;
            let grad = scaled_gradient::<FromLogits>(&y, &z, scale);
            Some(Tensor::from_vec(grad, logits.shape(), logits.device())?)
        } else {
            None
        };
        let targets_grad = if targets.track_op() {
            let grad: Vec<f32> = z.iter().map(|&z| -z * scale).collect();
            Some(Tensor::from_vec(grad, targets.shape(), targets.device())?)
        } else {
            None
        };
        Ok((logits_grad, targets_grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn var(data: &[f32]) -> Var {
        Var::new(data, &Device::Cpu).unwrap()
    }

    #[test]
    fn mismatched_or_empty_operands_are_refused_with_the_op_named() {
        let device = Device::Cpu;
        let logits = Tensor::zeros((2, 3), candle_core::DType::F32, &device).unwrap();
        let short = Tensor::zeros((2, 2), candle_core::DType::F32, &device).unwrap();
        let message = binary_cross_entropy_with_logits(&logits, &short)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(OP) && message.contains("logits"),
            "{message}"
        );
        let empty = Tensor::zeros((0, 3), candle_core::DType::F32, &device).unwrap();
        assert!(binary_cross_entropy_with_logits(&empty, &empty).is_err());
        let integers = Tensor::zeros((2, 3), candle_core::DType::U32, &device).unwrap();
        assert!(binary_cross_entropy_with_logits(&logits, &integers).is_err());
    }

    #[test]
    fn value_and_gradients_by_hand() {
        // z = [0, 2, -1], y = [0.5, 1, 0]:
        // 0 - 0 + ln 2 = 0.693147; 2 - 2 + ln(1 + e^-2) = 0.126928; 0 - 0 + ln(1 + e^-1) = 0.313262.
        let (z, y) = (var(&[0.0, 2.0, -1.0]), var(&[0.5, 1.0, 0.0]));
        let loss = binary_cross_entropy_with_logits(&z, &y).unwrap();
        let expected = (std::f32::consts::LN_2 + 0.126_928 + 0.313_261_7) / 3.0;
        assert!((loss.to_scalar::<f32>().unwrap() - expected).abs() < 1e-6);
        let grads = loss.backward().unwrap();
        // (sigmoid(z) - y) / 3: (0.5 - 0.5), (0.880797 - 1), (0.268941 - 0).
        let dz = grads.get(&z).unwrap().to_vec1::<f32>().unwrap();
        for (got, want) in dz.iter().zip([0.0, -0.119_203 / 3.0, 0.268_941 / 3.0]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        // -z / 3.
        let dy = grads.get(&y).unwrap().to_vec1::<f32>().unwrap();
        for (got, want) in dy.iter().zip([0.0, -2.0 / 3.0, 1.0 / 3.0]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn large_logits_stay_finite() {
        let (z, y) = (
            var(&[100.0, -100.0, 1e30, -1e30]),
            var(&[0.0, 1.0, 1.0, 0.0]),
        );
        let loss = binary_cross_entropy_with_logits(&z, &y).unwrap();
        // 100 and 100 for the confidently wrong pair, 0 for the right ones: mean 50.
        let value = loss.to_scalar::<f32>().unwrap();
        assert!((value - 50.0).abs() < 1e-4, "{value}");
        let dz = loss
            .backward()
            .unwrap()
            .get(&z)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(dz, vec![0.25, -0.25, 0.0, 0.0]);
    }

    #[test]
    fn targets_that_are_data_get_no_gradient() {
        let z = var(&[0.3, -0.7]);
        let y = Tensor::new(&[1f32, 0.], &Device::Cpu).unwrap();
        let loss = binary_cross_entropy_with_logits(&z, &y).unwrap();
        let (dz, dy) = BceWithLogitsOp
            .bwd(&z, &y, &loss, &Tensor::new(1f32, &Device::Cpu).unwrap())
            .unwrap();
        assert!(dz.is_some() && dy.is_none());
        assert!(loss.backward().unwrap().get(&y).is_none());
    }

    #[test]
    fn composed_form_agrees_and_shapes_are_checked() {
        let z = Tensor::new(&[[0.3f32, -2.0], [5.0, 0.0]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[[1f32, 0.], [0.25, 1.0]], &Device::Cpu).unwrap();
        let ours = binary_cross_entropy_with_logits(&z, &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let softplus = z
            .abs()
            .unwrap()
            .neg()
            .unwrap()
            .exp()
            .unwrap()
            .affine(1.0, 1.0)
            .unwrap()
            .log()
            .unwrap();
        let composed = ((z.relu().unwrap() - (&z * &y).unwrap()).unwrap() + softplus)
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((ours - composed).abs() < 1e-6);
        let err = binary_cross_entropy_with_logits(&z, &y.flatten_all().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("[2, 2]") && err.to_string().contains("[4]"),
            "{err}"
        );
    }
}
