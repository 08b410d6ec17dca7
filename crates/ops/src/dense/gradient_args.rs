//! The check each backward function of these kernels makes of the tensor it differentiates
//! from and of the output's gradient.

use candle_core::Tensor;

use crate::check::{expect_f32, expect_same_dims};
use crate::error::OpsError;

/// Fails unless `tensor` (the argument `arg` of `op`) holds f32 and `grad_y` has its shape.
pub(crate) fn expect_f32_and_gradient(
    op: &'static str,
    arg: &'static str,
    tensor: &Tensor,
    grad_y: &Tensor,
) -> Result<(), OpsError> {
    expect_f32(op, arg, tensor)?;
    expect_same_dims(
        op,
        "the tensor and the output's gradient of one shape",
        (arg, tensor.dims()),
        ("grad_y", grad_y.dims()),
    )
}
