//! The transposed convolution composed from candle's own ops, for devices without our CPU
//! kernel.

use candle_core::Tensor;

use crate::error::OpsError;

use super::{Conv2dTransposeParams, OP};

/// The transposed convolution through candle's NCHW `conv_transpose2d` (whose autograd candle
/// provides): the full output, then the crop and the output size.
///
/// candle takes one stride and one dilation for both axes. Unequal strides spread the input
/// apart by hand (zeros between its pixels) and run candle's at stride 1; unequal dilations are
/// refused.
pub(super) fn conv2d_transpose(
    x: &Tensor,
    kernel: &Tensor,
    params: &Conv2dTransposeParams,
) -> candle_core::Result<Tensor> {
    let (s_h, s_w) = params.strides;
    let (d_h, d_w) = params.dilation;
    if d_h != d_w {
        return Err(OpsError::Unsupported {
            op: OP,
            what: format!("unequal dilation {:?}", params.dilation),
            device: format!("{:?}", x.device().location()),
        }
        .into());
    }
    let x = x.permute((0, 3, 1, 2))?;
    let (x, stride) = if s_h == s_w {
        (x, s_h)
    } else {
        (spread(&spread(&x, 2, s_h)?, 3, s_w)?, 1)
    };
    // (KH, KW, F, C) to candle's (C, F, KH, KW).
    let kernel = kernel.permute((3, 2, 0, 1))?.contiguous()?;
    let full = x
        .contiguous()?
        .conv_transpose2d(&kernel, 0, 0, stride, d_h)?;
    let y = fit(&full, 2, params.crop.0, params.output_size.0)?;
    let y = fit(&y, 3, params.crop.1, params.output_size.1)?;
    y.permute((0, 2, 3, 1))
}

/// `t` with `step - 1` zeros between consecutive indices along `axis` (a length `n` becomes
/// `(n - 1)·step + 1`).
fn spread(t: &Tensor, axis: usize, step: usize) -> candle_core::Result<Tensor> {
    if step == 1 {
        return Ok(t.clone());
    }
    let mut dims = t.dims().to_vec();
    let len = dims[axis];
    let spread = t
        .unsqueeze(axis + 1)?
        .pad_with_zeros(axis + 1, 0, step - 1)?;
    dims[axis] = len * step;
    spread.reshape(dims)?.narrow(axis, 0, (len - 1) * step + 1)
}

/// The `len` indices of `t` along `axis` from `start` on, zeros past its end.
fn fit(t: &Tensor, axis: usize, start: usize, len: usize) -> candle_core::Result<Tensor> {
    let available = t.dim(axis)?.saturating_sub(start).min(len);
    if available == 0 {
        let mut dims = t.dims().to_vec();
        dims[axis] = len;
        return Tensor::zeros(dims, t.dtype(), t.device());
    }
    t.narrow(axis, start, available)?
        .pad_with_zeros(axis, 0, len - available)
}
