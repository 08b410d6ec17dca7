//! The candle custom op that runs the CPU transposed convolution and its backward pass, on the
//! adjoint convolution's kernels.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::check::expect_built_dims;
use crate::storage::{cpu_f32, CpuView};

use super::super::backward::{backward, Conv2dWanted, ForwardRecord};
use super::super::forward::forward;
use super::super::geometry::ConvGeometry;
use super::{Conv2dTransposeGradients, OP};

/// A transposed convolution, described by its adjoint convolution (see the module above): a
/// [`CustomOp2`] on (x, kernel).
pub(crate) struct Conv2dTransposeOp {
    pub geometry: ConvGeometry,
}

/// The output (N, OH, OW, F) of the transposed convolution of contiguous `x` (N, H, W, C) by
/// `kernel` (KH, KW, F, C): the adjoint convolution's input gradient for output gradient `x`.
fn transposed(g: &ConvGeometry, x: &[f32], kernel: &[f32]) -> Vec<f32> {
    let record = ForwardRecord {
        x: &[],
        kernel,
        relu_output: None,
    };
    let input_only = Conv2dWanted {
        x: true,
        kernel: false,
        bias: false,
    };
    backward(g, &record, x, input_only).x.unwrap_or_default()
}

/// The gradients of `x` and `kernel` (each when asked for) of a transposed convolution on the
/// CPU, given its output gradient `grad_output`.
pub(crate) fn cpu_gradients(
    g: &ConvGeometry,
    x: &Tensor,
    kernel: &Tensor,
    grad_output: &Tensor,
    (want_x, want_kernel): (bool, bool),
) -> candle_core::Result<Conv2dTransposeGradients> {
    let grad_view = CpuView::of(OP, "output gradient", grad_output)?;
    let kernel_view = CpuView::of(OP, "kernel", kernel)?;
    let (dy, kernel_data) = (grad_view.f32()?, kernel_view.f32()?);
    let device = x.device();
    let x_grad = if want_x {
        // The adjoint convolution itself, run on the output gradient.
        let grad = forward(g, &dy, &kernel_data, None, false);
        Some(Tensor::from_vec(grad, x.shape(), device)?)
    } else {
        None
    };
    let kernel_grad = if want_kernel {
        // The adjoint convolution's kernel gradient: its input is the output gradient, its
        // output gradient the input.
        let x_view = CpuView::of(OP, "x", x)?;
        let record = ForwardRecord {
            x: &dy,
            kernel: &kernel_data,
            relu_output: None,
        };
        let kernel_only = Conv2dWanted {
            x: false,
            kernel: true,
            bias: false,
        };
        let grad = backward(g, &record, &x_view.f32()?, kernel_only).kernel;
        Some(Tensor::from_vec(
            grad.unwrap_or_default(),
            kernel.shape(),
            device,
        )?)
    } else {
        None
    };
    Ok(Conv2dTransposeGradients {
        x: x_grad,
        kernel: kernel_grad,
    })
}

impl CustomOp2 for Conv2dTransposeOp {
    fn name(&self) -> &'static str {
        "rkeras-conv2d-transpose"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.geometry;
        expect_built_dims(
            OP,
            "x",
            x_layout.dims(),
            &[g.batch, g.out_h, g.out_w, g.out_c],
        )?;
        expect_built_dims(
            OP,
            "kernel",
            kernel_layout.dims(),
            &[g.k_h, g.k_w, g.in_c, g.out_c],
        )?;
        let x = cpu_f32(OP, "x", x, x_layout)?;
        let kernel = cpu_f32(OP, "kernel", kernel, kernel_layout)?;
        let y = transposed(g, &x, &kernel);
        Ok((CpuStorage::F32(y), (g.batch, g.in_h, g.in_w, g.in_c).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let wanted = (x.track_op(), kernel.track_op());
        let grads = cpu_gradients(&self.geometry, x, kernel, grad_res, wanted)?;
        Ok((grads.x, grads.kernel))
    }
}
