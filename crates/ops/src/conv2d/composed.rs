//! The convolution composed from candle's own ops, for devices without our CPU kernel.

use candle_core::Tensor;

use crate::error::OpsError;

use super::geometry::OP;
use super::Conv2dParams;

/// `relu?(conv(x, kernel) + bias)` through candle's NCHW `conv2d` with explicit zero padding.
///
/// candle takes one stride and one dilation for both axes, so unequal ones are refused.
pub(super) fn conv2d(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
    relu: bool,
) -> candle_core::Result<Tensor> {
    let (s_h, s_w) = params.strides;
    let (d_h, d_w) = params.dilation;
    if s_h != s_w || d_h != d_w {
        return Err(OpsError::Unsupported {
            op: OP,
            what: format!(
                "unequal strides {:?} or dilation {:?}",
                params.strides, params.dilation
            ),
            device: format!("{:?}", x.device().location()),
        }
        .into());
    }
    let p = params.padding;
    let x = x
        .permute((0, 3, 1, 2))?
        .pad_with_zeros(2, p.top, p.bottom)?
        .pad_with_zeros(3, p.left, p.right)?
        .contiguous()?;
    let kernel = kernel.permute((3, 2, 0, 1))?.contiguous()?;
    let y = x.conv2d(&kernel, 0, s_h, d_h, 1)?.permute((0, 2, 3, 1))?;
    let y = match bias {
        Some(bias) => y.broadcast_add(bias)?,
        None => y,
    };
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}
