//! The candle custom ops that run the CPU convolution and its backward pass.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use crate::check::expect_built_dims;
use crate::max_pool::PoolGeometry;
use crate::storage::{cpu_f32, CpuView};

use super::backward::{
    backward, backward_from, Conv2dWanted, ForwardRecord, MaxPooled, OutputGrad,
};
use super::forward::forward;
use super::geometry::{ConvGeometry, OP};
use super::Conv2dGradients;

/// A convolution of known geometry: a [`CustomOp2`] on (x, kernel) or a [`CustomOp3`] on
/// (x, kernel, bias).
pub(crate) struct Conv2dOp {
    pub geometry: ConvGeometry,
    pub relu: bool,
}

/// The gradients of (x, kernel, bias), each None when not asked for.
type ArgGradients = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

impl Conv2dOp {
    fn cpu_forward(
        &self,
        x: (&CpuStorage, &Layout),
        kernel: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.geometry;
        expect_built_dims(OP, "x", x.1.dims(), &[g.batch, g.in_h, g.in_w, g.in_c])?;
        expect_built_dims(
            OP,
            "kernel",
            kernel.1.dims(),
            &[g.k_h, g.k_w, g.in_c, g.out_c],
        )?;
        let x = cpu_f32(OP, "x", x.0, x.1)?;
        let kernel = cpu_f32(OP, "kernel", kernel.0, kernel.1)?;
        let bias = match bias {
            Some((storage, layout)) => {
                expect_built_dims(OP, "bias", layout.dims(), &[g.out_c])?;
                Some(cpu_f32(OP, "bias", storage, layout)?)
            }
            None => None,
        };
        let y = forward(g, &x, &kernel, bias.as_deref(), self.relu);
        Ok((CpuStorage::F32(y), g.out_dims().into()))
    }

    fn cpu_backward(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: Option<&Tensor>,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<ArgGradients> {
        let wanted = Conv2dWanted {
            x: x.track_op(),
            kernel: kernel.track_op(),
            bias: bias.is_some_and(Tensor::track_op),
        };
        let grad = OutputGradTensor::Dense {
            output: res,
            grad: grad_res,
        };
        let grads = cpu_gradients(&self.geometry, self.relu, x, kernel, grad, wanted)?;
        Ok((grads.x, grads.kernel, grads.bias))
    }
}

/// The gradient reaching a convolution's output, as tensors.
pub(crate) enum OutputGradTensor<'a> {
    /// The output, (N, OH, OW, Cout) (read when ReLU is fused: its positive cells let the
    /// gradient through), and its own gradient.
    Dense {
        output: &'a Tensor,
        grad: &'a Tensor,
    },
    /// The gradient of the result of a max pooling of the output (its only reader), routed by
    /// the windows' winners.
    MaxPooled {
        /// The pooling's windows.
        pool: &'a PoolGeometry,
        /// Each window's winning cell, per pooled value.
        winners: &'a [u8],
        /// The pooling's result.
        pooled: &'a Tensor,
        /// Its gradient.
        grad: &'a Tensor,
    },
}

/// The gradients `wanted` of `relu?(conv(x, kernel) + bias)` on the CPU, as tensors, given the
/// gradient reaching its output.
pub(crate) fn cpu_gradients(
    geometry: &ConvGeometry,
    relu: bool,
    x: &Tensor,
    kernel: &Tensor,
    grad_output: OutputGradTensor<'_>,
    wanted: Conv2dWanted,
) -> candle_core::Result<Conv2dGradients> {
    let x_view = CpuView::of(OP, "x", x)?;
    let kernel_view = CpuView::of(OP, "kernel", kernel)?;
    let (x_data, kernel_data) = (x_view.f32()?, kernel_view.f32()?);
    let grads = match grad_output {
        OutputGradTensor::Dense { output, grad } => {
            let output_view = CpuView::of(OP, "output", output)?;
            let grad_view = CpuView::of(OP, "output gradient", grad)?;
            let relu_output = if relu { Some(output_view.f32()?) } else { None };
            let record = ForwardRecord {
                x: &x_data,
                kernel: &kernel_data,
                relu_output: relu_output.as_deref(),
            };
            backward(geometry, &record, &grad_view.f32()?, wanted)
        }
        OutputGradTensor::MaxPooled {
            pool,
            winners,
            pooled,
            grad,
        } => {
            let pooled_view = CpuView::of(OP, "pooled output", pooled)?;
            let grad_view = CpuView::of(OP, "pooled output gradient", grad)?;
            let (pooled_data, grad_data) = (pooled_view.f32()?, grad_view.f32()?);
            let record = ForwardRecord {
                x: &x_data,
                kernel: &kernel_data,
                relu_output: None,
            };
            let through = MaxPooled {
                pool,
                winners,
                pooled: &pooled_data,
                grad: &grad_data,
                relu,
            };
            backward_from(geometry, &record, OutputGrad::MaxPooled(through), wanted)
        }
    };
    let device = x.device();
    let to_tensor = |data: Option<Vec<f32>>, shape: Shape| {
        data.map(|data| Tensor::from_vec(data, shape, device))
            .transpose()
    };
    Ok(Conv2dGradients {
        x: to_tensor(grads.x, x.shape().clone())?,
        kernel: to_tensor(grads.kernel, kernel.shape().clone())?,
        bias: to_tensor(grads.bias, geometry.out_c.into())?,
    })
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "rkeras-conv2d"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu_forward((x, x_layout), (kernel, kernel_layout), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (x_grad, kernel_grad, _) = self.cpu_backward(x, kernel, None, res, grad_res)?;
        Ok((x_grad, kernel_grad))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "rkeras-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu_forward(
            (x, x_layout),
            (kernel, kernel_layout),
            Some((bias, bias_layout)),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<ArgGradients> {
        self.cpu_backward(x, kernel, Some(bias), res, grad_res)
    }
}
