//! Helpers shared by the loss tests.

use super::Loss;
use crate::Result;
use candle_core::{DType, Device, Tensor, Var};

/// Asserts that `loss`'s closed-form gradient on `(y_true, y_pred)` matches central finite
/// differences of its value in f64 and candle's autograd over `compute`, and that its value
/// is `compute`'s. The points must lie away from the kinks of the loss.
pub(crate) fn assert_gradient_matches(
    loss: &dyn Loss,
    y_true: &[f64],
    y_pred: &[f64],
    shape: &[usize],
) -> Result<()> {
    let cpu = &Device::Cpu;
    let y = Tensor::from_slice(y_true, shape, cpu)?;
    let p = Tensor::from_slice(y_pred, shape, cpu)?;
    let Some((value, grad)) = loss.value_and_gradient(&y, &p)? else {
        panic!("{} has no closed-form gradient", loss.name());
    };
    let grad = grad.flatten_all()?.to_vec1::<f64>()?;
    let computed = loss.compute(&y, &p)?.to_scalar::<f64>()?;
    assert!((value.to_scalar::<f64>()? - computed).abs() < 1e-12);
    let var = Var::from_tensor(&p)?;
    let by_autograd = loss.compute(&y, var.as_tensor())?.backward()?;
    let by_autograd = match by_autograd.get(var.as_tensor()) {
        Some(g) => g.flatten_all()?.to_vec1::<f64>()?,
        None => vec![0.0; y_pred.len()],
    };
    let h = 1e-6;
    for i in 0..y_pred.len() {
        let at = |delta: f64| -> Result<f64> {
            let mut moved = y_pred.to_vec();
            moved[i] += delta;
            let moved = Tensor::from_slice(&moved, shape, cpu)?;
            Ok(loss.compute(&y, &moved)?.to_scalar::<f64>()?)
        };
        let numeric = (at(h)? - at(-h)?) / (2.0 * h);
        let tolerance = 1e-6 * (1.0 + numeric.abs());
        assert!(
            (grad[i] - numeric).abs() < tolerance && (grad[i] - by_autograd[i]).abs() < 1e-9,
            "{} element {i}: closed form {}, finite differences {numeric}, autograd {}",
            loss.name(),
            grad[i],
            by_autograd[i]
        );
    }
    let f32_pair = loss.value_and_gradient(&y.to_dtype(DType::F32)?, &p.to_dtype(DType::F32)?)?;
    assert!(f32_pair.is_some_and(|(_, g)| g.dims() == shape));
    Ok(())
}
