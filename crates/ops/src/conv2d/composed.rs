//! The convolution composed from candle's own ops, for devices without our CPU kernel.

use candle_core::Tensor;

use crate::error::OpsError;

use super::geometry::OP;
use super::Conv2dParams;

/// `relu?(conv(x, kernel) + bias)` through candle's NCHW `conv2d` with explicit zero padding.
///
/// candle takes one stride and one dilation for both axes. Unequal strides run candle's conv
/// at stride 1 and keep every `stride`-th row and column; unequal dilations are refused.
pub(super) fn conv2d(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
    relu: bool,
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
    let p = params.padding;
    let (k_h, k_w) = (kernel.dim(0)?, kernel.dim(1)?);
    let x = x
        .permute((0, 3, 1, 2))?
        .pad_with_zeros(2, p.top, p.bottom)?
        .pad_with_zeros(3, p.left, p.right)?;
    // Only the rows and columns some window reads: candle's backward of a strided conv2d
    // returns a gradient the size of the part its windows cover, not of the input.
    let x = x
        .narrow(2, 0, read_extent(x.dim(2)?, k_h, s_h, d_h))?
        .narrow(3, 0, read_extent(x.dim(3)?, k_w, s_w, d_w))?
        .contiguous()?;
    let kernel = kernel.permute((3, 2, 0, 1))?.contiguous()?;
    let y = if s_h == s_w {
        x.conv2d(&kernel, 0, s_h, d_h, 1)?
    } else {
        let dense = x.conv2d(&kernel, 0, 1, d_h, 1)?;
        every_nth(&every_nth(&dense, 2, s_h)?, 3, s_w)?
    };
    let y = y.permute((0, 2, 3, 1))?;
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

/// How much of an axis of `len` (padded) the windows of a `kernel`-tap filter at `stride` and
/// `dilation` read: up to the last tap of the last window.
fn read_extent(len: usize, kernel: usize, stride: usize, dilation: usize) -> usize {
    let span = dilation * (kernel - 1) + 1;
    (len - span) / stride * stride + span
}

/// Every `step`-th index of `t` along `axis`, starting at 0 (a gather, so autograd routes the
/// gradient back to the kept positions).
fn every_nth(t: &Tensor, axis: usize, step: usize) -> candle_core::Result<Tensor> {
    if step == 1 {
        return Ok(t.clone());
    }
    let kept = t.dim(axis)?.div_ceil(step);
    let indices: Vec<u32> = (0..kept).map(|i| (i * step) as u32).collect();
    let indices = Tensor::from_vec(indices, kept, t.device())?;
    t.index_select(&indices, axis)
}
