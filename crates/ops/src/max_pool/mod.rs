//! 2-D max pooling over NHWC images, with padding and any window/stride pair.

mod composed;
mod kernel;

pub(crate) use kernel::{
    image_backward_from_winners, image_forward_with_winners, MAX_WINDOW_CELLS,
};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::check::{expect_built_dims, expect_f32_rank};
use crate::error::OpsError;
use crate::padding::{conv_output_len, Padding2d};
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "max_pool2d";

/// Every size a pooling kernel needs, validated once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolGeometry {
    batch: usize,
    in_h: usize,
    in_w: usize,
    channels: usize,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
    out_h: usize,
    out_w: usize,
}

impl PoolGeometry {
    /// Checks an NHWC input shape against the window and derives the output size.
    pub(crate) fn new(
        x: &[usize],
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding2d,
    ) -> Result<Self, OpsError> {
        let &[batch, in_h, in_w, channels] = x else {
            return Err(OpsError::Config {
                op: OP,
                reason: format!("expected an (N, H, W, C) input, got {x:?}"),
            });
        };
        if in_h == 0 || in_w == 0 {
            return Err(OpsError::Config {
                op: OP,
                reason: format!("the input's height and width must be positive, got {x:?}"),
            });
        }
        if pool.0 == 0 || pool.1 == 0 || strides.0 == 0 || strides.1 == 0 {
            return Err(OpsError::Config {
                op: OP,
                reason: format!("pool {pool:?} and strides {strides:?} must be positive"),
            });
        }
        // Every window then holds at least one real cell, so padding never wins.
        if padding.top >= pool.0
            || padding.bottom >= pool.0
            || padding.left >= pool.1
            || padding.right >= pool.1
        {
            return Err(OpsError::Config {
                op: OP,
                reason: format!(
                    "padding {:?} (top, bottom, left, right) must be smaller than the pool {pool:?} on each side",
                    padding.as_tuple()
                ),
            });
        }
        let out_h = conv_output_len(in_h, pool.0, strides.0, 1, padding.top, padding.bottom);
        let out_w = conv_output_len(in_w, pool.1, strides.1, 1, padding.left, padding.right);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(OpsError::InputTooSmall {
                op: OP,
                input: x.into(),
                padding: padding.as_tuple(),
                window: pool,
            });
        };
        Ok(Self {
            batch,
            in_h,
            in_w,
            channels,
            pool,
            strides,
            padding,
            out_h,
            out_w,
        })
    }

    /// Whether no two windows share a cell (strides at least the pool, Keras's default).
    pub(crate) fn windows_are_disjoint(&self) -> bool {
        self.strides.0 >= self.pool.0 && self.strides.1 >= self.pool.1
    }

    /// Whether every cell of the image lies in exactly one window: windows side by side (strides
    /// equal to the pool) that reach the image's last row and column.
    pub(crate) fn windows_tile_the_image(&self) -> bool {
        self.strides == self.pool
            && self.out_h * self.pool.0 >= self.in_h + self.padding.top
            && self.out_w * self.pool.1 >= self.in_w + self.padding.left
    }

    /// Values in one input image.
    pub(crate) fn in_image_len(&self) -> usize {
        self.in_h * self.in_w * self.channels
    }

    /// Values in one pooled image.
    pub(crate) fn out_image_len(&self) -> usize {
        self.out_h * self.out_w * self.channels
    }

    /// The input shape, (N, H, W, C).
    pub(crate) fn in_dims(&self) -> [usize; 4] {
        [self.batch, self.in_h, self.in_w, self.channels]
    }

    /// The pooled shape, (N, OH, OW, C).
    pub(crate) fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.out_h, self.out_w, self.channels]
    }
}

/// Max pooling, NHWC; padded cells never win; gradient routes to the arg-max (first one on ties) in full.
///
/// Each padding side must be smaller than the pool along its axis (Keras's 'same' always is), so
/// that every window holds a real cell.
pub fn max_pool2d(
    x: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
) -> candle_core::Result<Tensor> {
    expect_f32_rank(OP, "x", x, 4)?;
    let geometry = PoolGeometry::new(x.dims(), pool, strides, padding)?;
    if !crate::kernels_on(x.device()) {
        return composed::max_pool2d(x, pool, strides, padding);
    }
    x.apply_op1(MaxPool2dOp { geometry })
}

/// The CPU max pooling as a candle custom op.
pub(crate) struct MaxPool2dOp {
    pub(crate) geometry: PoolGeometry,
}

impl CustomOp1 for MaxPool2dOp {
    fn name(&self) -> &'static str {
        "rkeras-max-pool2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.geometry;
        expect_built_dims(OP, "x", layout.dims(), &g.in_dims())?;
        let x = cpu_f32(OP, "x", storage, layout)?;
        let y = kernel::forward(g, &x);
        Ok((CpuStorage::F32(y), g.out_dims().as_slice().into()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        input_gradient(&self.geometry, arg, res, grad_res).map(Some)
    }
}

/// The input gradient of a CPU max pooling of `x` whose result is `y`, given `y`'s gradient.
fn input_gradient(
    g: &PoolGeometry,
    x: &Tensor,
    y: &Tensor,
    grad_y: &Tensor,
) -> candle_core::Result<Tensor> {
    let x_view = CpuView::of(OP, "x", x)?;
    let y_view = CpuView::of(OP, "output", y)?;
    let grad = CpuView::of(OP, "output gradient", grad_y)?;
    let x_grad = kernel::backward(g, &x_view.f32()?, &y_view.f32()?, &grad.f32()?);
    Tensor::from_vec(x_grad, x.shape(), x.device())
}

/// The backward pass of [`max_pool2d`] as a plain function: the gradient of `x` given the
/// pooling's `output` and its gradient `grad_output`, each routed whole to the first maximum of
/// its window. Nothing is recorded for candle's autograd; CPU tensors only.
pub fn max_pool2d_backward(
    x: &Tensor,
    output: &Tensor,
    grad_output: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding2d,
) -> candle_core::Result<Tensor> {
    expect_f32_rank(OP, "x", x, 4)?;
    let geometry = PoolGeometry::new(x.dims(), pool, strides, padding)?;
    let out_shape: Shape = geometry.out_dims().as_slice().into();
    for (name, tensor) in [("output", output), ("output gradient", grad_output)] {
        if tensor.shape() != &out_shape || tensor.dtype() != candle_core::DType::F32 {
            return Err(OpsError::ShapeMismatch {
                op: OP,
                expected: "the output and its gradient must be f32 of the pooling's output shape",
                lhs_name: name,
                lhs: tensor.shape().clone(),
                rhs_name: "expected",
                rhs: out_shape.clone(),
            }
            .into());
        }
    }
    input_gradient(&geometry, x, output, grad_output)
}

#[cfg(test)]
mod tests;
