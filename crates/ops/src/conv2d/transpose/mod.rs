//! Transposed 2-D convolution over NHWC images (Keras's `Conv2DTranspose`).
//!
//! A transposed convolution is the input gradient of a convolution: the one from an image of
//! the transposed convolution's output shape (N, OH, OW, F) to one of its input's shape
//! (N, H, W, C), with the same (KH, KW, F, C) kernel. Input `x[i]` times tap `k` lands on
//! output `o = i·s + k·d − crop`; outputs outside `0..output_size` are dropped, outputs no input
//! reaches are zero. So the CPU forward is that convolution's input-gradient pass, its input
//! gradient that convolution's forward, its kernel gradient that convolution's kernel-gradient
//! pass: the convolution's own kernels, each way.

mod composed;
mod op;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing;

use candle_core::Tensor;

use crate::check::{expect_f32_rank, expect_same_device, expect_same_dims};
use crate::error::OpsError;
use crate::padding::Padding2d;

use super::geometry::ConvGeometry;
use super::Conv2dParams;
use op::Conv2dTransposeOp;

/// Name used in messages.
const OP: &str = "conv2d_transpose";

/// Where a transposed convolution's windows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dTransposeParams {
    /// Step between the windows of consecutive input pixels along (height, width).
    pub strides: (usize, usize),
    /// Spacing between kernel taps along (height, width); 1 is a plain transposed convolution.
    pub dilation: (usize, usize),
    /// Rows and columns cut from the top and left of the full output, whose height is
    /// `(H - 1)·s + (KH - 1)·d + 1` (likewise the width).
    pub crop: (usize, usize),
    /// The output (height, width): the full output less the crop, cut at the bottom and right or
    /// extended there with zeros.
    pub output_size: (usize, usize),
}

/// The gradients of a transposed convolution's arguments, each present when it was asked for.
#[derive(Debug, Clone)]
pub struct Conv2dTransposeGradients {
    /// The input's gradient, (N, H, W, C).
    pub x: Option<Tensor>,
    /// The kernel's gradient, (KH, KW, F, C).
    pub kernel: Option<Tensor>,
}

/// x: (N, H, W, C); kernel: (KH, KW, F, C) as Keras stores it (filters before input channels);
/// returns (N, OH, OW, F) with (OH, OW) = `params.output_size`.
///
/// On the CPU this is one custom op with its own backward (the gradients of x and kernel, each
/// only when it is tracked); elsewhere it is composed from candle's NCHW `conv_transpose2d`.
pub fn conv2d_transpose(
    x: &Tensor,
    kernel: &Tensor,
    params: &Conv2dTransposeParams,
) -> candle_core::Result<Tensor> {
    expect_f32_rank(OP, "x", x, 4)?;
    expect_f32_rank(OP, "kernel", kernel, 4)?;
    expect_same_device(OP, x, kernel)?;
    let geometry = adjoint_geometry(x.dims(), kernel.dims(), params)?;
    if !crate::kernels_on(x.device()) {
        return composed::conv2d_transpose(x, kernel, params);
    }
    x.apply_op2(kernel, Conv2dTransposeOp { geometry })
}

/// The backward pass of [`conv2d_transpose`] as a plain function: the gradients of `x` and of
/// `kernel` (each when `want_x`, `want_kernel`) given the output's gradient `grad_output`
/// (N, OH, OW, F). Nothing is recorded for candle's autograd; CPU tensors only.
pub fn conv2d_transpose_backward(
    x: &Tensor,
    kernel: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dTransposeParams,
    (want_x, want_kernel): (bool, bool),
) -> candle_core::Result<Conv2dTransposeGradients> {
    expect_f32_rank(OP, "x", x, 4)?;
    expect_f32_rank(OP, "kernel", kernel, 4)?;
    let geometry = adjoint_geometry(x.dims(), kernel.dims(), params)?;
    expect_same_dims(
        OP,
        "the output gradient must have the transposed convolution's output shape",
        ("output gradient", grad_output.dims()),
        (
            "expected",
            &[geometry.batch, geometry.in_h, geometry.in_w, geometry.in_c],
        ),
    )?;
    for tensor in [kernel, grad_output] {
        expect_same_device(OP, x, tensor)?;
    }
    op::cpu_gradients(&geometry, x, kernel, grad_output, (want_x, want_kernel))
}

