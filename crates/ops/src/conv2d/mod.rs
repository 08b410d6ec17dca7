//! 2-D convolution over NHWC images with Keras's (KH, KW, Cin, Cout) kernels, and its transpose.

mod backward;
mod composed;
mod direct;
mod forward;
mod geometry;
mod op;
mod pooled;
#[cfg(test)]
mod pooled_tests;
mod project;
mod scratch;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing;
mod transpose;
mod unfold;
mod winograd;

use candle_core::Tensor;

use crate::check::{expect_f32_rank, expect_same_device, expect_same_dims};
use crate::error::OpsError;
use crate::padding::Padding2d;

pub use backward::Conv2dWanted;
pub(crate) use geometry::ConvGeometry;
use geometry::OP;
pub(crate) use op::Conv2dOp;
pub use pooled::{conv2d_max_pool, conv2d_max_pool_backward, MaxPoolWindow, PoolWinners};
pub use transpose::{
    conv2d_transpose, conv2d_transpose_backward, Conv2dTransposeGradients, Conv2dTransposeParams,
};

/// How a convolution window moves over the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between windows along (height, width).
    pub strides: (usize, usize),
    /// Spacing between kernel taps along (height, width); 1 is a plain convolution.
    pub dilation: (usize, usize),
    /// Zeros added around the input.
    pub padding: Padding2d,
}

impl Default for Conv2dParams {
    /// Stride 1, no dilation, no padding (Keras's defaults, `padding="valid"`).
    fn default() -> Self {
        Self {
            strides: (1, 1),
            dilation: (1, 1),
            padding: Padding2d::VALID,
        }
    }
}

impl Conv2dParams {
    /// Keras `padding="same"` for an input of `input` (height, width) and a `kernel`
    /// (height, width) window.
    pub fn same(
        input: (usize, usize),
        kernel: (usize, usize),
        strides: (usize, usize),
        dilation: (usize, usize),
    ) -> Self {
        Self {
            strides,
            dilation,
            padding: Padding2d::same(input, kernel, strides, dilation),
        }
    }

    /// Keras `padding="valid"` with the given strides and dilation.
    pub fn valid(strides: (usize, usize), dilation: (usize, usize)) -> Self {
        Self {
            strides,
            dilation,
            padding: Padding2d::VALID,
        }
    }
}

/// x: (N, H, W, Cin); kernel: (KH, KW, Cin, Cout) as Keras stores it; bias: (Cout); returns (N, OH, OW, Cout).
/// `relu` fuses max(0, .) into the output (and its mask into the backward).
///
/// On the CPU this is one custom op with its own backward (gradients of x, kernel and bias, each
/// only when it is tracked); elsewhere it is composed from candle's NCHW `conv2d`.
pub fn conv2d(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
    relu: bool,
) -> candle_core::Result<Tensor> {
    let geometry = checked_geometry(x, kernel, bias, params)?;
    if !crate::kernels_on(x.device()) {
        return composed::conv2d(x, kernel, bias, params, relu);
    }
    let op = Conv2dOp { geometry, relu };
    match bias {
        Some(bias) => x.apply_op3(kernel, bias, op),
        None => x.apply_op2(kernel, op),
    }
}

/// The gradients of a convolution's arguments, each present when it was asked for.
#[derive(Debug, Clone)]
pub struct Conv2dGradients {
    /// The input's gradient, (N, H, W, Cin).
    pub x: Option<Tensor>,
    /// The kernel's gradient, (KH, KW, Cin, Cout).
    pub kernel: Option<Tensor>,
    /// The bias's gradient, (Cout).
    pub bias: Option<Tensor>,
}

/// The backward pass of [`conv2d`] as a plain function: the gradients `wanted` of
/// `relu?(conv(x, kernel) + bias)` given the forward's `output` and its gradient `grad_output`
/// (both (N, OH, OW, Cout)). `output` is read only when `relu` is fused (its positive cells let
/// the gradient through). Nothing is recorded for candle's autograd; CPU tensors only.
pub fn conv2d_backward(
    x: &Tensor,
    kernel: &Tensor,
    output: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    relu: bool,
    wanted: Conv2dWanted,
) -> candle_core::Result<Conv2dGradients> {
    let geometry = backward_geometry(x, kernel, params)?;
    let (n, h, w, c) = geometry.out_dims();
    for (name, tensor) in [("output", output), ("output gradient", grad_output)] {
        expect_same_dims(
            OP,
            "the output and its gradient must have the convolution's output shape",
            (name, tensor.dims()),
            ("expected", &[n, h, w, c]),
        )?;
    }
    for tensor in [kernel, output, grad_output] {
        expect_same_device(OP, x, tensor)?;
    }
    let grad_output = op::OutputGradTensor::Dense {
        output,
        grad: grad_output,
    };
    op::cpu_gradients(&geometry, relu, x, kernel, grad_output, wanted)
}

/// The geometry of a convolution of `x` by `kernel` (and `bias`), once they are checked to be
/// f32 of the right ranks and shapes on one device.
fn checked_geometry(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
) -> candle_core::Result<ConvGeometry> {
    expect_f32_rank(OP, "x", x, 4)?;
    expect_f32_rank(OP, "kernel", kernel, 4)?;
    expect_same_device(OP, x, kernel)?;
    let geometry = ConvGeometry::new(x.dims(), kernel.dims(), params)?;
    if let Some(bias) = bias {
        expect_f32_rank(OP, "bias", bias, 1)?;
        expect_same_device(OP, x, bias)?;
        if bias.dims()[0] != geometry.out_c {
            return Err(OpsError::ShapeMismatch {
                op: OP,
                expected: "the bias must have one value per filter (the kernel's last axis)",
                lhs_name: "kernel",
                lhs: kernel.shape().clone(),
                rhs_name: "bias",
                rhs: bias.shape().clone(),
            }
            .into());
        }
    }
    Ok(geometry)
}

/// The geometry of a backward pass's convolution, once `x` and `kernel` are checked to be f32
/// of rank 4.
fn backward_geometry(
    x: &Tensor,
    kernel: &Tensor,
    params: &Conv2dParams,
) -> candle_core::Result<ConvGeometry> {
    expect_f32_rank(OP, "x", x, 4)?;
    expect_f32_rank(OP, "kernel", kernel, 4)?;
    Ok(ConvGeometry::new(x.dims(), kernel.dims(), params)?)
}
