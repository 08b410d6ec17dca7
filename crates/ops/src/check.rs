//! Argument checks shared by the public ops: dtype, rank, shape and device.

use candle_core::{DType, Tensor};

use crate::error::OpsError;

/// Fails unless `tensor` holds f32.
pub(crate) fn expect_f32(
    op: &'static str,
    arg: &'static str,
    tensor: &Tensor,
) -> Result<(), OpsError> {
    match tensor.dtype() {
        DType::F32 => Ok(()),
        got => Err(OpsError::DType { op, arg, got }),
    }
}

/// Fails unless `tensor` is f32 of rank `rank`; returns its dims.
pub(crate) fn expect_f32_rank<'t>(
    op: &'static str,
    arg: &'static str,
    tensor: &'t Tensor,
    rank: usize,
) -> Result<&'t [usize], OpsError> {
    expect_f32(op, arg, tensor)?;
    let dims = tensor.dims();
    if dims.len() != rank {
        return Err(OpsError::Rank {
            op,
            arg,
            expected: rank,
            got: tensor.shape().clone(),
        });
    }
    Ok(dims)
}

/// Fails unless both tensors live on the same device.
pub(crate) fn expect_same_device(
    op: &'static str,
    lhs: &Tensor,
    rhs: &Tensor,
) -> Result<(), OpsError> {
    if lhs.device().same_device(rhs.device()) {
        Ok(())
    } else {
        Err(OpsError::DeviceMismatch {
            op,
            lhs: format!("{:?}", lhs.device().location()),
            rhs: format!("{:?}", rhs.device().location()),
        })
    }
}

/// Fails unless the dims `lhs` and `rhs` (each with its name) are equal; `expected` says what
/// should hold, for the message.
/// Checks that the storage argument `arg` a custom op of `op` was handed has the shape
/// `expected` the op was built for (candle hands a custom op storage and layout apart from the
/// tensor it checked).
pub(crate) fn expect_built_dims(
    op: &'static str,
    arg: &'static str,
    dims: &[usize],
    expected: &[usize],
) -> Result<(), OpsError> {
    expect_same_dims(
        op,
        "the storage handed to the op must have the shape it was built for",
        (arg, dims),
        ("expected", expected),
    )
}

pub(crate) fn expect_same_dims(
    op: &'static str,
    expected: &'static str,
    (lhs_name, lhs): (&'static str, &[usize]),
    (rhs_name, rhs): (&'static str, &[usize]),
) -> Result<(), OpsError> {
    if lhs == rhs {
        return Ok(());
    }
    Err(OpsError::ShapeMismatch {
        op,
        expected,
        lhs_name,
        lhs: lhs.into(),
        rhs_name,
        rhs: rhs.into(),
    })
}