/// The convolution whose input gradient the transposed convolution of an `x` (N, H, W, C) by a
/// `kernel` (KH, KW, F, C) is: from (N, OH, OW, F) to (N, H, W, C), padded above and left by
/// the crop and below and right by what makes its output exactly (H, W).
pub(crate) fn adjoint_geometry(
    x: &[usize],
    kernel: &[usize],
    params: &Conv2dTransposeParams,
) -> Result<ConvGeometry, OpsError> {
    let mismatch = |expected| OpsError::ShapeMismatch {
        op: OP,
        expected,
        lhs_name: "x",
        lhs: x.into(),
        rhs_name: "kernel",
        rhs: kernel.into(),
    };
    let (&[batch, h, w, c], &[k_h, k_w, filters, k_c]) = (x, kernel) else {
        return Err(mismatch("x must be (N, H, W, C) and kernel (KH, KW, F, C)"));
    };
    if k_c != c {
        return Err(mismatch(
            "the kernel's last axis must equal the input's channels",
        ));
    }
    if h == 0 || w == 0 || c == 0 || filters == 0 {
        return Err(mismatch(
            "the input's height, width and channels and the kernel's filters must be positive",
        ));
    }
    let (s_h, s_w) = params.strides;
    let (d_h, d_w) = params.dilation;
    let (out_h, out_w) = params.output_size;
    if [s_h, s_w, d_h, d_w, k_h, k_w, out_h, out_w].contains(&0) {
        return Err(OpsError::Config {
            op: OP,
            reason: format!(
                "kernel {:?}, strides {:?}, dilation {:?} and output size {:?} must all be positive",
                (k_h, k_w),
                params.strides,
                params.dilation,
                params.output_size
            ),
        });
    }
    let too_large = || OpsError::Config {
        op: OP,
        reason: format!("the full output of {x:?} by {kernel:?} under {params:?} is too large"),
    };
    let (top, bottom) =
        axis_padding(h, k_h, s_h, d_h, params.crop.0, out_h).ok_or_else(too_large)?;
    let (left, right) =
        axis_padding(w, k_w, s_w, d_w, params.crop.1, out_w).ok_or_else(too_large)?;
    let conv = Conv2dParams {
        strides: params.strides,
        dilation: params.dilation,
        padding: Padding2d {
            top,
            bottom,
            left,
            right,
        },
    };
    let geometry = ConvGeometry::new(
        &[batch, out_h, out_w, filters],
        &[k_h, k_w, filters, c],
        &conv,
    )?;
    if (geometry.out_h, geometry.out_w) != (h, w) {
        return Err(OpsError::Config {
            op: OP,
            reason: format!(
                "an output of {:?} after a crop of {:?} reaches a stride or more past the full output of an input of {:?} under strides {:?} and dilation {:?}",
                params.output_size, params.crop, (h, w), params.strides, params.dilation
            ),
        });
    }
    Ok(geometry)
}

/// The (before, after) padding of one axis of the adjoint convolution: the crop before, and
/// after what its windows reach beyond the output (none when they fall short of it), or `None`
/// when the full output's length overflows.
fn axis_padding(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    crop: usize,
    output: usize,
) -> Option<(usize, usize)> {
    let full = (input - 1)
        .checked_mul(stride)?
        .checked_add((kernel - 1).checked_mul(dilation)?)?
        .checked_add(1)?;
    Some((crop, full.saturating_sub(crop.checked_add(output)?)))
}
