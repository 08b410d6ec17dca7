//! `wa·a + wb·b` in one pass: how the gradients of the parts of a batch, computed on separate
//! threads, become the batch's gradient.

use candle_core::Tensor;

use super::parallel::map_pairs;
use crate::check::{expect_f32, expect_same_device};
use crate::error::OpsError;
use crate::storage::CpuView;

/// Name used in messages.
const OP: &str = "weighted_sum";

/// `weight_a · a + weight_b · b` for two f32 CPU tensors of one shape, in one pass over them
/// (no intermediate tensors), without recording a candle graph.
pub fn weighted_sum(
    a: &Tensor,
    weight_a: f32,
    b: &Tensor,
    weight_b: f32,
) -> candle_core::Result<Tensor> {
    expect_f32(OP, "a", a)?;
    expect_f32(OP, "b", b)?;
    expect_same_device(OP, a, b)?;
    if a.shape() != b.shape() {
        return Err(OpsError::ShapeMismatch {
            op: OP,
            expected: "a and b of one shape",
            lhs_name: "a",
            lhs: a.shape().clone(),
            rhs_name: "b",
            rhs: b.shape().clone(),
        }
        .into());
    }
    let (a_view, b_view) = (CpuView::of(OP, "a", a)?, CpuView::of(OP, "b", b)?);
    let (a_data, b_data) = (a_view.f32()?, b_view.f32()?);
    let sum = map_pairs(&a_data, &b_data, |a, b| weight_a.mul_add(a, weight_b * b));
    Tensor::from_vec(sum, a.shape(), a.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn weighs_and_adds_every_element() -> candle_core::Result<()> {
        let a = Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu)?;
        let b = Tensor::new(&[[10f32, 20.], [30., 40.]], &Device::Cpu)?;
        let sum = weighted_sum(&a, 0.5, &b, 0.25)?;
        assert_eq!(sum.to_vec2::<f32>()?, vec![vec![3.0, 6.0], vec![9.0, 12.0]]);
        // A strided view is read in its logical order.
        let sum = weighted_sum(&a.t()?, 1.0, &b, 0.0)?;
        assert_eq!(sum.to_vec2::<f32>()?, vec![vec![1.0, 3.0], vec![2.0, 4.0]]);
        Ok(())
    }

    #[test]
    fn refuses_different_shapes_and_dtypes() -> candle_core::Result<()> {
        let a = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu)?;
        let err = weighted_sum(&a, 1.0, &a.reshape((3, 2))?, 1.0).unwrap_err();
        assert!(err.to_string().contains("one shape"), "{err}");
        let err = weighted_sum(&a, 1.0, &a.to_dtype(candle_core::DType::F64)?, 1.0).unwrap_err();
        assert!(err.to_string().contains("weighted_sum"), "{err}");
        Ok(())
    }
}
